"""Ablation of what a change buys, on validation and test NDCG@10 of one split.

    python -m bench.ablation amazon:../shared/data/amazon-scientific-unisrec \\
        --variant 'defaults={}' --variant 'dropout 0.5={"dropout": 0.5}' --hybrid \\
        --out bench/results/ablation-scientific.json

EASE, item-kNN and content (plus any ``--peers``) are fitted once and give the lines to beat.
Each ``--variant NAME=JSON`` trains ``--model`` (default sasrec) with those settings (``--set``
fields). ``--hybrid`` then blends the variant best on validation with the other parts twice,
without and with EASE, each blend's weights chosen on validation. Choices are made on validation
NDCG@10 only; test NDCG@10 is reported beside it and never used to choose. The JSON is rewritten
after each row. Run it alone on the machine (2 cores)."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import adaptation, add_adapt_encoder, write_result
from whyrec.metrics import ndcg_per_user, rank_targets
from whyrec.models import FitData, Hybrid, HybridConfig, Scorer, SequenceModel
from whyrec.training import build_models
from whyrec.training.pipeline import Prepared, prepare

log = logging.getLogger(__name__)


def ndcg10(model: Scorer, histories: list[np.ndarray], targets: np.ndarray) -> tuple[float, float]:
    """Mean NDCG@10 and its standard error over users."""
    ranks, _ = rank_targets(model, histories, targets)
    gains = ndcg_per_user(ranks, 10)
    return round(float(gains.mean()), 5), round(float(gains.std(ddof=1) / math.sqrt(len(gains))), 5)


def judged(prepared: Prepared, name: str, model: Scorer, settings: dict[str, Any]) -> dict[str, Any]:
    valid, valid_se = ndcg10(model, *prepared.split.valid())
    test, test_se = ndcg10(model, *prepared.split.test())
    info = model.fit_info
    row = {
        "variant": name,
        "model": model.name,
        "settings": settings,
        "full_config": {role: c.to_dict() for role, c in model.configs().items()},
        "valid_NDCG@10": valid,
        "valid_NDCG@10_se": valid_se,
        "test_NDCG@10": test,
        "test_NDCG@10_se": test_se,
        "train_seconds": round(info.train_seconds, 1),
        "best_epoch": info.best_epoch,
        "seconds_to_best": None if info.seconds_to_best is None else round(info.seconds_to_best, 1),
        "extra": {k: v for k, v in info.extra.items() if k != "valid_seconds"},
    }
    log.info(json.dumps({k: row[k] for k in ("variant", "valid_NDCG@10", "test_NDCG@10", "train_seconds")}))
    return row


def as_settings(fields: dict[str, Any]) -> dict[str, str]:
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in fields.items()}


def hybrid_rows(prepared: Prepared, member: SequenceModel, fitted: dict[str, Scorer]) -> list[dict[str, Any]]:
    """The hybrid around one fitted network (one seed): without EASE, then with it, the weights of
    each blend chosen on validation. Only the blending is new: every part is fitted already."""
    data = FitData(prepared.split, prepared.item_vectors, progress=True)
    rows = []
    for name, ease_weights in (("without", (0.0,)), ("with", (0.0, 0.1, 0.2, 0.3, 0.5, 1.0))):
        config = HybridConfig(sequence_models=(member.name,), seeds=1, ease_weights=ease_weights)
        hybrid = Hybrid(config, prototypes=[member])
        hybrid.adopt([member, *fitted.values()])
        hybrid.fit(data)
        row = judged(prepared, f"hybrid {name} EASE (one {member.name}, 1 seed)", hybrid, {})
        row["weights"] = hybrid.fit_info.extra["weights"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON of settings")
    parser.add_argument("--peers", default="ease", help="comma-separated models fitted once (default ease)")
    parser.add_argument(
        "--hybrid", action="store_true", help="also blend the best variant (on validation) with/without EASE"
    )
    parser.add_argument("--out", type=Path, required=True)
    add_adapt_encoder(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepared = prepare(args.dataset, adapt=adaptation(args))
    data = FitData(prepared.split, prepared.item_vectors, progress=True)
    rows: list[dict[str, Any]] = []
    config = {"dataset": args.dataset, "model": args.model, "variants": args.variant, "hybrid": args.hybrid,
              "adapt_encoder": args.adapt_encoder, "encoder": prepared.encoder_name}  # fmt: skip

    def add(row: dict[str, Any]) -> None:  # written after each row: a long run keeps what it did
        rows.append(row)
        write_result(args.out, {"dataset": args.dataset, "rows": rows}, config)

    fitted: dict[str, Scorer] = {}
    for name in [p for p in ["ease", "itemknn", "content", *args.peers.split(",")] if p]:
        if name not in fitted:
            fitted[name] = build_models([name])[name].fit(data)
            add(judged(prepared, name, fitted[name], {}))
    best: tuple[float, SequenceModel | None] = (-1.0, None)
    for text in args.variant:
        name, _, spec = text.partition("=")
        fields = json.loads(spec or "{}")
        model = build_models([args.model], as_settings(fields))[args.model].fit(data)
        add(judged(prepared, name, model, fields))
        if isinstance(model, SequenceModel) and rows[-1]["valid_NDCG@10"] > best[0]:
            best = (rows[-1]["valid_NDCG@10"], model)
    if args.hybrid and best[1] is not None:
        for row in hybrid_rows(prepared, best[1], fitted):
            add(row)


if __name__ == "__main__":
    main()
