"""How often the guarded LLM phrasing is shown, per prompt style and language: one model trained
once, the same sampled test users explained under each (style, language), every sentence phrased
by the LLM and checked by the guard exactly as when served. Reports the acceptance rate, the
reasons for rejection, the grounding rate of the sentences shown and the seconds per phrasing.

    python -m bench.phrasing movielens:../shared/data/ml-100k --users 20 \\
        --out bench/results/phrasing-ml-100k.json

Run it alone (2 cores): SmolLM2 takes about a second a sentence there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, get_args

from bench.common import write_result
from whyrec.explain import ExplainConfig, Explainer
from whyrec.explain.phrasing import PromptStyle, make_phraser
from whyrec.explain.quality import explanation_metrics
from whyrec.training import build_models
from whyrec.training.pipeline import fit_and_test, prepare
from whyrec.training.recommender import Recommender

KEPT = ("grounding_rate", "llm_phrased", "llm_rejected_rate", "llm_outcomes", "unique_sentence_ratio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--users", type=int, default=20, help="test users explained (top 10 each)")
    parser.add_argument("--per-user", type=int, default=None, help="phrase each user's top N only")
    parser.add_argument("--langs", default="en,zh")
    parser.add_argument("--styles", default=",".join(get_args(PromptStyle)))
    parser.add_argument("--llm", default="smollm", help="smollm or an OpenAI-compatible base URL")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    langs = [x for x in args.langs.split(",") if x]
    styles = [x for x in args.styles.split(",") if x]
    if bad := [s for s in styles if s not in get_args(PromptStyle)]:
        parser.error(f"unknown style {bad[0]!r}: choose from {', '.join(get_args(PromptStyle))}")
    if bad := [lang for lang in langs if lang not in ("en", "zh")]:
        parser.error(f"unknown language {bad[0]!r}: en or zh")
    phraser = make_phraser(args.llm)
    assert phraser is not None
    prepared = prepare(args.dataset)
    model = build_models([args.model])[args.model]
    fit_and_test(prepared, {args.model: model})
    rows: list[dict[str, Any]] = []
    for lang in langs:
        for style in styles:
            split, catalog = prepared.split, prepared.dataset.catalog
            rec = Recommender(model, split.items, catalog, prepared.item_vectors, {})
            explainer = Explainer(rec, ExplainConfig(llm_prompt=style), phraser=phraser)
            start = time.perf_counter()
            quality = explanation_metrics(
                prepared, model, args.users, lang=lang, phraser=phraser, llm_users=args.users,
                llm_per_user=args.per_user, explainer=explainer,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            row = {"lang": lang, "style": style, **{key: quality[key] for key in KEPT}}
            row["accepted_rate"] = round(1 - row["llm_rejected_rate"], 4) if row["llm_phrased"] else None
            row["seconds_per_sentence"] = round(seconds / max(row["llm_phrased"], 1), 2)
            rows.append(row)
            print(f"{lang} {style}: accepted {row['accepted_rate']}, grounded {row['grounding_rate']}, "
                  f"{row['llm_outcomes']}", flush=True)  # fmt: skip
    payload = {"dataset": args.dataset, "model": args.model, "llm": phraser.name, "rows": rows}
    config = {
        k: getattr(args, k) for k in ("dataset", "model", "users", "per_user", "langs", "styles", "llm")
    }
    print(f"wrote {write_result(args.out, payload, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
