"""Markdown tables for the README from metrics JSON files written by `whyrec evaluate` or
bench/compare.py.

    python bench/results_table.py results/ml100k.json results/amazon.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ACCURACY = ["HR@10", "NDCG@10", "MRR@10", "NDCG@20", "coverage@10", "train_seconds", "seconds_to_best"]
EXPLAIN = [
    "fidelity_top3_rank_drop",
    "fidelity_random3_rank_drop",
    "fidelity_ratio",
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


def main(paths: list[str]) -> None:
    rows = [row for p in paths for row in json.loads(Path(p).read_text())]
    print(table(rows, ACCURACY))
    explained = [r for r in rows if "fidelity_ratio" in r and r["model"] not in ("pop",)]
    if explained:
        print()
        print(table(explained, EXPLAIN))


if __name__ == "__main__":
    main(sys.argv[1:])
