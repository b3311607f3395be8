"""Cold start: SASRec with text against ID-only, and ID dropout (items shown by text alone in some
training steps), judged on validation (all cases, and cold cases: targets never seen in training);
test printed alongside, never used to choose.

    python bench/cold_start.py amazon:../shared/data/amazon-scientific-unisrec \\
        --id-dropout 0 0.2 0.5 --out bench/results/cold-start-scientific.json

Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from whyrec.eval.metrics import metrics_from_ranks, rank_targets
from whyrec.models import FitData, SASRec, SASRecConfig
from whyrec.pipeline import prepare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--id-dropout", type=float, nargs="+", default=[0.0, 0.2, 0.5])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    prepared = prepare(args.dataset)
    split = prepared.split
    seen = split.train_item_counts() > 0
    parts = {"valid": split.valid(), "test": split.test()}
    cold = {k: np.flatnonzero(~seen[t]) for k, (_, t) in parts.items()}
    print({f"cold {k}": len(v) for k, v in cold.items()}, flush=True)
    variants = [("id_only", replace(SASRecConfig(), use_text=False))]
    variants += [(f"text, id_dropout {p}", SASRecConfig(id_dropout=p)) for p in args.id_dropout]
    rows = []
    for label, config in variants:
        model = SASRec(config).fit(FitData(split, prepared.item_vectors, progress=True))
        row: dict = {
            "variant": label,
            "config": {"use_text": config.use_text, "id_dropout": config.id_dropout},
        }
        for k, (histories, targets) in parts.items():
            ranks, _ = rank_targets(model, histories, targets)
            row[f"{k}_NDCG@10"] = round(metrics_from_ranks(ranks)["NDCG@10"], 5)
            row[f"{k}_cold_NDCG@10"] = round(metrics_from_ranks(ranks[cold[k]])["NDCG@10"], 5)
            row[f"{k}_cold_HR@50"] = round(metrics_from_ranks(ranks[cold[k]], (50,))["HR@50"], 5)
            row[f"{k}_cold_median_rank"] = float(np.median(ranks[cold[k]]) + 1)
        row["seconds_to_best"] = round(model.fit_info.seconds_to_best or 0.0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "dataset": args.dataset,
        "date": time.strftime("%Y-%m-%d"),
        "cold_cases": {k: len(v) for k, v in cold.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**out, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
