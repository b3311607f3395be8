"""The ablation table (Markdown) from the JSON that ``bench.ablation`` writes.

    python -m bench.ablation_table bench/results/ablation-scientific.json bench/results/ablation-ml-100k.json

One table per file: each row's validation and test NDCG@10 (± standard error over users), its
ratio to the strongest peer that is not a whyrec network (chosen on validation, like every other
choice here), its training time and, for a network, the seconds to its best epoch. The commit and
date of the run are printed above the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PEERS = ("ease", "itemknn", "content", "pop")


def table(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    peers = [r for r in rows if r["variant"] in PEERS]
    lines = [
        f"**{result['dataset']}** (commit {result['stamp']['commit'][:8]}"
        f"{', uncommitted changes' if result['stamp']['dirty'] else ''}, {result['stamp']['date']}, "
        f"{result['stamp']['machine']})",
        "",
    ]
    strongest = max(peers, key=lambda r: r["valid_NDCG@10"]) if peers else None
    if strongest is not None:
        lines += [f"Strongest classic peer on validation: `{strongest['variant']}`.", ""]
    lines += [
        "| variant | valid NDCG@10 | test NDCG@10 | test / peer | train s | best epoch | s to best |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['test_NDCG@10'] / strongest['test_NDCG@10']:.2f}×" if strongest else "–"
        epoch = "–" if r.get("best_epoch") is None else str(r["best_epoch"] + 1)
        to_best = "–" if r.get("seconds_to_best") is None else f"{r['seconds_to_best']:.0f}"
        lines.append(
            f"| {r['variant']} | {r['valid_NDCG@10']:.4f} ± {r['valid_NDCG@10_se']:.4f} "
            f"| {r['test_NDCG@10']:.4f} ± {r['test_NDCG@10_se']:.4f} | {ratio} "
            f"| {r['train_seconds']:.0f} | {epoch} | {to_best} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    out: list[str] = []
    for path in args.results:
        out += [*table(json.loads(path.read_text())), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
