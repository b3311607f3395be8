"""Sampled softmax against the full softmax: validation and test NDCG@10 and training time of a
sequence model trained both ways on the same split (the sampled one forced on with
``sampled_softmax_above=0``).

    python -m bench.sampled_softmax movielens:../shared/data/ml-100k \\
        --out bench/results/sampled-softmax-ml-100k.json

Each variant is a comma-separated list of ``--set`` settings (``""``: the defaults). The test
NDCG@10's standard error is over users. Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import write_result
from whyrec.metrics import rank_targets
from whyrec.metrics.ranking import ndcg_per_user
from whyrec.models import FitData
from whyrec.training import build_models, parse_settings
from whyrec.training.pipeline import prepare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--variants", nargs="+", default=["", "sampled_softmax_above=0"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    prepared = prepare(args.dataset)
    histories, targets = prepared.split.test()
    rows: list[dict[str, Any]] = []
    for text in args.variants:
        settings = parse_settings([pair for pair in text.split(",") if pair])
        model = build_models([args.model], settings)[args.model]
        model.fit(FitData(prepared.split, prepared.item_vectors, progress=False))
        ranks, _ = rank_targets(model, histories, targets)
        ndcg = ndcg_per_user(ranks, 10)  # ties count half, as in evaluation
        info = model.fit_info
        epochs = info.extra["epochs_run"]
        row: dict[str, Any] = {
            "variant": text or "defaults",
            "loss": info.extra["loss"],
            "valid_NDCG@10": round(info.best_valid_ndcg10 or 0.0, 5),
            "test_NDCG@10": round(float(ndcg.mean()), 5),
            "test_NDCG@10_se": round(float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))), 5),
            "train_seconds": round(info.train_seconds, 1),
            "epochs_run": epochs,
            "best_epoch": info.best_epoch,
            "seconds_per_epoch": round(info.extra["valid_seconds"][-1] / epochs, 2),
            **{k: info.extra[k] for k in ("mean_candidates", "softmax_columns") if k in info.extra},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    full, *others = rows
    for row in others:
        for part in ("valid", "test"):
            row[f"{part}_change_vs_full"] = round(row[f"{part}_NDCG@10"] / full[f"{part}_NDCG@10"] - 1, 4)
    payload = {"dataset": args.dataset, "model": args.model, "n_items": prepared.split.n_items, "rows": rows}
    config = {"dataset": args.dataset, "model": args.model, "variants": args.variants}
    print(f"wrote {write_result(args.out, payload, config)}")


if __name__ == "__main__":
    main()
