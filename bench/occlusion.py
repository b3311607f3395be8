"""Occlusion by removal against occlusion in place (positions kept): the same trained model, the
same sampled test users, explained under each; fidelity by both deletion tests (removal and in
place), evidence relatedness and distinctness, interest-label agreement. The default of
``ExplainConfig.occlusion`` is chosen from this table.

    python -m bench.occlusion movielens:../shared/data/ml-100k --models sasrec,hybrid \\
        --runs runs/ml-100k --out bench/results/occlusion-ml-100k.json

Each model is trained once into RUNS/MODEL (an existing run there is loaded instead, so the
table can be re-made, and the runs serve bench.latency). Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, get_args

from bench.common import write_result
from whyrec.explain import ExplainConfig, Explainer
from whyrec.explain.context import Occlusion
from whyrec.explain.quality import explanation_metrics
from whyrec.training import build_models, parse_settings
from whyrec.training.pipeline import prepare, train_run
from whyrec.training.recommender import Recommender

KEPT = (
    "fidelity_top3_rank_drop",
    "fidelity_random3_rank_drop",
    "fidelity_recent3_rank_drop",
    "fidelity_ratio",
    "fidelity_ratio_recent",
    "fidelity_top3_rank_drop_in_place",
    "fidelity_random3_rank_drop_in_place",
    "fidelity_ratio_in_place",
    "evidence_relatedness",
    "evidence_distinct_ratio",
    "interest_label_agreement",
    "counterfactual_found_rate",
    "counterfactual_mean_size",
    "counterfactual_validity",
    "grounding_rate",
    "explanation_coverage",
    "explain_ms_per_user",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--models", default="sasrec,hybrid")
    parser.add_argument("--users", type=int, default=200, help="test users explained (top 10 each)")
    parser.add_argument("--runs", type=Path, required=True, help="trained runs: RUNS/MODEL")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as whyrec train")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    prepared = prepare(args.dataset)
    split, catalog = prepared.split, prepared.dataset.catalog
    rows: list[dict[str, Any]] = []
    for name in [m for m in args.models.split(",") if m]:
        run = args.runs / name
        if (run / "run.json").exists():
            model = Recommender.load(run).model
        else:
            settings = parse_settings(args.set)
            model = train_run(prepared, name, run, model=build_models([name], settings)[name])[0].model
        rec = Recommender(model, split.items, catalog, prepared.item_vectors, {})
        for how in get_args(Occlusion):
            start = time.perf_counter()
            explainer = Explainer(rec, ExplainConfig(occlusion=how))
            quality = explanation_metrics(prepared, model, args.users, explainer=explainer)
            row = {"model": name, "occlusion": how, **{key: quality.get(key) for key in KEPT}}
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            print(
                f"{name} {how}: fidelity {row['fidelity_ratio']} "
                f"(in place {row['fidelity_ratio_in_place']}), related {row['evidence_relatedness']}, "
                f"distinct {row['evidence_distinct_ratio']}",
                flush=True,
            )
    payload = {"dataset": args.dataset, "users": args.users, "rows": rows}
    config = {"dataset": args.dataset, "models": args.models, "users": args.users, "set": args.set}
    print(f"wrote {write_result(args.out, payload, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
