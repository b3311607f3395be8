"""What the language model knows about the domain: ``content`` and SASRec item representations
(frozen MiniLM + linear projection, the whitening adaptor, text only) with the frozen encoder and,
with ``--adapt``, with the encoder fine-tuned on the training split. Validation and test NDCG@10,
overall and on cold items (``--hold-out``: the new-item protocol of ``bench/cold_start.py``).
``--variants`` with no value measures ``content`` alone.

    python -m bench.lm movielens:../shared/data/ml-100k \\
        --variants "" text_adaptor=whitening use_ids=false --out bench/results/lm-ml-100k.json
    python -m bench.lm --table bench/results/lm-*.json   # the Markdown table for docs/language-model.md

Choose on validation; test is printed alongside. Run it alone (2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.cold_start import hold_out_items, measure, parse_variant
from bench.common import write_result
from whyrec.models import ContentModel, FitData
from whyrec.text.encoder import make_encoder
from whyrec.training import parse_settings
from whyrec.training.adapt import AdaptConfig, adapt_encoder
from whyrec.training.pipeline import prepare


def run(args: argparse.Namespace) -> None:
    prepared = prepare(args.dataset)
    split, dropped = prepared.split, 0
    if args.hold_out:
        split, dropped = hold_out_items(split, args.hold_out, args.hold_out_seed)
    seen = split.train_item_counts() > 0
    parts = {"valid": split.valid(), "test": split.test()}
    cold = {k: np.flatnonzero(~seen[t]) for k, (_, t) in parts.items()}
    encoders = {"frozen": prepared.item_vectors}
    adaptation = None
    if args.adapt:
        values = {k: json.loads(v) if v[:1].isdigit() else v for k, v in parse_settings(args.adapt).items()}
        config = AdaptConfig.from_dict({**AdaptConfig().to_dict(), **values})
        adapted = adapt_encoder(split, prepared.dataset.catalog, None, config)  # the held-out split
        adaptation = adapted.report
        texts = [prepared.dataset.catalog.text(i) for i in split.items.ids]
        encoders["adapted"] = make_encoder(str(adapted.path)).encode(texts)
    rows = []
    for encoder, vectors in encoders.items():
        data = FitData(split, vectors, progress=True)
        content = ContentModel().fit(data)
        rows.append({"encoder": encoder, **measure(content, "content", {}, parts, cold)})
        print(json.dumps(rows[-1]), flush=True)
        for text in args.variants:
            model = parse_variant(text)
            if args.max_epochs:
                model.training = replace(model.training, max_epochs=args.max_epochs)
            model.fit(data)
            row = measure(model, f"sasrec {text or 'defaults'}", model.items.to_dict(), parts, cold)
            row["seconds_to_best"] = round(model.fit_info.seconds_to_best or 0.0, 1)
            row["best_epoch"] = model.fit_info.best_epoch
            rows.append({"encoder": encoder, **row})
            print(json.dumps(rows[-1]), flush=True)
    payload = {
        "dataset": args.dataset,
        "cold_cases": {k: len(v) for k, v in cold.items()},
        "hold_out": {"fraction": args.hold_out, "seed": args.hold_out_seed, "users_dropped": dropped},
        "adaptation": adaptation,
        "note": "timings on a shared 2-core machine",
        "rows": rows,
    }
    settings = {"variants": args.variants, "adapt": args.adapt, "max_epochs": args.max_epochs}
    write_result(args.out, payload, settings)


def table(paths: list[Path]) -> str:
    lines = [
        "| dataset | encoder | model | valid NDCG@10 | test NDCG@10 | test cold NDCG@10 | cold test cases |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        result = json.loads(Path(path).read_text())
        name = result["dataset"].split("/")[-1]
        tune = (result.get("adaptation") or {}).get("config", {}).get("tune")
        for row in result["rows"]:
            encoder = f"{row['encoder']} ({tune})" if row["encoder"] == "adapted" and tune else row["encoder"]
            lines.append(
                f"| {name} | {encoder} | {row['variant']} | {row['valid_NDCG@10']:.4f} | "
                f"{row['test_NDCG@10']:.4f} | {row['test_cold_NDCG@10']:.4f} | "
                f"{result['cold_cases']['test']} |"
            )
        stamp = result["stamp"]
        lines.append(f"| {name} | | (commit {stamp['commit'][:10]}, {stamp['date']}) | | | | |")
    return "\n".join(lines)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("dataset", nargs="?")
    variants = ["", "text_adaptor=whitening", "use_ids=false"]
    parser.add_argument(
        "--variants", nargs="*", default=variants, help='SASRec settings, a variant each ("" the defaults)'
    )
    parser.add_argument("--hold-out", type=float, default=0.0)
    parser.add_argument("--hold-out-seed", type=int, default=0)
    parser.add_argument("--adapt", action="append", metavar="KEY=VALUE", default=None,
                        help="also adapt the encoder (AdaptConfig fields; default=1)")  # fmt: skip
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the sequence models' epochs")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", help="print the Markdown table of these results")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    if not args.dataset or not args.out:
        parser.error("give DATASET and --out (or --table FILES)")
    if args.adapt:
        args.adapt = [a for a in args.adapt if not a.startswith("default=")]
        args.adapt = args.adapt or ["seed=0"]
    start = time.perf_counter()
    run(args)
    print(f"done in {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
