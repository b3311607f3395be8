"""The ``whyrec`` command line. Every user mistake ends in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from whyrec.errors import WhyrecError

DEMO_RUN = Path("runs") / "demo"


def _dataset_args(parser: argparse.ArgumentParser, dataset_help: str | None = None) -> None:
    """--dataset and the options of loading and encoding it; ``dataset_help`` makes it optional."""
    parser.add_argument(
        "--dataset",
        required=dataset_help is None,
        help=dataset_help or "KIND:PATH (movielens, amazon, movietweetings, csv) or demo",
    )
    parser.add_argument("--items", help="csv kind: item catalogue file (item_id, title, more text columns)")
    parser.add_argument("--user-col", default="user_id")
    parser.add_argument("--item-col", default="item_id")
    parser.add_argument("--time-col", default="timestamp")
    parser.add_argument("--rating-col", default="rating")
    parser.add_argument("--sep", default=",", help="csv kind: delimiter (default ,)")
    parser.add_argument("--k-core", type=int, default=None, help="keep users and items with at least K rows")
    parser.add_argument(
        "--encoder",
        default=None,
        help="text encoder: minilm (default, bundled), hashing, or a sentence-transformers path",
    )


def _load_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from whyrec.data import LoadOptions

    sep = "\t" if args.sep in ("\\t", "tab") else args.sep
    return LoadOptions(
        items=args.items,
        user_col=args.user_col,
        item_col=args.item_col,
        time_col=args.time_col,
        rating_col=args.rating_col,
        sep=sep,
        k_core=args.k_core,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whyrec", description="A sequential recommender that explains itself."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or reports")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on the bundled MovieTweetings data and serve the web UI")
    demo.add_argument("--no-serve", action="store_true", help="print explained recommendations instead")
    demo.add_argument("--model", default="sasrec")
    demo.add_argument("--out", type=Path, default=DEMO_RUN)
    demo.add_argument("--retrain", action="store_true", help="train again even if the demo run exists")
    demo.add_argument("--users", type=int, default=3, help="--no-serve: how many users to show")
    demo.add_argument("-k", type=int, default=5)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--db", default=None, help="event store URL (default: SQLite file in the run directory)"
    )

    train = sub.add_parser("train", help="train one model and save a run directory")
    _dataset_args(train, dataset_help="KIND:PATH; with --run, defaults to the run's dataset")
    train.add_argument("--model", default=None, help="default: sasrec; with --run: the run's model")
    train.add_argument("--out", type=Path, help="the new run directory")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--tensorboard", metavar="DIR", help="log loss and validation metrics to TensorBoard")
    train.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="change a model setting (a config field), e.g. --set id_dropout=0.3; repeatable",
    )
    train.add_argument(
        "--run", type=Path, help="retrain this run (with --with-feedback: fold in its stored events)"
    )
    train.add_argument("--with-feedback", action="store_true", help="add the events stored by `whyrec serve`")
    train.add_argument("--db", default=None, help="event store URL (default: the run's SQLite file)")

    evaluate = sub.add_parser("evaluate", help="train and test several models on the same split")
    _dataset_args(evaluate)
    evaluate.add_argument("--models", default="pop,itemknn,content,sasrec,hybrid")
    evaluate.add_argument("--json", type=Path, help="write the metrics JSON here")
    evaluate.add_argument("--explanations", action="store_true", help="also measure explanation quality")
    evaluate.add_argument("--explain-users", type=int, default=200, help="users sampled for --explanations")
    evaluate.add_argument("--tensorboard", metavar="DIR")
    evaluate.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="change a setting of every model that has it, e.g. --set max_epochs=30; repeatable",
    )

    recommend = sub.add_parser("recommend", help="top-K for one user of a run")
    recommend.add_argument("--run", type=Path, required=True)
    recommend.add_argument("--user", required=True)
    recommend.add_argument("-k", type=int, default=10)
    recommend.add_argument("--explain", action="store_true", help="add a short explanation to every row")
    recommend.add_argument("--json", action="store_true")
    recommend.add_argument("--lang", choices=["en", "zh"], default="en")

    explain = sub.add_parser("explain", help="the full explanation of one (user, item) pair")
    explain.add_argument("--run", type=Path, required=True)
    explain.add_argument("--user", required=True)
    explain.add_argument("--item", required=True)
    explain.add_argument("-k", type=int, default=10)
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--lang", choices=["en", "zh"], default="en")
    explain.add_argument(
        "--llm",
        nargs="?",
        const="smollm",
        default=None,
        help="rephrase with an LLM: smollm (default) or an OpenAI-compatible base URL",
    )

    serve = sub.add_parser("serve", help="the HTTP API and web UI for a run")
    serve.add_argument("--run", type=Path, required=True)
    serve.add_argument(
        "--db", default=None, help="SQLAlchemy URL (default: sqlite file events.db in the run)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--llm", default=None, help="smollm or an OpenAI-compatible base URL")
    return parser


def _say(quiet: bool):  # type: ignore[no-untyped-def]
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _prepare_out(out: Path, overwrite: bool) -> None:
    if (out / "run.json").exists() and not overwrite:
        raise WhyrecError(f"run directory {out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise WhyrecError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)


def cmd_train(args: argparse.Namespace) -> int:
    from whyrec.pipeline import prepare, tensorboard_logger, train_run

    say = _say(args.quiet)
    if args.run is not None or args.with_feedback:
        from whyrec.feedback import retrain_with_feedback

        return retrain_with_feedback(args, say)
    if not args.dataset or not args.out:
        raise WhyrecError("train needs --dataset SPEC and --out RUN_DIR (or --run RUN_DIR --with-feedback)")
    args.model = args.model or "sasrec"
    from whyrec.models.registry import build_models, parse_settings

    # an unknown model or setting fails before any work
    settings = parse_settings(args.set)
    model = build_models([args.model], settings)[args.model]
    _prepare_out(args.out, args.overwrite)
    prepared = prepare(args.dataset, _load_options(args), args.encoder, say=say, progress=not args.quiet)
    _, row = train_run(
        prepared,
        args.model,
        args.out,
        progress=not args.quiet,
        log=tensorboard_logger(args.tensorboard),
        say=say,
        model=model,
        settings=settings,
    )
    print(f"saved run {args.out}: {args.model} test NDCG@10 {row['NDCG@10']:.4f}, HR@10 {row['HR@10']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from whyrec.models.registry import build_models, parse_settings
    from whyrec.pipeline import fit_and_test, prepare, tensorboard_logger

    say = _say(args.quiet)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models = build_models(names, parse_settings(args.set))  # unknown names fail here, before any work
    if args.json and args.json.parent and not args.json.parent.exists():
        raise WhyrecError(f"folder for --json does not exist: {args.json.parent}")
    prepared = prepare(args.dataset, _load_options(args), args.encoder, say=say, progress=not args.quiet)
    rows = fit_and_test(
        prepared, models, progress=not args.quiet, log=tensorboard_logger(args.tensorboard), say=say
    )
    if args.explanations:
        from whyrec.eval.explanations import explanation_metrics

        for row, model in zip(rows, models.values(), strict=True):
            say(f"measuring explanations of {model.name} ...")
            row.update(
                explanation_metrics(prepared, model, n_users=args.explain_users, progress=not args.quiet)
            )
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ["model", "HR@10", "NDCG@10", "MRR@10", "NDCG@20", "coverage@10", "train_seconds"]
    extra = [
        c
        for c in ("fidelity_ratio", "counterfactual_validity", "grounding_rate", "explain_ms_per_user")
        if any(c in r for r in rows)
    ]
    cols += extra
    lines = ["  ".join(f"{c:>12}" for c in cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c, "")
            cells.append(f"{v:>12.4f}" if isinstance(v, float) else f"{v!s:>12}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _load_run(path: Path):  # type: ignore[no-untyped-def]
    from whyrec.recommender import Recommender

    return Recommender.load(path)


def cmd_recommend(args: argparse.Namespace) -> int:
    from whyrec.explain import Explainer

    rec = _load_run(args.run)
    rec.history(args.user)  # unknown user: one clear line
    if args.k < 1:
        raise WhyrecError("-k must be at least 1")
    if args.explain:
        pairs = Explainer(rec).explain_recommendations(args.user, k=args.k, lang=args.lang)
        rows = [
            {
                "rank": r.rank,
                "item_id": r.item_id,
                "title": r.title,
                "score": round(r.score, 4),
                "explanation": e.sentence.text,
                "evidence": [ev.item_id for ev in e.evidence[:3]],
            }
            for r, e in pairs
        ]
    else:
        rows = [
            {"rank": r.rank, "item_id": r.item_id, "title": r.title, "score": round(r.score, 4)}
            for r in rec.recommend(args.user, k=args.k)
        ]
    if args.json:
        print(
            json.dumps(
                {"user_id": args.user, "model": rec.model.name, "recommendations": rows},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(
        f"top {len(rows)} for user {args.user} "
        f"({rec.model.name}, {len(rec.history(args.user))} items in history)"
    )
    for row in rows:
        print(f"{row['rank']:>3}. {row['title']}  [{row['item_id']}]  score {row['score']:.3f}")
        if "explanation" in row:
            print(f"     {row['explanation']}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from whyrec.explain import Explainer, make_phraser

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
    from whyrec.service import serve

    serve(args.run, db=args.db, host=args.host, port=args.port, llm=args.llm)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from whyrec.explain import Explainer
    from whyrec.pipeline import prepare, train_run

    say = _say(args.quiet)
    out: Path = args.out
    if args.retrain or not (out / "run.json").exists() or _run_model(out) != args.model:
        out.mkdir(parents=True, exist_ok=True)
        prepared = prepare("demo", encoder=None, say=say, progress=not args.quiet)
        _, row = train_run(prepared, args.model, out, progress=not args.quiet, say=say)
        say(f"demo run saved to {out} (test NDCG@10 {row['NDCG@10']:.4f})")
    else:
        say(f"using the demo run in {out} (--retrain to train again)")
    if not args.no_serve:
        from whyrec.service import serve

        serve(out, db=args.db, host=args.host, port=args.port)
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


def _run_model(out: Path) -> str | None:
    try:
        return str(json.loads((out / "run.json").read_text()).get("model"))
    except (OSError, ValueError):
        return None


COMMANDS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "recommend": cmd_recommend,
    "explain": cmd_explain,
    "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except WhyrecError as exc:
        print(f"whyrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("whyrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
