"""The blend weights of a trained hybrid, chosen again on validation from other candidates.

Its parts stay as trained; only β (item-kNN), α (content) and γ (EASE) are searched, on the
validation users, and the choice is tested once. Each grid is compared with the run's own
(``HybridConfig``'s defaults unless the run was trained with others), so a wider grid is judged by
what it chooses on validation, never by test.

    python -m bench.blend runs/scientific/hybrid --content-weights 0,0.5,1,1.5,2,3 \\
        --out bench/results/blend-scientific.json

``--test-ceiling`` also chooses the weights on test, once: the most that any weights of the grid
can reach on test, which bounds what a better choice on validation could buy. It is reported
apart from the rows and is never a result of the hybrid.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import write_result
from whyrec.errors import WhyrecError
from whyrec.metrics import evaluate
from whyrec.models import Hybrid
from whyrec.training.pipeline import prepare
from whyrec.training.recommender import Recommender


def weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected weights >= 0, not {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run directory of a trained hybrid")
    parser.add_argument("--cf-weights", type=weights, help="candidate β (default: the run's)")
    parser.add_argument("--content-weights", type=weights, help="candidate α (default: the run's)")
    parser.add_argument("--ease-weights", type=weights, help="candidate γ (default: the run's)")
    parser.add_argument(
        "--test-ceiling",
        action="store_true",
        help="also choose this grid's weights on test: the most any of them can reach there (an upper "
        "bound for judging the grid, never a result)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/blend.json"))
    args = parser.parse_args(argv)

    try:
        rec = Recommender.load(args.run)
    except WhyrecError as error:
        parser.error(str(error))
    model = rec.model
    if not isinstance(model, Hybrid):
        parser.error(f"{args.run} holds a {model.name} model, not a hybrid")
    meta = json.loads((args.run / "run.json").read_text())
    spec = meta["dataset"]
    prepared = prepare(spec, encoder=meta.get("encoder"), progress=False)
    if prepared.split.n_items != model.n_items:
        parser.error(f"{spec} has {prepared.split.n_items:,} items, the run {model.n_items:,}")
    own = model.config
    given = {"cf_weights": args.cf_weights, "content_weights": args.content_weights,
             "ease_weights": args.ease_weights}  # fmt: skip
    changes = {name: value for name, value in given.items() if value is not None}
    wider = replace(own, **changes)
    if wider.uses_ease and not model.ease.fitted:
        parser.error("the run's hybrid has no EASE part: give --ease-weights 0")

    valid, test = prepared.split.valid(), prepared.split.test()
    rows: list[dict[str, Any]] = []
    for name, config in (("the run's grid", own), ("this grid", wider)):
        model.config = config
        best = model.choose_weights(*valid)
        result = evaluate(model, *test, prepared.split.n_items)
        w = model.weights
        rows.append({
            "grid": name,
            "candidates": {"cf": config.cf_weights, "content": config.content_weights,
                           "ease": config.ease_weights if config.uses_ease else (0.0,)},
            "chosen": {"cf": w.cf, "content": w.content, "ease": w.ease},
            "valid_NDCG@10": round(best, 5),
            "test_NDCG@10": round(result["NDCG@10"], 5),
            "test_NDCG@10_se": round(result["NDCG@10_se"], 5),
            "test_HR@10": round(result["HR@10"], 5),
        })  # fmt: skip
        print(f"{name:15s} chose cf {w.cf:g}, content {w.content:g}, ease {w.ease:g}: validation NDCG@10 "
              f"{best:.4f}, test {result['NDCG@10']:.4f} ± {result['NDCG@10_se']:.4f}")  # fmt: skip
    payload: dict[str, Any] = {"run": str(args.run), "dataset": spec, "rows": rows}
    if args.test_ceiling:
        model.config = wider
        ceiling = model.choose_weights(*test)  # chosen on test: a bound, never a result
        w = model.weights
        payload["test_ceiling"] = {
            "chosen_on": "test",
            "chosen": {"cf": w.cf, "content": w.content, "ease": w.ease},
            "test_NDCG@10": round(ceiling, 5),
        }
        print(f"test ceiling    chosen on test: cf {w.cf:g}, content {w.content:g}, ease {w.ease:g}, "
              f"test NDCG@10 {ceiling:.4f} (no weights of this grid do better there)")  # fmt: skip
    settings = {"run": str(args.run), "dataset": spec, **{k: list(v) for k, v in changes.items()}}
    out = write_result(args.out, payload, settings)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
