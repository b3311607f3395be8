"""Train and test one RecBole 1.2.1 model on whyrec's leave-one-out split (runs in the RecBole venv).

    bash bench/setup_recbole.sh
    bench/.recbole-venv/bin/python bench/recbole_run.py movielens:../shared/data/ml-100k SASRec \\
        --out bench/out/recbole/ml-100k/SASRec --max-minutes 10

SPEC is ``movielens:PATH`` (the ml-100k ``u.data`` layout) or ``amazon:PATH`` (UniSRec's atomic
files). MODEL is a RecBole model name (Pop, SASRec, GRU4Rec, BERT4Rec, ...). Writes into OUT:

- ``row.json``: one DESIGN.md metrics row (``model`` is ``recbole:NAME``) plus the validation
  curve, epochs run, best epoch, whether early stopping was reached, and for sequential models the
  same metrics with already-seen items masked (RecBole's sequential evaluation ranks them too;
  whyrec's does not); for Pop also popularity from exact counts (RecBole 1.2.1's Pop counts an
  item once per training batch, so its own figures depend on ``train_batch_size``);
- ``test_items.tsv``: ``user_id<TAB>item_id<TAB>valid_item_id`` in the dataset's raw ids: the
  items RecBole tests and validates on for each user, for the harness to check against whyrec's
  split;
- RecBole's own log, tensorboard events and checkpoint.

The split is whyrec's by construction. ml-100k is written as an atomic ``.inter`` file whose rows
are already in whyrec's order (each user's rows by time, ties in file order, repeated user-item
pairs dropped, users with fewer than 3 rows dropped); RecBole's sorts by time are stable, so
``eval_args: {split: {LS: valid_and_test}, order: TO}`` then keeps that order. The amazon files
already are RecBole's benchmark split and are used as they are. ``--split-only`` stops after
writing ``test_items.tsv``: a check that costs no training.

Without ``--max-minutes`` a run goes on until early stopping (patience 10), which can take hours
here. Creating the file ``OUT/STOP`` ends it after the current epoch: the best epoch so far is
tested and the row says ``"converged": false, "stopped_by": "stop file"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

MIN_SEQUENCE = 3  # as whyrec: one train, one validation and one test item
CUTOFFS = (10, 20)
SHOWN_SETTINGS = (
    "seed", "hidden_size", "embedding_size", "inner_size", "n_layers", "num_layers", "n_heads",
    "hidden_dropout_prob", "attn_dropout_prob", "dropout_prob", "mask_ratio", "loss_type",
    "learning_rate", "train_batch_size", "MAX_ITEM_LIST_LENGTH", "stopping_step", "repeatable",
)  # fmt: skip


class TimeUp(Exception):
    """Raised from the epoch callback when --max-minutes has passed."""


# --- data --------------------------------------------------------------------------------------


def ml100k_frame(path: Path) -> pd.DataFrame:
    """u.data cleaned and ordered exactly as whyrec's loader and cleaner do, with ``time_rank``:
    the row's place in time order, ties in file order."""
    data = path / "u.data"
    if not data.exists():
        raise SystemExit(f"recbole_run: no u.data in {path} (only the ml-100k layout is supported)")
    frame = pd.read_csv(data, sep="\t", names=["user_id", "item_id", "rating", "timestamp"], dtype=str)
    frame["_order"] = np.arange(len(frame))
    for col in ("user_id", "item_id"):
        frame[col] = frame[col].str.strip()
    frame["timestamp"] = pd.to_numeric(frame["timestamp"], errors="coerce")
    frame = frame.dropna(subset=["user_id", "item_id", "timestamp"])
    frame = frame[(frame["user_id"] != "") & (frame["item_id"] != "")]
    frame = frame.sort_values(["user_id", "timestamp", "_order"], kind="stable")
    frame = frame.drop_duplicates(["user_id", "item_id"], keep="first")
    frame = frame[frame.groupby("user_id")["item_id"].transform("size") >= MIN_SEQUENCE]
    chronological = frame.sort_values(["timestamp", "_order"], kind="stable").index
    frame.loc[chronological, "time_rank"] = np.arange(len(frame))
    first_seen = frame.groupby("user_id", sort=False)["_order"].transform("min")
    frame = frame.assign(_first=first_seen).sort_values(["_first", "timestamp", "_order"], kind="stable")
    return frame[["user_id", "item_id", "time_rank", "timestamp"]].reset_index(drop=True)


def write_atomic(spec: str, root: Path) -> tuple[str, dict, dict[str, str], dict[str, str]]:
    """Atomic files under ROOT/NAME; returns NAME, the data part of the config, and the maps
    from the files' user and item ids to the dataset's raw ids (empty: the same ids)."""
    kind, _, raw_path = spec.partition(":")
    path = Path(raw_path)
    if not path.is_dir():
        raise SystemExit(f"recbole_run: dataset path not found: {path}")
    if kind == "movielens":
        # not "ml-100k": RecBole would add its own settings for that name (min-max scaling
        # of float fields, which turns distinct timestamps into ties)
        name = "whyrec-ml-100k"
        (root / name).mkdir(parents=True, exist_ok=True)
        frame = ml100k_frame(path)
        # RecBole holds float fields as float32, where unix seconds are only exact to 64 s, and
        # its time sort does not promise to keep ties in file order: its time field is the
        # row's rank in time order (exact in float32); the unix time rides along unloaded
        with (root / name / f"{name}.inter").open("w") as out:
            out.write("user_id:token\titem_id:token\ttimestamp:float\tunix_time:float\n")
            for user, item, rank, stamp in frame.itertuples(index=False):
                out.write(f"{user}\t{item}\t{int(rank)}\t{int(stamp)}\n")
        config = {
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "normalize_all": False,
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "group_by": "user",
                "mode": "full",
            },
        }
        return name, config, {}, {}
    if kind == "amazon":
        test_files = sorted(path.glob("*.test.inter"))
        if not test_files:
            raise SystemExit(f"recbole_run: no *.test.inter in {path}")
        name = test_files[0].name[: -len(".test.inter")]
        (root / name).mkdir(parents=True, exist_ok=True)
        for part in ("train", "valid", "test"):
            shutil.copyfile(path / f"{name}.{part}.inter", root / name / f"{name}.{part}.inter")
        config = {
            "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
            "alias_of_item_id": ["item_id_list"],
            "benchmark_filename": ["train", "valid", "test"],
            "TIME_FIELD": None,
            "eval_args": {"order": "TO", "mode": "full"},
        }
        return name, config, _index_map(path / f"{name}.user2index"), _index_map(path / f"{name}.item2index")
    raise SystemExit(f"recbole_run: unknown dataset kind {kind!r}; use movielens:PATH or amazon:PATH")


def _index_map(path: Path) -> dict[str, str]:
    """``*.user2index`` / ``*.item2index`` hold ``raw_id<TAB>file_id``: file id -> raw id."""
    if not path.exists():
        return {}
    pairs = (line.split("\t") for line in path.read_text().splitlines() if line.strip())
    return {file_id.strip(): raw.strip() for raw, file_id in pairs}


# --- RecBole ------------------------------------------------------------------------------------


def recbole_config(model: str, name: str, data_root: Path, data_config: dict, out: Path, seed: int) -> dict:
    return {
        "model": model,
        "dataset": name,
        "data_path": str(data_root),
        "checkpoint_dir": str(out / "saved"),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "MAX_ITEM_LIST_LENGTH": 50,
        # the same shape for every sequential model: 64 wide, 2 layers, 2 heads
        "hidden_size": 64,
        "embedding_size": 64,
        "n_layers": 2,
        "num_layers": 2,
        "n_heads": 2,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": list(CUTOFFS),
        "valid_metric": "NDCG@10",
        "stopping_step": 10,
        "epochs": 1_000_000,  # no cap: early stopping (or --max-minutes) ends training
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "seed": seed,
        "reproducibility": True,
        "repeatable": True,  # sequential models only: see main()
        "use_gpu": False,
        "show_progress": False,
        "state": "INFO",
        **data_config,
    }


def held_out_items(loader, user_map: dict[str, str], item_map: dict[str, str]) -> dict[str, str]:
    """The item RecBole holds out for each user in a validation or test loader, in raw ids."""
    dataset = loader._dataset
    users = dataset.id2token(dataset.uid_field, dataset.inter_feat[dataset.uid_field].numpy())
    items = dataset.id2token(dataset.iid_field, dataset.inter_feat[dataset.iid_field].numpy())
    out: dict[str, str] = {}
    for user, item in zip(users, items, strict=True):
        user, item = user_map.get(str(user), str(user)), item_map.get(str(item), str(item))
        if user in out:
            raise SystemExit(f"recbole_run: RecBole holds out more than one item for user {user}")
        out[user] = item
    return out


def seen_items(datasets, test_dataset) -> dict[int, np.ndarray]:
    """Internal ids of every item each user met before their test item: all train and
    validation rows (targets and histories) plus the test row's history."""
    users, items = [], []
    for dataset in (*datasets, test_dataset):
        feat = dataset.inter_feat
        lists = feat[dataset.item_id_list_field].numpy()
        row_users = feat[dataset.uid_field].numpy()
        users.append(np.repeat(row_users, lists.shape[1]))
        items.append(lists.reshape(-1))
        if dataset is not test_dataset:
            users.append(row_users)
            items.append(feat[dataset.iid_field].numpy())
    pairs = np.unique(np.stack([np.concatenate(users), np.concatenate(items)], axis=1), axis=0)
    pairs = pairs[pairs[:, 1] != 0]  # 0 pads the history lists
    cuts = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    return {int(group[0, 0]): group[:, 1] for group in np.split(pairs, cuts)}


def ranked_metrics(model, test_data, seen: dict[int, np.ndarray]) -> dict[str, dict[str, float]]:
    """RecBole's sequential full ranking, scored with whyrec's rank rule (items scored strictly
    higher than the target), both as RecBole ranks (seen items included) and with them masked."""
    import torch

    ranks: dict[str, list[np.ndarray]] = {"all_items": [], "seen_masked": []}
    model.eval()
    with torch.no_grad():
        for interaction, _, _, positive_i in test_data:
            scores = model.full_sort_predict(interaction).view(len(positive_i), -1).double()
            scores[:, 0] = -np.inf  # RecBole's padding item
            rows = torch.arange(len(positive_i))
            for key in ranks:
                if key == "seen_masked":
                    users = interaction[test_data._dataset.uid_field].numpy()
                    for row, user in enumerate(users):
                        scores[row, torch.from_numpy(seen.get(int(user), np.empty(0, np.int64)))] = -np.inf
                target = scores[rows, positive_i].unsqueeze(1)
                ranks[key].append((scores > target).sum(dim=1).numpy())
    return {key: metrics_from_ranks(np.concatenate(parts)) for key, parts in ranks.items()}


def pop_exact_counts(train_data, test_data) -> dict[str, float]:
    """Popularity from exact training counts, ranked on RecBole's own test loader (seen items
    masked as RecBole masks them). RecBole 1.2.1's Pop counts an item once per training batch
    however often it occurs there (RUCAIBox/RecBole#1844, #2198), so its figures fall as
    train_batch_size grows; this is what it would report without that undercount."""
    import torch

    dataset = train_data._dataset
    counts = torch.bincount(dataset.inter_feat[dataset.iid_field], minlength=dataset.item_num).double()
    ranks = []
    for _, history, positive_u, positive_i in test_data:
        scores = counts.repeat(int(positive_u.max()) + 1, 1)
        scores[:, 0] = -np.inf
        scores[history] = -np.inf
        target = scores[positive_u, positive_i].unsqueeze(1)
        ranks.append((scores[positive_u] > target).sum(dim=1).numpy())
    return metrics_from_ranks(np.concatenate(ranks))


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    ranks = ranks.astype(np.float64)
    out: dict[str, float] = {}
    for k in CUTOFFS:
        hit = ranks < k
        out[f"HR@{k}"] = round(float(hit.mean()), 5)
        out[f"NDCG@{k}"] = round(float((hit / np.log2(ranks + 2)).mean()), 5)
        out[f"MRR@{k}"] = round(float((hit / (ranks + 1)).mean()), 5)
    return out


def from_recbole(result: dict) -> dict[str, float]:
    names = {"hit": "HR", "ndcg": "NDCG", "mrr": "MRR"}
    out = {}
    for key, value in result.items():
        metric, _, k = key.partition("@")
        if metric in names:
            out[f"{names[metric]}@{k}"] = round(float(value), 5)
    return out


def train(
    trainer, train_data, valid_data, max_minutes: float | None, stop_file: Path | None = None
) -> tuple[list[dict], bool, float]:
    """fit() with every validation recorded and an optional time limit; returns the curve,
    whether the time limit (or STOP_FILE, checked after each epoch) stopped it, and the seconds
    spent. Either way the best epoch so far is then tested."""
    curve: list[dict] = []
    start = time.perf_counter()
    validate = trainer._valid_epoch

    def recorded_validation(valid_data, show_progress=False):
        score, result = validate(valid_data, show_progress=show_progress)
        curve.append({"valid": from_recbole(result), "seconds": round(time.perf_counter() - start, 1)})
        return score, result

    def after_epoch(epoch_idx: int, valid_score: float) -> None:
        curve[-1] = {
            "epoch": epoch_idx,
            "NDCG@10": round(float(valid_score), 5),
            "train_loss": round(float(trainer.train_loss_dict.get(epoch_idx, float("nan"))), 4),
            **curve[-1],
        }
        print(f"epoch {epoch_idx} valid NDCG@10 {valid_score:.5f} ({curve[-1]['seconds']}s)", flush=True)
        if max_minutes is not None and time.perf_counter() - start > 60 * max_minutes:
            raise TimeUp
        if stop_file is not None and stop_file.exists():
            print(f"{stop_file} found: stopping before convergence", flush=True)
            raise TimeUp

    trainer._valid_epoch = recorded_validation
    timed_out = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=after_epoch)
    except TimeUp:
        timed_out = True
    return curve, timed_out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", help="movielens:PATH or amazon:PATH")
    parser.add_argument("model", help="RecBole model name: Pop, SASRec, GRU4Rec, BERT4Rec, ...")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop at the first validation past this many minutes of training; the best epoch is tested",
    )
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch-size", type=int, default=2048)
    parser.add_argument("--split-only", action="store_true", help="write test_items.tsv and stop")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a RecBole setting (VALUE read as JSON when it parses), e.g. reg_weight=100 for EASE",
    )
    args = parser.parse_args()
    wall_start = time.perf_counter()

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import ModelType, get_model, get_trainer, init_logger, init_seed

    torch.set_num_threads(args.threads)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "STOP").unlink(missing_ok=True)  # a STOP left by an earlier run
    name, data_config, user_map, item_map = write_atomic(args.dataset, out / "atomic")
    settings = recbole_config(args.model, name, out / "atomic", data_config, out, args.seed)
    settings["train_batch_size"] = args.train_batch_size
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    os.chdir(out)  # RecBole writes log/ and log_tensorboard/ under the working directory
    config = Config(model=args.model, config_dict=settings)
    # RecBole requires repeatable for sequential models (and then ranks seen items too). For the
    # others it would switch off the masking of seen items, which whyrec and RecBole's own
    # default for general models do: they keep their default, False.
    config["repeatable"] = config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logging.getLogger().info(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    targets = held_out_items(test_data, user_map, item_map)
    valid = held_out_items(valid_data, user_map, item_map)
    with (out / "test_items.tsv").open("w") as handle:
        handle.write("user_id\titem_id\tvalid_item_id\n")
        handle.writelines(f"{user}\t{item}\t{valid.get(user, '')}\n" for user, item in targets.items())
    print(f"test items for {len(targets):,} users -> {out / 'test_items.tsv'}", flush=True)
    if args.split_only:
        return

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    curve, timed_out, train_seconds = train(trainer, train_data, valid_data, args.max_minutes, out / "STOP")
    result = trainer.evaluate(test_data, load_best_model=True, model_file=trainer.saved_model_file)
    test = from_recbole(result)
    best = max(curve, key=lambda c: c["NDCG@10"]) if curve else None
    sequential = config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    stopped_by = (
        ("stop file" if (out / "STOP").exists() else "max_minutes") if timed_out else "early_stopping"
    )
    if config["MODEL_TYPE"] == ModelType.TRADITIONAL:
        stopped_by = "one pass (not iterative)"
    row = {
        "dataset": args.dataset,
        "model": f"recbole:{args.model}",
        "n_users": int(dataset.user_num - 1),  # RecBole's id 0 is padding
        "n_items": int(dataset.item_num - 1),
        **test,
        "train_seconds": round(train_seconds, 1),
        "epochs_run": len(curve),
        "best_epoch": best["epoch"] if best else None,
        "valid_NDCG@10": best["NDCG@10"] if best else None,
        "seconds_to_best": best["seconds"] if best else None,
        "seconds_per_epoch": round(train_seconds / len(curve), 1) if curve else None,
        "converged": not timed_out,
        "stopped_by": stopped_by,
        "valid_curve": curve,
        "seen_items_ranked": bool(config["repeatable"]),
        "recbole": {
            "version": "1.2.1",
            "threads": args.threads,
            "set": args.set,
            **{key: config.final_config_dict.get(key) for key in SHOWN_SETTINGS},
        },
    }
    if sequential:
        # the best checkpoint is loaded by evaluate(); rank again both ways with one rank rule
        seen = seen_items((train_data._dataset, valid_data._dataset), test_data._dataset)
        both = ranked_metrics(trainer.model, test_data, seen)
        row["all_items_recomputed"] = both["all_items"]
        row["seen_masked"] = both["seen_masked"]
    if args.model == "Pop":
        row["exact_counts"] = pop_exact_counts(train_data, test_data)
    row["wall_seconds"] = round(time.perf_counter() - wall_start, 1)
    (out / "row.json").write_text(json.dumps(row, indent=2))
    print(json.dumps({k: v for k, v in row.items() if k != "valid_curve"}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
