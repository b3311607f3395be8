"""Side-by-side benchmark: whyrec's models and the minimal reference SASRec on one split.

    python -m bench.compare movielens:../shared/data/ml-100k --out bench/out/ml-100k
    python -m bench.compare amazon:../shared/data/amazon-scientific-unisrec --out bench/out/scientific
    python -m bench.compare movielens:../shared/data/ml-100k --out bench/out/ml-100k \
        --recbole Pop,SASRec,GRU4Rec,BERT4Rec --recbole-max-minutes 60   # after bench/setup_recbole.sh
    python -m bench.compare amazon:... --models ease,sasrec --set sasrec:dropout=0.5 --out ...

Runs the reference (``../shared/reference/sasrec_reference.py``, run as it is, never copied) as a
subprocess, checks that it tests the same item for every user as whyrec's split, trains whyrec's
models on that split (plus an ID-only SASRec for the cold-start comparison), and writes
``OUT.json`` (DESIGN.md metrics rows) and ``OUT.md`` with plots. ``--recbole`` adds RecBole 1.2.1
models, each run by ``bench/recbole_run.py`` in its own venv and checked to hold out the same items
(see ``bench/recbole_side.py``). ``--set [MODEL:]KEY=VALUE`` sets a whyrec model's setting (for
every model that has KEY, or for MODEL alone); the JSON records every model's full settings.
``--fresh-reference`` runs the reference again with ``--reuse``. ``--adapt-encoder`` fine-tunes
the text encoder on the training split first (cached). RecBole's sequence models can take hours
to converge here: run them uncapped in the background with ``bench/recbole_run.py ... --out
DIR/MODEL`` and add them with ``--recbole SASRec,GRU4Rec --recbole-from DIR``; a run still going
is reported by its validation curve so far. Run it alone: two 2-thread jobs on 2 cores slow each
other several-fold. Tooling only; CI does not run it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import adaptation, add_adapt_encoder, write_result
from bench.peers import PEERS, peer_ratios, run_peer
from bench.recbole_side import curve_plot, read_runs, report_lines, run_all
from whyrec.explain import make_phraser
from whyrec.explain.quality import explanation_metrics
from whyrec.metrics import metrics_from_ranks, rank_targets
from whyrec.models import FitData, SASRec, Scorer
from whyrec.training import build_model, build_models
from whyrec.training.pipeline import Prepared, fit_and_test, prepare

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "sasrec_reference.py"
REUSED = ("reference:", "recbole:")  # the rows --reuse takes from an earlier run


def reused_rows(rows: list[dict], source: str, also: tuple[str, ...], fresh_reference: bool) -> list[dict]:
    """The rows of an earlier run that ``--reuse`` carries over, marked with their SOURCE: the
    reference's (unless FRESH_REFERENCE) and RecBole's, and whyrec's models named in ALSO."""

    def carried(model: str) -> bool:
        if model.startswith("reference:"):
            return not fresh_reference
        return model.startswith(REUSED) or model in also

    return [dict(r, reused_from=source) for r in rows if carried(str(r["model"]))]


def reference_reads(spec: str) -> bool:
    """The reference's loader knows two layouts: ml-100k's u.data and the atomic amazon files."""
    kind, path = spec.split(":", 1)
    if kind == "movielens":
        return (Path(path) / "u.data").exists()
    return kind == "amazon" and any(Path(path).glob("*.test.inter"))


def reference_targets(spec: str) -> dict[str, str]:
    """The reference's own test item per user, from its own loader (imported, not copied)."""
    module_spec = importlib.util.spec_from_file_location("sasrec_reference", REFERENCE)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sequences, _ = module.load(spec)
    # the reference numbers items 1.. in sorted order of their raw ids
    raw_items = sorted({it for s in _raw_sequences(spec) for it in s})
    return {user: raw_items[seq[-1] - 1] for user, seq in sequences.items()}


def _raw_sequences(spec: str) -> list[list[str]]:
    """The raw item ids the reference's loader reads (its layouts: ml-100k, atomic test file)."""
    kind, path = spec.split(":", 1)
    if kind == "movielens":
        return [[line.split("\t")[1] for line in (Path(path) / "u.data").read_text().splitlines()]]
    rows = next(Path(path).glob("*.test.inter")).read_text().splitlines()[1:]
    return [[*r.split("\t")[1].split(), r.split("\t")[2]] for r in rows]


def check_same_targets(prepared: Prepared, spec: str) -> int:
    """Both sides must hold out the same item for every user; returns the number checked."""
    ours_items = prepared.split.items
    _, targets = prepared.split.test()
    ours = dict(zip(prepared.split.users.ids, ours_items.lookup_ids(targets), strict=True))
    theirs = reference_targets(spec)
    if spec.startswith("amazon:"):  # the reference keeps the files' remapped ids: map ours back
        path = Path(spec.split(":", 1)[1])
        users = dict(line.split("\t") for line in (next(path.glob("*.user2index"))).read_text().splitlines())
        items = dict(line.split("\t") for line in (next(path.glob("*.item2index"))).read_text().splitlines())
        ours = {users[u].strip(): items[i].strip() for u, i in ours.items()}
    mismatched = [u for u in theirs if ours.get(u) != theirs[u]]
    if mismatched or len(ours) != len(theirs):
        raise SystemExit(
            f"split mismatch: {len(mismatched)} users test different items; e.g. {mismatched[:3]}"
        )
    return len(theirs)


def run_reference(spec: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(REFERENCE), spec], capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["wall_seconds"] = round(time.perf_counter() - start, 1)
    # its lines read "epoch N Ts loss L valid NDCG@10 V"
    epochs = [line.split() for line in out.stdout.splitlines() if line.startswith("epoch ")]
    row["valid_curve"] = [
        {"epoch": int(e[1]), "seconds": float(e[2].rstrip("s")), "NDCG@10": float(e[-1])} for e in epochs
    ]
    return row


def cold_start(prepared: Prepared, text_model: SASRec, models: dict) -> dict:
    """NDCG@10 on test cases whose target never appears in training: text-aware SASRec vs the same
    SASRec on ID embeddings only, and every other trained model on the same cases."""
    split = prepared.split
    seen = split.train_item_counts() > 0
    histories, targets = split.test()
    cold = np.flatnonzero(~seen[targets])
    if not len(cold):
        return {"cold_cases": 0}
    id_only = SASRec(text_model.config, text_model.training, replace(text_model.items, use_text=False))
    id_only.fit(FitData(split, prepared.item_vectors, progress=True))
    out: dict = {"cold_cases": len(cold)}
    cold_histories = [histories[i] for i in cold]
    for name, model in (("text", text_model), ("id_only", id_only)):
        ranks, _ = rank_targets(model, cold_histories, targets[cold])
        out[f"cold_NDCG@10_{name}"] = round(metrics_from_ranks(ranks)["NDCG@10"], 5)
        full = rank_targets(model, histories, targets)[0]
        out[f"all_NDCG@10_{name}"] = round(metrics_from_ranks(full)["NDCG@10"], 5)
    out["cold_NDCG@10_by_model"] = {
        name: round(metrics_from_ranks(rank_targets(model, cold_histories, targets[cold])[0])["NDCG@10"], 5)
        for name, model in models.items()
    }
    return out


def plots(rows: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    files = []
    for metric in ("NDCG@10", "HR@10", "train_seconds"):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.bar(names, [r.get(metric, 0) or 0 for r in rows], color="#4c78a8")
        ax.set_title(f"{rows[0]['dataset']}: {metric}")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        path = out.with_name(f"{out.name}_{metric.replace('@', '')}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path.name)
    return files


def built_models(names: list[str], entries: list[str]) -> dict[str, Scorer]:
    """The whyrec models, with the ``--set`` entries: ``KEY=VALUE`` for every model that has KEY
    (as ``whyrec --set``), ``MODEL:KEY=VALUE`` for that model alone."""
    shared: dict[str, str] = {}
    scoped: dict[str, dict[str, str]] = {}
    for entry in entries:
        key, equals, value = entry.partition("=")
        scope, _, key = key.rpartition(":")
        if not equals or not key or (scope and scope not in names):
            raise SystemExit(f"--set {entry!r}: expected [MODEL:]KEY=VALUE with MODEL among --models")
        (scoped.setdefault(scope, {}) if scope else shared)[key] = value
    models = build_models(names, shared)
    for name, settings in scoped.items():
        build_models([name], settings)  # each scoped KEY must be one of that model's settings
        models[name] = build_model(name, {**shared, **settings})
    return models


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--models", default="pop,itemknn,content,sasrec,hybrid")
    parser.add_argument("--out", type=Path, required=True, help="path prefix for .json, .md and plots")
    parser.add_argument("--no-reference", action="store_true")
    add_adapt_encoder(parser)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="classic peers tuned on validation (bench/peers.py); '' for none",
    )
    parser.add_argument(
        "--reuse-also",
        default="",
        help="whyrec models whose rows --reuse carries over too (not trained here)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[MODEL:]KEY=VALUE",
        help="a setting of the whyrec models (as whyrec --set), of one model with MODEL: (repeatable)",
    )
    parser.add_argument("--explain", default="", help="whyrec models whose explanations are measured too")
    parser.add_argument("--explain-users", type=int, default=200)
    parser.add_argument("--llm", default=None, help="phrase with this LLM (smollm or a URL) for --llm-users")
    parser.add_argument("--llm-users", type=int, default=50)
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="take the reference and RecBole rows from this earlier harness JSON instead of running them",
    )
    parser.add_argument(
        "--fresh-reference",
        action="store_true",
        help="with --reuse, run the reference again instead of carrying its row over (its time to "
        "its best epoch is compared with whyrec's, so both should come from the same run)",
    )
    parser.add_argument("--recbole", default="", help="RecBole models to add: Pop,SASRec,GRU4Rec,BERT4Rec")
    parser.add_argument("--recbole-max-minutes", type=float, default=None, help="training limit per model")
    parser.add_argument(
        "--recbole-from",
        type=Path,
        default=None,
        help="read the --recbole models' runs from DIR/MODEL (made earlier, e.g. uncapped in the "
        "background) instead of running them; each is checked against this split again",
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prepared = prepare(args.dataset, adapt=adaptation(args))
    rows, notes = [], []
    if not args.no_reference and not reference_reads(args.dataset):
        args.no_reference = True
        notes.append(
            "the reference SASRec was not run: its loader reads only ml-100k's and the amazon layout"
        )
        print(notes[-1], flush=True)
    if args.reuse:
        old = json.loads(args.reuse.read_text())
        old_rows = old["rows"] if isinstance(old, dict) else old
        also = tuple(filter(None, args.reuse_also.split(",")))
        reused = reused_rows(old_rows, str(args.reuse), also, args.fresh_reference)
        rows += reused
        args.no_reference = args.no_reference or any(r["model"].startswith("reference:") for r in reused)
        made = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", str(args.reuse)], capture_output=True, text=True
        ).stdout.strip()
        stamp = old["stamp"]["commit"][:7] if isinstance(old, dict) else f"the file as committed in {made}"
        notes.append(
            f"not re-measured, taken from {args.reuse} ({stamp}): {', '.join(r['model'] for r in reused)}"
        )
    if not args.no_reference:
        checked = check_same_targets(prepared, args.dataset)
        notes.append(f"same test item for all {checked:,} users on both sides (checked)")
        reference = run_reference(args.dataset)
        reference["dataset"] = args.dataset
        rows.append(reference)
        print(f"reference: NDCG@10 {reference['NDCG@10']} in {reference['wall_seconds']}s", flush=True)
    models = built_models(args.models.split(","), args.set)
    for row in fit_and_test(prepared, models):
        details = row.get("details", {})
        if "valid_curve" in details:  # the same shape as the reference's and RecBole's curves
            row["valid_curve"] = [
                {"epoch": e, "seconds": t, "NDCG@10": v}
                for e, (v, t) in enumerate(
                    zip(details.pop("valid_curve"), details.pop("valid_seconds"), strict=True)
                )
            ]
        rows.append(row)
    valid_histories, valid_targets = prepared.split.valid()
    for row, model in zip(rows[-len(models) :], models.values(), strict=True):
        if "valid_NDCG@10" not in row:  # every whyrec model is chosen on validation too
            ranks, _ = rank_targets(model, valid_histories, valid_targets)
            row["valid_NDCG@10"] = round(metrics_from_ranks(ranks)["NDCG@10"], 5)
    by_model = {r["model"]: r for r in rows}
    for name in filter(None, args.explain.split(",")):
        print(f"explanations of {name} ...", flush=True)
        by_model[name].update(
            explanation_metrics(
                prepared,
                models[name],
                args.explain_users,
                progress=False,
                phraser=make_phraser(args.llm),
                llm_users=args.llm_users,
            )
        )
    for kind in filter(None, args.peers.split(",")):
        print(f"peer {kind}: tuning on validation ...", flush=True)
        rows.append(run_peer(kind, prepared.split, args.dataset))
        print(f"peer {kind}: NDCG@10 {rows[-1]['NDCG@10']} with {rows[-1]['settings']}", flush=True)
    running: list[dict] = []
    if args.recbole and args.recbole_from:
        recbole_rows, running = read_runs(args.recbole_from, args.recbole.split(","), prepared.split)
        rows += recbole_rows
        notes.append(
            f"RecBole runs read from {args.recbole_from}, made before this run; each holds out the same "
            f"test and validation items as whyrec for all {prepared.split.n_users:,} users (checked)"
        )
        if running:
            notes.append(f"still training, so not in the table: {', '.join(r['model'] for r in running)}")
    elif args.recbole:
        recbole_dir = args.out.parent / f"{args.out.name}_recbole"
        try:  # a RecBole failure must not lose the rows measured so far
            recbole_rows = run_all(
                args.dataset, args.recbole.split(","), recbole_dir, prepared.split, args.recbole_max_minutes
            )
        except SystemExit as failure:
            notes.append(f"RecBole was not run to the end: {str(failure).splitlines()[-1]}")
            print(notes[-1], flush=True)
        else:
            rows += recbole_rows
            notes.append(
                f"RecBole holds out the same test and validation items as whyrec for all "
                f"{prepared.split.n_users:,} users (checked for each model); its runs are in {recbole_dir}"
            )
    extra = {}
    if not args.no_cold_start and isinstance(models.get("sasrec"), SASRec):
        extra = cold_start(prepared, models["sasrec"], models)  # type: ignore[arg-type]
        notes.append(f"cold start: {json.dumps(extra)}")
    machine = (
        f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}"
    )
    ratios = peer_ratios(rows)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    config["model_settings"] = {
        name: {role: c.to_dict() if hasattr(c, "to_dict") else str(c) for role, c in m.configs().items()}
        for name, m in models.items()
    }
    payload = {"rows": rows, "ratios": ratios, "notes": notes}
    if extra:  # measured in this run (not with --no-cold-start): stamped with the rows it goes with
        payload["cold_start"] = extra
    write_result(args.out.with_suffix(".json"), payload, config)
    if running:  # their curves so far
        (args.out.parent / f"{args.out.name}_recbole_running.json").write_text(json.dumps(running, indent=2))
    images = plots(rows, args.out) + curve_plot(rows + running, args.out)
    lines = [
        f"# {args.dataset}",
        "",
        f"{time.strftime('%Y-%m-%d')}, {machine}",
        "",
        "| model | HR@10 | NDCG@10 | MRR@10 | NDCG@20 | train s | s to best |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['HR@10']:.4f} | {r['NDCG@10']:.4f} | {r['MRR@10']:.4f} | "
            f"{r['NDCG@20']:.4f} | {r.get('train_seconds', '')} | {r.get('seconds_to_best', '')} |"
        )
    lines += [
        "",
        *[f"- {n}" for n in notes],
        *report_lines(rows, running),
        *[
            f"- {name}: `{r['whyrec']}` {r['whyrec_test_NDCG@10']:.4f} / `{r['peer']}` "
            f"{r['peer_test_NDCG@10']:.4f} = **{r['ratio']}×** (whyrec's side chosen on validation, "
            "the peer's at its best test showing)"
            for name, r in ratios.items()
            if r
        ],
        "",
        *[f"![{i}]({i})" for i in images],
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
