"""RecBole's classic general models (EASE, ItemKNN) on whyrec's split, each tuned on validation.

    bash bench/setup_recbole.sh
    python -m bench.recbole_classic movielens:../shared/data/ml-100k \\
        --out bench/results/recbole-classic-ml-100k.json

Each model runs ``bench/recbole_run.py`` in the RecBole venv (as ``bench.compare --recbole`` does),
which fits it once per setting of its grid (``recbole_run.DEFAULT_GRIDS``: EASE ``reg_weight``,
ItemKNN ``k`` x ``shrink``), keeps the setting with the best validation NDCG@10 and tests it once,
by whyrec's protocol: full ranking, the user's earlier items masked, ties at their expected place,
the validation item part of the user's history at test. The held-out items are checked against
whyrec's split for every user before any figure is kept. The stamped JSON holds, per model, the
validation and test figures, the chosen setting, the grid, the fitting time, and RecBole's own
test figures for reference (its Trainer scores from the training items only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import write_result
from bench.recbole_side import BENCH, run_all
from whyrec.data import leave_one_out, load_dataset

MODELS = ("EASE", "ItemKNN")
ROOT = BENCH.parent


def summary(row: dict, n_users: int) -> dict:
    """The figures kept for one RecBole row."""
    return {
        "model": row["model"],
        "valid_NDCG@10": row["valid_NDCG@10"],
        "valid_HR@10": row["valid"]["HR@10"],
        "test_NDCG@10": row["NDCG@10"],
        "test_NDCG@10_se": row.get("NDCG@10_se"),
        "test_HR@10": row["HR@10"],
        "test": {k: row[k] for k in ("HR@10", "NDCG@10", "MRR@10", "HR@20", "NDCG@20", "MRR@20")},
        "settings": row["settings"],
        "grid": row["grid"],
        "chosen_on": row["chosen_on"],
        "fit_seconds": row["fit_seconds"],
        "grid_seconds": row["grid_seconds"],
        "wall_seconds": row["wall_seconds"],
        "test_history": row["test_history"],
        "test_training_items_only": row["test_training_items_only"],
        "recbole_own_test": row["recbole_own_test"],
        # run_recbole stops with an error unless every user's test and validation item match
        "split_matches_whyrec": row["split_checked_users"] == n_users,
        "split_checked_users": row["split_checked_users"],
        "n_users": row["n_users"],
        "n_items": row["n_items"],
        "recbole": row["recbole"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", help="movielens:PATH or amazon:PATH")
    parser.add_argument("--out", type=Path, required=True, help="the stamped JSON file to write")
    parser.add_argument("--models", default=",".join(MODELS), help="RecBole general models, comma-separated")
    parser.add_argument(
        "--work", type=Path, default=None, help="RecBole's run folders (default bench/out/...)"
    )
    args = parser.parse_args()
    work = args.work or BENCH / "out" / "recbole-classic" / args.out.stem
    split = leave_one_out(load_dataset(args.dataset))
    rows = run_all(args.dataset, args.models.split(","), work, split, None)
    results = [summary(row, split.n_users) for row in rows]
    for r in results:
        print(
            f"{r['model']} {r['settings']}: valid NDCG@10 {r['valid_NDCG@10']:.4f}, test NDCG@10 "
            f"{r['test_NDCG@10']:.4f} ± {r['test_NDCG@10_se']:.4f}, HR@10 {r['test_HR@10']:.4f}",
            flush=True,
        )
    payload = {
        "dataset": args.dataset,
        "n_users": split.n_users,
        "n_items": split.n_items,
        "protocol": (
            "whyrec's leave-one-out split (checked for every user); full ranking with the user's "
            "earlier items masked; ties at their expected place; settings chosen on validation NDCG@10"
        ),
        "models": results,
    }
    shown = work.resolve().relative_to(ROOT) if work.resolve().is_relative_to(ROOT) else work
    path = write_result(args.out, payload, config={**vars(args), "work": str(shown)})
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
