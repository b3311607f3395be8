"""One process against several: the same model trained with ``whyrec train --nproc N`` for each N
(same split, same settings, same global batch), compared on test NDCG@10 with its standard error
over users. The runs differ by chance as well as by the processes: each process draws its own
dropout masks, so a difference within one standard error is what agreement means here.

    python -m bench.nproc movielens:../shared/data/ml-100k --nprocs 1,2 --runs runs/nproc \\
        --out bench/results/nproc-ml-100k.json

Each run goes to RUNS/nprocN (replaced). Run it alone (2 cores): with 2 processes each gets one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--nprocs", default="1,2")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for n in [int(x) for x in args.nprocs.split(",") if x]:
        out = args.runs / f"nproc{n}"
        command = [sys.executable, "-m", "whyrec.cli", "--quiet", "train", "--dataset", args.dataset]
        command += ["--model", args.model, "--nproc", str(n), "--out", str(out), "--overwrite"]
        command += [x for pair in args.set for x in ("--set", pair)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        (metrics,) = json.loads((out / "metrics.json").read_text())
        row = {
            "nproc": n,
            "test_NDCG@10": metrics["NDCG@10"],
            "test_NDCG@10_se": metrics["NDCG@10_se"],
            "valid_NDCG@10": metrics.get("valid_NDCG@10"),
            "best_epoch": metrics.get("best_epoch"),
            "train_seconds": metrics["train_seconds"],
            "wall_seconds": round(seconds, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    first, *others = rows
    for row in others:
        gap = abs(row["test_NDCG@10"] - first["test_NDCG@10"])
        row["gap_to_first"] = round(gap, 5)
        row["within_one_se"] = gap <= max(row["test_NDCG@10_se"], first["test_NDCG@10_se"])
    payload = {"dataset": args.dataset, "model": args.model, "rows": rows}
    config = {"dataset": args.dataset, "model": args.model, "nprocs": args.nprocs, "set": args.set}
    print(f"wrote {write_result(args.out, payload, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
