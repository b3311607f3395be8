"""What the hybrid's sequence ensemble was chosen from: single nets of several seeds against their
rank-fusion averages, judged on validation NDCG@10 (test printed alongside, never used to choose).

    python -m bench.ensemble movielens:../shared/data/ml-100k --seeds 3 \\
        --out bench/results/ensemble-ml-100k.json

Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from whyrec.metrics import mask_seen, metrics_from_ranks, target_ranks
from whyrec.models import ContentModel, FitData, GRU4Rec, ItemKNN, SASRec
from whyrec.models.hybrid import rank_scores
from whyrec.training.pipeline import prepare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    prepared = prepare(args.dataset)
    data = FitData(prepared.split, prepared.item_vectors, progress=True)
    splits = {"valid": prepared.split.valid(), "test": prepared.split.test()}
    parts: dict[str, dict[str, np.ndarray]] = {}
    rows = []

    def add(name: str, model) -> None:  # type: ignore[no-untyped-def]
        model.fit(data)
        parts[name] = {k: rank_scores(model.score(h), h) for k, (h, _) in splits.items()}
        rows.append(
            {"blend": {name: 1.0}, **ndcg({name: 1.0}), "seconds_to_best": model.fit_info.seconds_to_best}
        )
        print(json.dumps(rows[-1]), flush=True)

    def ndcg(weights: dict[str, float]) -> dict[str, float]:
        out = {}
        for k, (histories, targets) in splits.items():
            blended = np.sum([w * parts[name][k] for name, w in weights.items()], axis=0)
            ranks = target_ranks(mask_seen(blended, histories), targets)
            out[f"{k}_NDCG@10"] = round(metrics_from_ranks(ranks)["NDCG@10"], 5)
        return out

    for seed in range(args.seeds):
        add(f"sasrec{seed}", SASRec(training=replace(SASRec.default_training, seed=seed)))
        add(f"gru4rec{seed}", GRU4Rec(training=replace(GRU4Rec.default_training, seed=seed)))
    add("cf", ItemKNN())
    add("content", ContentModel())
    sasrec = {f"sasrec{s}": 1.0 / args.seeds for s in range(args.seeds)}
    gru = {f"gru4rec{s}": 1.0 / args.seeds for s in range(args.seeds)}
    both = {k: v / 2 for k, v in {**sasrec, **gru}.items()}
    for label, weights in [("sasrec seeds", sasrec), ("gru4rec seeds", gru), ("sasrec+gru4rec seeds", both)]:
        rows.append({"blend": weights, "label": label, **ndcg(weights)})
        print(json.dumps(rows[-1]), flush=True)
    grid = list(
        itertools.product((0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0), (0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0))
    )
    for label, sequence in [("hybrid, one sasrec", {"sasrec0": 1.0}), ("hybrid, ensemble", both)]:
        best = max(
            ({**sequence, "cf": cf, "content": c} for cf, c in grid), key=lambda w: ndcg(w)["valid_NDCG@10"]
        )
        rows.append(
            {"blend": best, "label": label + " (cf, content weights chosen on validation)", **ndcg(best)}
        )
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"dataset": args.dataset, "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
