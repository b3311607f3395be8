"""Validation sweep of sequence-model training settings: what the defaults were chosen from.

    python -m bench.sweep movielens:../shared/data/ml-100k --model sasrec \\
        --config '{"lr": 0.001}' --config '{"lr": 0.005, "schedule": "cosine", "max_epochs": 15}' \\
        --out bench/results/sweep-sasrec-ml-100k.json

Each config is trained on the training part and judged on validation NDCG@10 only (with its
standard error over users, so differences inside the noise are visible); time to the best epoch
and the validation curve are recorded. Test metrics are not computed. Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

from whyrec.metrics import ndcg_per_user, rank_targets
from whyrec.models import FitData
from whyrec.training import build_models
from whyrec.training.pipeline import prepare

MODELS = ("sasrec", "bert4rec", "gru4rec")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--model", choices=MODELS, default="sasrec")
    parser.add_argument("--config", action="append", required=True, help="JSON of settings (config fields)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    prepared = prepare(args.dataset)
    histories, targets = prepared.split.valid()
    rows = []
    for text in args.config:
        fields = json.loads(text)
        settings = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in fields.items()}
        model = build_models([args.model], settings)[args.model]
        model.fit(FitData(prepared.split, prepared.item_vectors, progress=True))
        ranks, _ = rank_targets(model, histories, targets)
        gains = ndcg_per_user(ranks, 10)
        info = model.fit_info
        row = {
            "model": args.model,
            "config": fields,
            "full_config": {role: c.to_dict() for role, c in model.configs().items()},
            "valid_NDCG@10": round(float(gains.mean()), 5),
            "valid_NDCG@10_se": round(float(gains.std(ddof=1) / math.sqrt(len(gains))), 5),
            "best_epoch": info.best_epoch,
            "seconds_to_best": round(info.seconds_to_best or 0.0, 1),
            "train_seconds": round(info.train_seconds, 1),
            "valid_curve": info.extra.get("valid_curve"),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "valid_curve"}), flush=True)
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dataset": args.dataset, "machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
