"""The harness side of the RecBole comparison: run ``bench/recbole_run.py`` in the RecBole venv,
check that RecBole tests the same item as whyrec for every user, and report its rows.

    bash bench/setup_recbole.sh
    python -m bench.recbole_side movielens:../shared/data/ml-100k      # split check only, no training

The models themselves run through ``bench/compare.py --recbole Pop,SASRec,...``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from whyrec.data import SequenceSplit, leave_one_out, load_dataset

BENCH = Path(__file__).resolve().parent
RECBOLE_PYTHON = BENCH / ".recbole-venv" / "bin" / "python"
RECBOLE_RUN = BENCH / "recbole_run.py"
MODELS = ("Pop", "SASRec", "GRU4Rec", "BERT4Rec")


def whyrec_held_out(split: SequenceSplit) -> dict[str, tuple[str, str]]:
    """Each user's (test item, validation item) in whyrec's split."""
    _, tests = split.test()
    _, valids = split.valid()
    pairs = zip(split.items.lookup_ids(tests), split.items.lookup_ids(valids), strict=True)
    return dict(zip(split.users.ids, pairs, strict=True))


def read_held_out(path: Path) -> dict[str, tuple[str, str]]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line]
    return {user: (test, valid) for user, test, valid in rows}


def check_test_items(split: SequenceSplit, path: Path) -> int:
    """Fail loudly unless RecBole tests (and validates on) the same item as whyrec for every
    user; returns the number of users checked."""
    ours, theirs = whyrec_held_out(split), read_held_out(path)
    one_side = sorted(set(ours) ^ set(theirs))
    tests = [u for u in ours if u in theirs and ours[u][0] != theirs[u][0]]
    valids = [u for u in ours if u in theirs and ours[u][1] != theirs[u][1]]
    if one_side or tests or valids:
        examples = [f"user {u}: whyrec tests {ours[u][0]}, RecBole {theirs[u][0]}" for u in tests[:3]]
        raise SystemExit(
            f"RecBole split mismatch ({path}): {len(tests)} users test a different item, "
            f"{len(valids)} validate on a different item, {len(one_side)} are on one side only "
            f"(e.g. {one_side[:3]}); {'; '.join(examples)}"
        )
    return len(ours)


def run_recbole(
    spec: str,
    model: str,
    out: Path,
    split: SequenceSplit,
    *,
    max_minutes: float | None = None,
    split_only: bool = False,
) -> dict | None:
    """Run one RecBole model as a subprocess (its output goes to OUT/run.log), check its split,
    and return its metrics row (None with ``split_only``)."""
    if not RECBOLE_PYTHON.exists():
        raise SystemExit(f"no RecBole venv in {RECBOLE_PYTHON.parents[2]}; run: bash bench/setup_recbole.sh")
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_items.tsv").unlink(missing_ok=True)
    (out / "row.json").unlink(missing_ok=True)
    command = [str(RECBOLE_PYTHON), str(RECBOLE_RUN), spec, model, "--out", str(out)]
    if max_minutes is not None:
        command += ["--max-minutes", str(max_minutes)]
    if split_only:
        command.append("--split-only")
    start = time.perf_counter()
    with (out / "run.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = (out / "run.log").read_text().splitlines()[-15:]
        raise SystemExit(
            f"recbole:{model} failed (exit {done.returncode}); end of {out / 'run.log'}:\n" + "\n".join(tail)
        )
    checked = check_test_items(split, out / "test_items.tsv")
    print(f"recbole:{model}: same test and validation items as whyrec for all {checked:,} users", flush=True)
    if split_only:
        return None
    row = json.loads((out / "row.json").read_text())
    row["split_checked_users"] = checked
    row["wall_seconds"] = round(time.perf_counter() - start, 1)
    return row


def run_all(
    spec: str, models: list[str], out: Path, split: SequenceSplit, max_minutes: float | None
) -> list[dict]:
    """Every requested model, one after another (never two jobs on the 2 cores at once)."""
    rows = []
    for model in models:
        row = run_recbole(spec, model, out / model, split, max_minutes=max_minutes)
        assert row is not None
        print(
            f"recbole:{model}: NDCG@10 {row['NDCG@10']} after {row['epochs_run']} epochs "
            f"in {row['train_seconds']}s ({'converged' if row['converged'] else 'time limit'})",
            flush=True,
        )
        rows.append(row)
    return rows


def read_curve(log: Path) -> list[dict]:
    """The validation curve so far from a run's ``run.log`` (the lines recbole_run.py prints)."""
    curve = []
    for line in log.read_text().splitlines():
        match = re.fullmatch(r"epoch (\d+) valid NDCG@10 ([\d.]+) \(([\d.]+)s\)", line.strip())
        if match:
            curve.append({"epoch": int(match[1]), "NDCG@10": float(match[2]), "seconds": float(match[3])})
    return curve


def read_runs(directory: Path, models: list[str], split: SequenceSplit) -> tuple[list[dict], list[dict]]:
    """Rows of RecBole runs made earlier under DIRECTORY/MODEL (by ``compare.py --recbole`` or
    ``recbole_run.py`` in the background), each checked against SPLIT again; runs still going
    (no ``row.json`` yet) come back apart, with their validation curve so far."""
    rows, running = [], []
    for model in models:
        out = directory / model
        if (out / "row.json").exists():
            checked = check_test_items(split, out / "test_items.tsv")
            row = json.loads((out / "row.json").read_text())
            row["split_checked_users"] = checked
            row["run_dir"] = str(out)
            rows.append(row)
        elif (out / "run.log").exists():
            curve = read_curve(out / "run.log")
            running.append({"model": f"recbole:{model}", "run_dir": str(out), "valid_curve": curve})
        else:
            raise SystemExit(f"no RecBole run of {model} in {out}")
    return rows, running


def report_lines(rows: list[dict], running: list[dict] | None = None) -> list[str]:
    """Markdown for the RecBole rows: the seen-items-masked figures and each validation curve."""
    recbole = [r for r in rows if str(r.get("model", "")).startswith("recbole:")]
    running = running or []
    if not recbole and not running:
        return []
    lines = ["", "## RecBole 1.2.1", ""]
    lines += [
        "RecBole's sequential evaluation ranks items the user has already seen; whyrec's masks them. "
        "The same checkpoints with seen items masked (whyrec's protocol); for Pop, which RecBole masks "
        "itself, also popularity from exact counts (RecBole 1.2.1's Pop counts an item once per "
        "training batch: RUCAIBox/RecBole#1844). Its closed-form general models (EASE, ItemKNN) are "
        "tuned on validation NDCG@10 and ranked as whyrec ranks (seen items masked, ties at their "
        "expected place):",
        "",
        "| model | HR@10 | NDCG@10 | MRR@10 | NDCG@20 | epochs | best epoch | s/epoch | converged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recbole:
        if "seen_masked" in r:
            variants = [("seen items masked", r["seen_masked"])]
        elif "grid" in r:  # a closed-form general model, tuned on validation and scored as whyrec scores
            variants = [(", ".join(f"{k} {v}" for k, v in r["settings"].items()) or "defaults", r)]
        else:
            variants = [("RecBole's own", r)]
        if "exact_counts" in r:  # RecBole 1.2.1's Pop undercounts items repeated within a batch
            variants.append(("exact counts", r["exact_counts"]))
        for label, figures in variants:
            lines.append(
                f"| {r['model']} ({label}) | {figures['HR@10']:.4f} | {figures['NDCG@10']:.4f} | "
                f"{figures['MRR@10']:.4f} | {figures['NDCG@20']:.4f} | {r['epochs_run']} | "
                f"{r['best_epoch']} | {r.get('seconds_per_epoch')} | {r['converged']} |"
            )
    for r in running:
        best = max(r["valid_curve"], key=lambda c: c["NDCG@10"], default=None)
        lines.append(
            f"\n{r['model']} was still training when this report was written "
            f"({len(r['valid_curve'])} epochs"
            + (f", best validation NDCG@10 {best['NDCG@10']:.4f} at epoch {best['epoch']}" if best else "")
            + ", RecBole's protocol: seen items ranked): no test figures, since RecBole tests the best "
            "epoch only when training ends."
        )
    lines += ["", "Validation NDCG@10 per epoch (seconds since training began):", ""]
    for r in recbole + running:
        curve = ", ".join(f"{c['epoch']}: {c['NDCG@10']:.4f} ({c['seconds']:.0f}s)" for c in r["valid_curve"])
        lines.append(f"- {r['model']}: {curve}")
    return lines


def curve_plot(rows: list[dict], out: Path) -> list[str]:
    """Validation NDCG@10 against training time for every row with a curve of more than one epoch
    (whyrec's sequence models, the reference and RecBole's), on a log time axis."""
    curves = [r for r in rows if len(r.get("valid_curve") or []) > 1]
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for r in curves:
        ax.plot(
            [c["seconds"] for c in r["valid_curve"]],
            [c["NDCG@10"] for c in r["valid_curve"]],
            marker=".",
            label=r["model"],
        )
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("valid NDCG@10 (each side's own)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out.with_name(f"{out.name}_valid_curves.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path.name]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--models", default="Pop,SASRec", help="RecBole models whose data path to check")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "recbole-split-check")
    args = parser.parse_args()
    split = leave_one_out(load_dataset(args.dataset))
    for model in args.models.split(","):
        run_recbole(args.dataset, model, args.out / model, split, split_only=True)


if __name__ == "__main__":
    main()
