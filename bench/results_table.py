"""Markdown tables from metrics JSON files written by `whyrec evaluate` or bench/compare.py.

    python -m bench.results_table        # writes bench/RESULTS.md from bench/results/harness/
    python -m bench.results_table --readme   # the README's short table (test NDCG@10), from the same files
    python -m bench.results_table results/ml100k.json results/amazon.json
    python -m bench.results_table --harness bench/results/compare-ml-100k.json ...
    python -m bench.results_table --cold-start bench/results/cold-start-scientific.json ...

``--cold-start`` reads bench/cold_start.py output: one row per variant, validation and test.

``--harness`` reads bench/compare.py output (its cold-start figures included, when measured) and adds,
per dataset, figures computed from the rows: the two peer ratios (whyrec's side chosen on
validation), and whyrec sasrec's time to its best validation epoch over the reference's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.peers import peer_ratios, valid_ndcg

ACCURACY = ["HR@10", "NDCG@10", "MRR@10", "NDCG@20", "coverage@10", "train_seconds", "seconds_to_best"]
EXPLAIN = [
    "fidelity_top3_rank_drop",
    "fidelity_random3_rank_drop",
    "fidelity_recent3_rank_drop",
    "fidelity_ratio",
    "fidelity_ratio_recent",
    "counterfactual_found_rate",
    "counterfactual_mean_size",
    "counterfactual_validity",
    "grounding_rate",
    "explanation_coverage",
    "unique_sentence_ratio",
    "explain_ms_per_user",
]


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    present = [c for c in columns if any(c in r for r in rows)]
    lines = ["| dataset | model | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
    for r in rows:
        if not any(c in r for c in present):
            continue
        dataset = str(r["dataset"]).split("/")[-1]
        lines.append(f"| {dataset} | {r['model']} | " + " | ".join(_cell(r.get(c)) for c in present) + " |")
    return "\n".join(lines)


BASELINE_PREFIXES = ("reference:", "recbole:", "implicit:", "bench:")
RATIO_NAMES = {
    "any_model": "best whyrec model (chosen on validation) / best peer of any kind",
    "single_network": "best single whyrec network (chosen on validation) / best single peer network",
}


def _masked_ndcg(row: dict) -> float:
    """NDCG@10 with seen items masked (whyrec's protocol); RecBole rows carry it separately."""
    return float(row.get("seen_masked", row)["NDCG@10"])


def _seconds(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "–"


def _baseline_ndcg(row: dict) -> float:
    """A baseline's strongest NDCG@10 among the ways it was scored (as RecBole ranks, with seen
    items masked, and for RecBole's Pop from exact counts): the bar is set by its best showing."""
    variants = [row, row.get("seen_masked", {}), row.get("exact_counts", {})]
    return max(float(v["NDCG@10"]) for v in variants if "NDCG@10" in v)


def _stopped_by(row: dict) -> str:
    return {"max_minutes": "time limit", "stop file": "stopped at the session's end"}.get(
        row.get("stopped_by", "max_minutes"), str(row.get("stopped_by"))
    )


def harness_table(rows: list[dict]) -> str:
    lines = [
        "| model | HR@10 | NDCG@10 | NDCG@10, seen items masked | s to best valid epoch | train s "
        "| converged |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        baseline = str(r["model"]).startswith(BASELINE_PREFIXES)
        converged = "yes" if r.get("converged", True) else f"**no** ({_stopped_by(r)})"
        lines.append(
            f"| {r['model']} | {r['HR@10']:.4f} | {r['NDCG@10']:.4f} | {_masked_ndcg(r):.4f} | "
            f"{_seconds(r.get('seconds_to_best'))} | {_seconds(r.get('train_seconds'))} | "
            f"{converged if baseline or 'converged' in r else ''} |"
        )
    return "\n".join(lines)


def harness_targets(rows: list[dict], cold: dict) -> list[str]:
    """The benchmark's targets, computed from one run's rows (nothing typed in by hand)."""
    baselines = [r for r in rows if str(r["model"]).startswith(BASELINE_PREFIXES)]
    lines = []
    for name, r in peer_ratios(rows).items():
        if r:
            lines.append(
                f"- {RATIO_NAMES[name]}: `{r['whyrec']}` {r['whyrec_test_NDCG@10']:.4f} / `{r['peer']}` "
                f"{r['peer_test_NDCG@10']:.4f} = **{r['ratio']:.2f}×**"
            )
    unconverged = [r for r in baselines if not r.get("converged", True)]
    if unconverged:
        names = ", ".join(f"`{r['model']}` ({_baseline_ndcg(r):.4f})" for r in unconverged)
        lines.append(f"- not counted as baselines, stopped before converging: {names}")
    by_name = {r["model"]: r for r in rows}
    sasrec, reference = by_name.get("sasrec"), by_name.get("reference:sasrec")
    if sasrec and reference and sasrec.get("seconds_to_best") and reference.get("seconds_to_best"):
        ratio = sasrec["seconds_to_best"] / reference["seconds_to_best"]
        lines.append(
            "- training speed: whyrec `sasrec` reached its best validation epoch in "
            f"{sasrec['seconds_to_best']:.1f} s, the reference in {reference['seconds_to_best']:.1f} s: "
            f"**{ratio:.2f}×** its time (target ≤ 0.5×)"
        )
    recbole_sasrec = by_name.get("recbole:SASRec")
    if sasrec and recbole_sasrec and sasrec.get("seconds_to_best"):
        bound = "" if recbole_sasrec.get("converged") else "at least "
        threads = recbole_sasrec.get("recbole", {}).get("threads")
        lines.append(
            f"- against RecBole's SASRec ({recbole_sasrec.get('seconds_to_best')} s to its best epoch, "
            f"{recbole_sasrec.get('seconds_per_epoch')} s per epoch"
            + (f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else "")
            + f"): whyrec `sasrec` is {bound}"
            f"{recbole_sasrec['seconds_to_best'] / sasrec['seconds_to_best']:.0f}× faster to its best epoch"
        )
    if cold.get("cold_cases"):
        lines.append(
            f"- cold start ({cold['cold_cases']} test cases whose target never occurs in training): "
            f"NDCG@10 {cold['cold_NDCG@10_text']:.4f} text-aware `sasrec` vs "
            f"{cold['cold_NDCG@10_id_only']:.4f} ID-only "
            f"(all test cases: {cold['all_NDCG@10_text']:.4f} vs {cold['all_NDCG@10_id_only']:.4f})"
            + (
                "; every model on these cases: "
                + ", ".join(f"`{m}` {v:.4f}" for m, v in cold["cold_NDCG@10_by_model"].items())
                if cold.get("cold_NDCG@10_by_model")
                else ""
            )
        )
    elif cold:
        lines.append("- cold start: no test target is missing from training on this split")
    return lines


def load_rows(path: Path) -> tuple[list[dict], dict]:
    """A results file's rows and its stamped payload (files written before stamping were a list)."""
    data = json.loads(Path(path).read_text())
    return (data["rows"], data) if isinstance(data, dict) else (data, {})


def harness(paths: list[str]) -> None:
    for path in map(Path, paths):
        rows, payload = load_rows(path)
        cold = payload.get("cold_start", {})
        print(f"**{str(rows[0]['dataset']).split('/')[-1]}**\n")
        print(harness_table(rows))
        print()
        print("\n".join(harness_targets(rows, cold)))
        print()


def cold_start(paths: list[str]) -> None:
    for path in map(Path, paths):
        run = json.loads(path.read_text())
        held = run.get("hold_out", {})
        print(
            f"**{run['dataset'].split('/')[-1]}**: {held.get('fraction', 0):.0%} of the items held out of "
            f"training (seed {held.get('seed', 0)}); cold cases: {run['cold_cases']['valid']} validation, "
            f"{run['cold_cases']['test']} test\n"
        )
        print(
            "| variant | valid NDCG@10 | valid cold NDCG@10 | valid cold median rank "
            "| test NDCG@10 | test cold NDCG@10 | test cold HR@50 | test cold median rank |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in run["rows"]:
            cells = [
                f"{r['valid_NDCG@10']:.4f}",
                f"{r['valid_cold_NDCG@10']:.4f}",
                f"{r['valid_cold_median_rank']:.0f}",
                f"{r['test_NDCG@10']:.4f}",
                f"{r['test_cold_NDCG@10']:.4f}",
                f"{r['test_cold_HR@50']:.4f}",
                f"{r['test_cold_median_rank']:.0f}",
            ]
            print(f"| {r['variant']} | " + " | ".join(cells) + " |")
        print()


HARNESS = Path(__file__).resolve().parent / "results" / "harness"
PAGE = Path(__file__).resolve().parent / "RESULTS.md"
DATASETS = ("ml-100k", "scientific")


def results_page(paths: list[Path]) -> str:
    """bench/RESULTS.md: every figure read from the stamped harness files."""
    out = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench.results_table` from the stamped JSON files in",
        "`bench/results/harness/` (written by `python -m bench.compare`); do not edit by hand.",
        "Leave-one-out split, full ranking over every item, seen items masked, ties counted at",
        "their expected position (see docs/benchmarks.md). Timings were taken on a machine shared",
        "with other jobs: compare them within one file only.",
        "",
    ]
    for path in paths:
        rows, data = load_rows(path)
        stamp = data.get("stamp", {})
        out += [f"## {str(rows[0]['dataset']).split('/')[-1]}", ""]
        if stamp:
            dirty = " (uncommitted changes)" if stamp.get("dirty") else ""
            out += [
                f"Commit `{stamp.get('commit', '?')[:10]}`{dirty}, {stamp.get('date', '?')}, "
                f"{stamp.get('machine', '?')}, torch {stamp.get('torch', '?')} with "
                f"{stamp.get('torch_threads', '?')} threads; file `{path.name}`.",
                "",
            ]
        else:
            out += [
                f"File `{path.name}` carries no stamp: its whyrec rows were ranked with targets winning "
                "their ties, and it has no classic peers (EASE, implicit) and no validation score for pop, "
                "itemknn and content. Re-run `bench.compare` to replace it.",
                "",
            ]
        columns = ["valid_NDCG@10", "HR@10", "NDCG@10", "MRR@10", "NDCG@20", "coverage@10", "train_seconds"]
        out += ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for r in rows:
            masked = r.get("seen_masked", {})
            cells = [_cell(valid_ndcg(r))] + [_cell(masked.get(c, r.get(c))) for c in columns[1:]]
            out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        out.append("")
        out += harness_targets(rows, {})
        out += [f"- {n}" for n in data.get("notes", [])]
        explained = [r for r in rows if "fidelity_ratio" in r]
        if explained:
            present = [c for c in EXPLAIN if any(c in r for r in explained)]
            out += ["", "Explanations (test users with at least 6 items, seeded sample):", ""]
            out += ["| model | users | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
            for r in explained:
                cells = [_cell(r.get(c)) for c in present]
                out.append(f"| {r['model']} | {r.get('explained_users')} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def readme_table(paths: list[Path]) -> str:
    """The short table for the README: per dataset, the two ratios with their models."""
    lines = [
        "| dataset | best whyrec model (validation) | best peer | ratio "
        "| best whyrec network | best peer network | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        rows, _ = load_rows(path)
        ratios = peer_ratios(rows)
        cells = []
        for name in ("any_model", "single_network"):
            r = ratios[name]
            cells += (
                [
                    f"`{r['whyrec']}` {r['whyrec_test_NDCG@10']:.4f}",
                    f"`{r['peer']}` {r['peer_test_NDCG@10']:.4f}",
                    f"{r['ratio']:.2f}×",
                ]
                if r
                else ["–", "–", "–"]
            )
        lines.append(f"| {str(rows[0]['dataset']).split('/')[-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    if paths and paths[0] in ("-h", "--help"):
        print(__doc__)
        return
    if paths == ["--readme"]:
        print(
            readme_table(
                [HARNESS / f"{name}.json" for name in DATASETS if (HARNESS / f"{name}.json").exists()]
            )
        )
        return
    for path in paths[1:] if paths and paths[0] in ("--harness", "--cold-start") else paths:
        if path.startswith("-"):
            sys.exit(f"results_table: unknown option {path} (see --help)")
        if not Path(path).is_file():
            sys.exit(f"results_table: no results file {path}")
    if not paths:
        found = [HARNESS / f"{name}.json" for name in DATASETS if (HARNESS / f"{name}.json").exists()]
        PAGE.write_text(results_page(found))
        print(f"wrote {PAGE}")
        return
    if paths and paths[0] == "--harness":
        harness(paths[1:])
        return
    if paths and paths[0] == "--cold-start":
        cold_start(paths[1:])
        return
    rows = [row for p in paths for row in load_rows(Path(p))[0]]
    print(table(rows, ACCURACY))
    explained = [r for r in rows if "fidelity_ratio" in r and r["model"] not in ("pop",)]
    if explained:
        print()
        print(table(explained, EXPLAIN))


if __name__ == "__main__":
    main(sys.argv[1:])
