"""Tune one RecBole model on validation: run it once per value of one setting, keep the best.

    python -m bench.recbole_tune movielens:../shared/data/ml-100k EASE reg_weight 10,50,100,250,500,1000 \\
        --out bench/out/recbole/ml-100k
    python -m bench.recbole_tune movielens:../shared/data/ml-100k ItemKNN k 20,50,100,200 \\
        --out bench/out/recbole/ml-100k

Each value runs ``bench/recbole_run.py`` in the RecBole venv into ``OUT/MODEL-KEY=VALUE``; the run
with the highest validation NDCG@10 is copied to ``OUT/MODEL`` with the whole grid recorded in its
``row.json`` (``"grid"``), where ``bench.compare --recbole MODEL --recbole-from OUT`` reads it (and
checks its split again). The test split plays no part in the choice.

``bench/recbole_run.py`` tunes EASE and ItemKNN on validation by itself (``--grid``, with default
grids); this script is for one setting of any model, one run per value.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from bench.recbole_side import check_test_items
from whyrec.data import leave_one_out, load_dataset

BENCH = Path(__file__).resolve().parent
PYTHON = BENCH / ".recbole-venv" / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("model", help="a RecBole model name, e.g. EASE or ItemKNN")
    parser.add_argument("key", help="the setting to tune, e.g. reg_weight (EASE) or k (ItemKNN)")
    parser.add_argument("values", help="comma-separated values")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not PYTHON.exists():
        raise SystemExit("recbole_tune: no RecBole venv; run `bash bench/setup_recbole.sh` first")
    split = leave_one_out(load_dataset(args.dataset))
    grid = []
    for value in args.values.split(","):
        run_dir = args.out / f"{args.model}-{args.key}={value}"
        command = [
            str(PYTHON),
            str(BENCH / "recbole_run.py"),
            args.dataset,
            args.model,
            "--out",
            str(run_dir),
        ]
        args.out.mkdir(parents=True, exist_ok=True)
        log = args.out / f"{run_dir.name}.log"
        with log.open("w") as handle:
            # --grid with one value: that value alone (recbole_run would otherwise tune the
            # model's other default-grid settings too)
            done = subprocess.run([*command, "--grid", f"{args.key}={value}"], stdout=handle, stderr=handle)
        if done.returncode != 0:
            raise SystemExit(f"recbole_tune: {args.model} with {args.key}={value} failed; see {log}")
        check_test_items(split, run_dir / "test_items.tsv")
        row = json.loads((run_dir / "row.json").read_text())
        grid.append({args.key: value, "valid_NDCG@10": row["valid_NDCG@10"], "run_dir": str(run_dir)})
        print(f"{args.model} {args.key}={value}: valid NDCG@10 {row['valid_NDCG@10']}", flush=True)
    best = max(grid, key=lambda g: g["valid_NDCG@10"])
    target = args.out / args.model
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(best["run_dir"], target)
    row = json.loads((target / "row.json").read_text())
    row["grid"] = grid
    row["settings"] = {args.key: best[args.key]}
    (target / "row.json").write_text(json.dumps(row, indent=2))
    print(f"{args.model}: {args.key}={best[args.key]} chosen on validation -> {target}", flush=True)


if __name__ == "__main__":
    main()
