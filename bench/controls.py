"""What the ranking controls cost and buy, for trained runs: each model's top 10 on the test split
under each control setting (the measurement of ``whyrec evaluate --controls``, without training
the models again): NDCG@10 against the plain list's, intra-list diversity, catalogue coverage,
average recommended popularity and calibration KL.

    python -m bench.controls movielens:../shared/data/ml-100k --runs runs/ml-100k \\
        --models sasrec,hybrid --out bench/results/controls-ml-100k.json

RUNS/MODEL are runs trained on DATASET (``whyrec train`` or ``bench.occlusion``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import write_result
from whyrec.training.control_metrics import control_metrics
from whyrec.training.controls import parse_control_settings
from whyrec.training.pipeline import prepare
from whyrec.training.recommender import Recommender

DEFAULT = "none;diversity=0.3;diversity=0.6;calibrate;max_per_attribute=3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--runs", type=Path, required=True, help="trained runs: RUNS/MODEL")
    parser.add_argument("--models", default="sasrec,hybrid")
    parser.add_argument("--controls", default=DEFAULT, help="settings separated by ';'")
    parser.add_argument("--encoder", default=None, help="the runs' text encoder (default: MiniLM)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = parse_control_settings(args.controls)
    prepared = prepare(args.dataset, encoder=args.encoder)
    rows: list[dict[str, Any]] = []
    for name in [m for m in args.models.split(",") if m]:
        model = Recommender.load(args.runs / name).model
        if model.n_items != prepared.split.n_items:
            parser.error(f"{args.runs / name} was not trained on {args.dataset}")
        measured = control_metrics(prepared, model, settings)
        for label, figures in measured.items():
            rows.append({"model": name, "controls": label, **figures})
            print(name, label, figures, flush=True)
    payload = {"dataset": args.dataset, "rows": rows}
    config = {k: getattr(args, k) for k in ("dataset", "models", "controls", "encoder")}
    print(f"wrote {write_result(args.out, payload, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
