"""What each ``whyrec`` command does."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch.distributed

from whyrec.cli.output import configure_output
from whyrec.cli.parser import load_options, ranking_controls, serve_limits
from whyrec.cli.tables import controls_table, metrics_table
from whyrec.errors import WhyrecError
from whyrec.explain import Explainer, make_phraser
from whyrec.explain.quality import explanation_metrics
from whyrec.explain.sentences import moved_out_note
from whyrec.models import Scorer
from whyrec.models.parallel import Processes
from whyrec.training import Recommendation, Recommender, build_models, parse_settings
from whyrec.training.adapt import AdaptConfig
from whyrec.training.control_metrics import control_metrics
from whyrec.training.controls import parse_control_settings
from whyrec.training.distributed import check_device, in_group, launch, launched_by_torchrun
from whyrec.training.feedback import retrain_with_feedback
from whyrec.training.pipeline import (
    Prepared,
    fit_and_test,
    prepare,
    tensorboard_logger,
    train_run,
    train_run_in_group,
    uses_processes,
)

log = logging.getLogger("whyrec")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if (out / "run.json").exists() and not overwrite:
        raise WhyrecError(f"run directory {out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise WhyrecError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)


def cmd_train(args: argparse.Namespace) -> int:
    if args.run is not None or args.with_feedback:
        if args.nproc != 1 or args.device != "cpu":
            raise WhyrecError("--nproc and --device train from --dataset, not with --run (retraining)")
        return _retrain(args)
    if not args.dataset or not args.out:
        raise WhyrecError("train needs --dataset SPEC and --out RUN_DIR (or --run RUN_DIR --with-feedback)")
    args.model = args.model or "sasrec"
    # an unknown model or setting fails before any work
    settings = parse_settings(args.set)
    if args.device != "cpu":
        settings["device"] = args.device
    model = build_models([args.model], settings)[args.model]
    check_device(args.device)
    if args.nproc < 1:
        raise WhyrecError(f"--nproc must be at least 1, not {args.nproc}")
    in_torchrun = launched_by_torchrun()
    if (args.nproc > 1 or in_torchrun or args.device != "cpu") and not uses_processes(model):
        raise WhyrecError(f"--nproc and --device train sequence models; {args.model} is not one")
    if in_torchrun:  # one of the processes torchrun started: join them
        row = in_group(args.device, _train_in_torchrun, args, model, settings)
    elif args.nproc > 1:
        _prepare_out(args.out, args.overwrite)
        prepared = prepare(args.dataset, load_options(args), args.encoder, not args.quiet, _adapt(args))
        work = (prepared, args.model, args.out, model, settings, args.quiet, args.tensorboard)
        row = launch(args.nproc, args.device, _train_worker, *work)
    else:
        _prepare_out(args.out, args.overwrite)
        prepared = prepare(args.dataset, load_options(args), args.encoder, not args.quiet, _adapt(args))
        _, row = train_run(
            prepared,
            args.model,
            args.out,
            progress=not args.quiet,
            curves=tensorboard_logger(args.tensorboard),
            model=model,
            settings=settings,
        )
    if row:  # rank 0
        print(
            f"saved run {args.out}: {args.model} test NDCG@10 {row['NDCG@10']:.4f}, HR@10 {row['HR@10']:.4f}"
        )
    return 0


def _train_worker(
    prepared: Prepared,
    name: str,
    out: Path,
    model: Scorer,
    settings: dict[str, str],
    quiet: bool,
    tensorboard: str | None,
) -> dict[str, Any]:
    """One process of ``--nproc N`` (spawned, in the group): rank 0 reports, tests and saves."""
    main = Processes().main
    configure_output(quiet or not main)
    return train_run_in_group(prepared, name, out, model, settings, not quiet and main, tensorboard)


def _train_in_torchrun(args: argparse.Namespace, model: Scorer, settings: dict[str, str]) -> dict[str, Any]:
    """One process started by torchrun: rank 0 prepares the data first (filling the text
    encoder's cache), then the others; all train, rank 0 tests and saves."""
    main = Processes().main
    if not main:
        configure_output(True)
    if main:
        _prepare_out(args.out, args.overwrite)
        prepared = prepare(args.dataset, load_options(args), args.encoder, progress=not args.quiet)
    torch.distributed.barrier()
    if not main:
        prepared = prepare(args.dataset, load_options(args), args.encoder, progress=False)
    progress = not args.quiet and main
    return train_run_in_group(prepared, args.model, args.out, model, settings, progress, args.tensorboard)


def _retrain(args: argparse.Namespace) -> int:
    if args.run is None:
        raise WhyrecError("--with-feedback needs --run RUN_DIR (the run whose stored events to fold in)")
    done = retrain_with_feedback(
        args.run,
        with_feedback=args.with_feedback,
        dataset=args.dataset,
        options=load_options(args),
        encoder=args.encoder,
        model=args.model,
        settings=parse_settings(args.set),
        out=args.out,
        overwrite=args.overwrite,
        db=args.db,
        progress=not args.quiet,
        adapt=_adapt(args),
    )
    print(f"saved run {done.out}: {done.model} with {done.report.events_used:,} feedback events, "
          f"test NDCG@10 {done.test['NDCG@10']:.4f}, HR@10 {done.test['HR@10']:.4f}")  # fmt: skip
    return 0


def _adapt(args: argparse.Namespace) -> AdaptConfig | None:
    """--adapt-encoder: the default adaptation (see whyrec.training.adapt.AdaptConfig)."""
    return AdaptConfig() if getattr(args, "adapt_encoder", False) else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    settings = parse_settings(args.set)
    if args.device != "cpu":
        settings["device"] = args.device
    models = build_models(names, settings)  # unknown names fail here, before any work
    args.control_settings = parse_control_settings(args.controls) if args.controls else {}
    if args.json and args.json.parent and not args.json.parent.exists():
        raise WhyrecError(f"folder for --json does not exist: {args.json.parent}")
    check_device(args.device)
    if args.nproc < 1:
        raise WhyrecError(f"--nproc must be at least 1, not {args.nproc}")
    if (args.nproc > 1 or args.device != "cpu") and not any(map(uses_processes, models.values())):
        raise WhyrecError(f"--nproc and --device train sequence models; none of {', '.join(names)} is one")
    prepared = prepare(args.dataset, load_options(args), args.encoder, not args.quiet, _adapt(args))
    if args.nproc > 1:
        rows = launch(args.nproc, args.device, _evaluate_worker, prepared, models, args)
    else:
        rows = _evaluate(prepared, models, args)
    print(metrics_table(rows))
    if any("controls" in row for row in rows):
        print(controls_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")
    return 0


def _evaluate(
    prepared: Prepared, models: dict[str, Scorer], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Fit and test MODELS (and measure their explanations); in a process group, every process
    trains and rank 0 alone tests and returns the rows."""
    main = Processes().main
    curves = tensorboard_logger(args.tensorboard) if main else None
    rows = fit_and_test(prepared, models, progress=not args.quiet and main, curves=curves)
    if not main:
        return []
    if args.explanations:
        phraser = make_phraser(args.llm)
        for row, model in zip(rows, models.values(), strict=True):
            log.info(f"measuring explanations of {model.name} ...")
            quality = explanation_metrics(
                prepared, model, args.explain_users, progress=not args.quiet, lang=args.lang, phraser=phraser
            )
            row.update(quality)
    if args.control_settings:
        for row, model in zip(rows, models.values(), strict=True):
            log.info(f"measuring {model.name} under ranking controls ...")
            row["controls"] = control_metrics(prepared, model, args.control_settings)
    return rows


def _evaluate_worker(
    prepared: Prepared, models: dict[str, Scorer], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One process of ``evaluate --nproc N`` (spawned, in the group)."""
    configure_output(args.quiet or not Processes().main)
    return _evaluate(prepared, models, args)


def _load_run(path: Path) -> Recommender:
    return Recommender.load(path)


def cmd_recommend(args: argparse.Namespace) -> int:
    controls = ranking_controls(args)
    rec = _load_run(args.run)
    rec.history(args.user)  # unknown user: one clear line
    if args.k < 1:
        raise WhyrecError("-k must be at least 1")
    if args.explain:
        pairs, moved_out = Explainer(rec).explain_list(args.user, k=args.k, lang=args.lang, controls=controls)
        rows = [
            {
                **_row(r),
                "explanation": e.sentence.text,
                "evidence": [ev.item_id for ev in e.evidence[:3]],
            }
            for r, e in pairs
        ]
    else:
        recs, moved_out = (
            (rec.recommend(args.user, k=args.k), ())
            if controls.plain
            else rec.recommend_controlled(args.user, k=args.k, controls=controls)
        )
        rows = [_row(r) for r in recs]
    left_out = [
        {"item_id": m.item_id, "title": rec.catalog.title(m.item_id), "plain_rank": m.plain_rank,
         "reason": m.reason, "note": moved_out_note(m, args.lang, controls.max_per_attribute)}
        for m in moved_out
    ]  # fmt: skip
    if args.json:
        out: dict[str, Any] = {"user_id": args.user, "model": rec.model.name, "recommendations": rows}
        if not controls.plain:
            out["controls"] = controls.label()
            out["moved_out"] = left_out
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(
        f"top {len(rows)} for user {args.user} "
        f"({rec.model.name}, {len(rec.history(args.user))} items in history)"
    )
    for row in rows:
        moved = ""
        if row.get("moved_by"):
            moved = f"  (moved up by {row['moved_by']}, plain rank {row['plain_rank']})"
        print(f"{row['rank']:>3}. {row['title']}  [{row['item_id']}]  score {row['score']:.3f}{moved}")
        if "explanation" in row:
            print(f"     {row['explanation']}")
    if left_out:
        print(f"left out by the ranking controls ({controls.label()}):")
    for item in left_out:
        print(f"  plain rank {item['plain_rank']:>3}. {item['title']}  [{item['item_id']}]  {item['note']}")
    return 0


def _row(r: Recommendation) -> dict[str, Any]:
    row: dict[str, Any] = {"rank": r.rank, "item_id": r.item_id, "title": r.title, "score": round(r.score, 4)}
    if r.plain_rank is not None:
        row.update(plain_rank=r.plain_rank, moved_by=r.moved_by)
    return row


def cmd_explain(args: argparse.Namespace) -> int:
    rec = _load_run(args.run)
    rec.history(args.user)
    rec.item_index(args.item)
    explainer = Explainer(rec, phraser=make_phraser(args.llm))
    e = explainer.explain(args.item, user_id=args.user, k=args.k, lang=args.lang, use_llm=bool(args.llm))
    if args.json:
        print(json.dumps(e.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(
        f"{e.title} [{e.item_id}] for user {args.user}: rank {e.rank} "
        f"(top {e.k}: {'yes' if e.recommended else 'no'})"
    )
    print(f"\n  {e.sentence.text}\n  ({e.sentence.source}: {e.sentence.note})")
    print("\nevidence (score drop when removed from the history):")
    for ev in e.evidence:
        print(f"  {ev.contribution:+.4f}  {ev.title}")
    if e.interest:
        print(
            f"\ninterest served: {e.interest.label} "
            f"({e.interest.share:.0%} of the history, {e.interest.horizon})"
        )
    if e.shared_attributes:
        print(f"shared attributes: {', '.join(e.shared_attributes)}")
    if e.counterfactual:
        cf = e.counterfactual
        if cf.found:
            print(
                f"counterfactual: without {', '.join(cf.removed_titles)} "
                f"it falls to rank {cf.new_rank} (verified)"
            )
        else:
            print(
                f"counterfactual: no set of up to {cf.max_size} history items takes it out of the top {e.k}"
            )
    if e.why_not:
        w = e.why_not
        for ev in w.evidence_against[:3]:
            print(f"  against: {ev.contribution:+.4f}  {ev.title}")
        if w.best_lift:
            print(
                f"would lift it most: {w.best_lift.kind} {w.best_lift.title} -> rank {w.best_lift.new_rank}"
            )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from whyrec.service import serve  # the serve extra: imported only when serving

    controls = ranking_controls(args)  # a bad value fails before anything is loaded
    serve(args.run, db=args.db, host=args.host, port=args.port, llm=args.llm, api_key_file=args.api_key_file,
          workers=args.workers, cors_origins=tuple(args.cors_origin), limits=serve_limits(args),
          controls=controls)  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.retrain or Recommender.saved_model(out) != args.model:
        build_models([args.model])  # an unknown model fails before any work
        out.mkdir(parents=True, exist_ok=True)
        prepared = prepare("demo", encoder=None, progress=not args.quiet)
        _, row = train_run(prepared, args.model, out, progress=not args.quiet)
        log.info(f"demo run saved to {out} (test NDCG@10 {row['NDCG@10']:.4f})")
    else:
        log.info(f"using the demo run in {out} (--retrain to train again)")
    if not args.no_serve:
        from whyrec.service import serve  # the serve extra: imported only when serving

        serve(out, db=args.db, host=args.host, port=args.port, api_key_file=args.api_key_file,
              cors_origins=tuple(args.cors_origin))  # fmt: skip
        return 0
    rec = _load_run(out)
    explainer = Explainer(rec)
    users = sorted(rec.histories, key=lambda u: (-len(rec.histories[u]), u))[
        :: max(1, len(rec.histories) // 50)
    ]
    for user in users[: args.users]:
        history = rec.history(user)
        print(
            f"\nuser {user}: {len(history)} rated, most recent: "
            + "; ".join(rec.catalog.title(i) for i in history[-3:])
        )
        for r, e in explainer.explain_recommendations(user, k=args.k, counterfactual=True):
            print(f"  {r.rank}. {r.title}")
            print(f"     {e.sentence.text}")
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "recommend": cmd_recommend,
    "explain": cmd_explain,
    "serve": cmd_serve,
}
