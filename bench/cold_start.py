"""Cold start: SASRec variants (ID-only, text-aware, ID dropout, unseen items left out of the
training softmax, ...) judged on validation (all cases, and cold cases: targets never seen in
training); test printed alongside, never used to choose.

    python -m bench.cold_start amazon:../shared/data/amazon-scientific-unisrec \\
        --hold-out 0.05 --variants use_text=false "" unseen_negatives=true id_dropout=0.3 \\
        --out bench/results/cold-start-scientific.json

Each variant is a comma-separated list of SASRecConfig fields (``""``: the defaults).

Natural cold cases are few (12 of Scientific's 4,385 items never occur in training; 37 test
cases). ``--hold-out 0.05`` adds the usual new-item protocol: a random 5% of the items are taken
out of every training sequence (they may still be in the validation and test histories, and be
their targets), so that hundreds of test cases have a target never seen in training. Users left
with an empty training part are dropped.

Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from whyrec.data import SequenceSplit, Vocabulary
from whyrec.metrics import metrics_from_ranks, rank_targets
from whyrec.models import ContentModel, FitData, SASRec, Scorer
from whyrec.training import build_models, parse_settings
from whyrec.training.pipeline import prepare


def parse_variant(text: str) -> SASRec:
    """``"use_text=false,id_dropout=0.3"`` -> an untrained SASRec with those settings."""
    model = build_models(["sasrec"], parse_settings([pair for pair in text.split(",") if pair]))["sasrec"]
    assert isinstance(model, SASRec)
    return model


def hold_out_items(split: SequenceSplit, fraction: float, seed: int) -> tuple[SequenceSplit, int]:
    """SPLIT with a random FRACTION of the items removed from every training part (the last two
    items of each sequence, validation and test, stay); returns it and the users dropped."""
    rng = np.random.default_rng(seed)
    held = np.zeros(split.n_items, dtype=bool)
    held[rng.choice(split.n_items, size=round(fraction * split.n_items), replace=False)] = True
    sequences, kept_users = [], []
    for user, s in zip(split.users.ids, split.sequences, strict=True):
        train = s[:-2][~held[s[:-2]]]
        if len(train):
            sequences.append(np.concatenate([train, s[-2:]]))
            kept_users.append(user)
    users = Vocabulary(kept_users, kind="user")
    return replace(split, users=users, sequences=tuple(sequences)), split.n_users - len(kept_users)


def measure(model: Scorer, label: str, settings: dict, parts: dict, cold: dict) -> dict:
    """NDCG@10 on all cases and on cold ones, with HR@50 and the median rank of cold targets."""
    row: dict = {"variant": label, "config": settings}
    for part, (histories, targets) in parts.items():
        ranks, _ = rank_targets(model, histories, targets)
        cold_ranks = ranks[cold[part]]
        row[f"{part}_NDCG@10"] = round(metrics_from_ranks(ranks)["NDCG@10"], 5)
        row[f"{part}_cold_NDCG@10"] = round(metrics_from_ranks(cold_ranks)["NDCG@10"], 5)
        row[f"{part}_cold_HR@50"] = round(metrics_from_ranks(cold_ranks, (50,))["HR@50"], 5)
        row[f"{part}_cold_median_rank"] = float(np.median(cold_ranks) + 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument(
        "--variants", nargs="+", default=["use_text=false", "", "unseen_negatives=true", "id_dropout=0.3"]
    )
    parser.add_argument(
        "--cold-neighbours", type=int, nargs="+", default=[0, 3], help="values of k tried at inference"
    )
    parser.add_argument("--hold-out", type=float, default=0.0, help="share of items taken out of training")
    parser.add_argument("--hold-out-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    prepared = prepare(args.dataset)
    split, dropped_users = prepared.split, 0
    if args.hold_out:
        split, dropped_users = hold_out_items(split, args.hold_out, args.hold_out_seed)
    seen = split.train_item_counts() > 0
    parts = {"valid": split.valid(), "test": split.test()}
    cold = {k: np.flatnonzero(~seen[t]) for k, (_, t) in parts.items()}
    print({f"cold {k}": len(v) for k, v in cold.items()}, flush=True)
    variants = [(text or "defaults", parse_variant(text)) for text in args.variants]
    rows = []
    content = ContentModel().fit(FitData(split, prepared.item_vectors, progress=False))
    rows.append(measure(content, "content model (text similarity alone)", {}, parts, cold))
    print(json.dumps(rows[-1]), flush=True)
    for label, model in variants:
        model.fit(FitData(split, prepared.item_vectors, progress=True))
        # cold_neighbours acts at inference only: the same trained net, each k in turn
        for k in args.cold_neighbours if model.items.use_text else [0]:
            model.use_cold_neighbours(k)
            items = model.items.to_dict()
            settings = {name: items[name] for name in ("use_text", "id_dropout", "unseen_negatives")}
            settings["seed"] = model.training.seed
            row = measure(
                model, f"{label}, cold_neighbours={k}", settings | {"cold_neighbours": k}, parts, cold
            )
            row["seconds_to_best"] = round(model.fit_info.seconds_to_best or 0.0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {
        "dataset": args.dataset,
        "date": time.strftime("%Y-%m-%d"),
        "cold_cases": {k: len(v) for k, v in cold.items()},
        "hold_out": {"fraction": args.hold_out, "seed": args.hold_out_seed, "users_dropped": dropped_users},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**out, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
