"""Train and test one RecBole 1.2.1 model on whyrec's leave-one-out split (runs in the RecBole venv).

    bash bench/setup_recbole.sh
    bench/.recbole-venv/bin/python bench/recbole_run.py movielens:../shared/data/ml-100k SASRec \\
        --out bench/out/recbole/ml-100k/SASRec --max-minutes 10

SPEC is ``movielens:PATH`` (the ml-100k ``u.data`` layout) or ``amazon:PATH`` (UniSRec's atomic
files). MODEL is a RecBole model name (Pop, SASRec, GRU4Rec, BERT4Rec, EASE, ItemKNN, ...).
Writes into OUT:

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

General models (EASE, ItemKNN, Pop, BPR, ...) read user-item pairs instead: each user's whole
sequence is rebuilt as whyrec's loader rebuilds it and written as three files, the last item to
test, the one before it to validation, the rest to training (``benchmark_filename``). The
closed-form ones (EASE and ItemKNN, or another ``ModelType.TRADITIONAL`` model fitted when built,
given ``--grid``) are fitted once per combination of ``--grid`` (default ``DEFAULT_GRIDS``); the
combination with the best validation NDCG@10 is kept and tested once, all by whyrec's protocol:
full ranking, the user's earlier items masked, ties at their expected place, and at test the
validation item in the user's history (RecBole's own scoring reads the training items only; EASE
and ItemKNN score from that longer history with the same fitted weights). The row also holds the
whole grid, the test figures from the training items only and RecBole's own test figures (its
Trainer, its tie-break).

Without ``--max-minutes`` a run goes on until early stopping (patience 10), which can take hours
here. Creating the file ``OUT/STOP`` ends it after the current epoch: the best epoch so far is
tested and the row says ``"converged": false, "stopped_by": "stop file"``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
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


# RecBole's closed-form general models, tuned on validation NDCG@10 over these unless --grid or
# --set says otherwise (every combination is fitted once; the test split plays no part)
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "EASE": {"reg_weight": [10, 30, 100, 250, 500, 1000]},
    "ItemKNN": {"k": [50, 100, 200, 400, 800], "shrink": [0, 10, 100]},
}


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


def _inter_rows(path: Path) -> list[tuple[str, list[str], str]]:
    """Rows of a UniSRec ``*.inter`` file: (user, history, next item), in file ids."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)  # 3: QUOTE_NONE
    users, histories, targets = (frame.iloc[:, c].astype(str).tolist() for c in range(3))
    return [(u, h.split(), t) for u, h, t in zip(users, histories, targets, strict=True)]


def user_sequences(spec: str) -> tuple[str, dict[str, list[str]]]:
    """Each user's whole sequence in raw ids and time order, as whyrec's loader rebuilds it, for
    users with at least MIN_SEQUENCE items; and the dataset's name for RecBole."""
    kind, _, raw_path = spec.partition(":")
    path = Path(raw_path)
    if not path.is_dir():
        raise SystemExit(f"recbole_run: dataset path not found: {path}")
    if kind == "movielens":
        frame = ml100k_frame(path)  # grouped by user, each user's rows in time order
        grouped = frame.groupby("user_id", sort=False)["item_id"].agg(list)
        return "whyrec-ml-100k", {str(user): list(items) for user, items in grouped.items()}
    if kind == "amazon":
        test_files = sorted(path.glob("*.test.inter"))
        if not test_files:
            raise SystemExit(f"recbole_run: no *.test.inter in {path}")
        name = test_files[0].name[: -len(".test.inter")]
        users = _index_map(path / f"{name}.user2index")
        items = _index_map(path / f"{name}.item2index")
        valid = {user: target for user, _, target in _inter_rows(path / f"{name}.valid.inter")}
        prefixes: dict[str, list[tuple[list[str], str]]] = {}
        for user, history, target in _inter_rows(path / f"{name}.train.inter"):
            prefixes.setdefault(user, []).append((history, target))
        out: dict[str, list[str]] = {}
        for user, test_history, test_target in _inter_rows(path / f"{name}.test.inter"):
            # the train rows come longest prefix first: the shortest one starts the sequence
            rows = prefixes.get(user, [])[::-1]
            if rows:
                seq = [*rows[0][0], *(target for _, target in rows), valid[user], test_target]
            else:
                seq = [*test_history, test_target]
            if seq[-51:-1] != test_history[-50:]:  # the file's own (truncated) view instead
                seq = [*test_history, test_target]
            if len(seq) >= MIN_SEQUENCE:
                out[users.get(user, user)] = [items.get(item, item) for item in seq]
        return name, out
    raise SystemExit(f"recbole_run: unknown dataset kind {kind!r}; use movielens:PATH or amazon:PATH")


def write_general_atomic(spec: str, root: Path) -> tuple[str, dict]:
    """User-item atomic files for RecBole's general models under ROOT/NAME, split as whyrec splits:
    each user's last item in ``NAME.test.inter``, the one before it in ``NAME.valid.inter``, the
    rest in ``NAME.train.inter`` (a pair met twice in training once: a general model reads a set of
    pairs). Raw ids throughout. Returns NAME and the data part of the config."""
    name, sequences = user_sequences(spec)
    (root / name).mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\n"
    parts = {"train": [header], "valid": [header], "test": [header]}
    for user, seq in sequences.items():
        parts["train"] += [f"{user}\t{item}\n" for item in dict.fromkeys(seq[:-2])]
        parts["valid"].append(f"{user}\t{seq[-2]}\n")
        parts["test"].append(f"{user}\t{seq[-1]}\n")
    for part, lines in parts.items():
        (root / name / f"{name}.{part}.inter").write_text("".join(lines))
    config = {
        "load_col": {"inter": ["user_id", "item_id"]},
        "benchmark_filename": ["train", "valid", "test"],
        "TIME_FIELD": None,
        "normalize_all": False,
        # the files are the split (RecBole neither orders nor splits them); LS says what they hold
        "eval_args": {"split": {"LS": "valid_and_test"}, "group_by": "user", "order": "RO", "mode": "full"},
    }
    return name, config


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
    """RecBole's sequential full ranking, scored with whyrec's rank rule (ties with the target
    counted at their expected place), both as RecBole ranks (seen items included) and with them
    masked. RecBole's padding item 0 is no candidate."""
    import torch

    ranks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"all_items": [], "seen_masked": []}
    model.eval()
    with torch.no_grad():
        for interaction, _, _, positive_i in test_data:
            scores = model.full_sort_predict(interaction).view(len(positive_i), -1).double()
            for key in ranks:
                if key == "seen_masked":
                    users = interaction[test_data._dataset.uid_field].numpy()
                    for row, user in enumerate(users):
                        scores[row, torch.from_numpy(seen.get(int(user), np.empty(0, np.int64)))] = -np.inf
                ranks[key].append(target_ranks(scores[:, 1:].numpy(), positive_i.numpy() - 1))
    return {
        key: metrics_from_ranks(*map(np.concatenate, zip(*parts, strict=True)))
        for key, parts in ranks.items()
    }


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
        scores[history] = -np.inf
        ranks.append(target_ranks(scores[positive_u][:, 1:].numpy(), positive_i.numpy() - 1))
    return metrics_from_ranks(*map(np.concatenate, zip(*ranks, strict=True)))


def expected_gain(higher: np.ndarray, tied: np.ndarray, k: int, gain: np.ndarray) -> np.ndarray:
    """Mean of ``gain[p]`` (0 beyond ``k``) over the positions ``higher .. higher + tied``: a target
    tied with other items at its expected place under a random tie-break, as whyrec measures."""
    cumulative = np.concatenate([[0.0], np.cumsum(gain[:k])])
    low = np.clip(higher, 0, k).astype(np.int64)
    high = np.clip(higher + tied + 1, 0, k).astype(np.int64)
    return (cumulative[high] - cumulative[low]) / (tied + 1.0)


def ndcg_per_user(higher: np.ndarray, tied: np.ndarray, k: int = 10) -> np.ndarray:
    return expected_gain(higher, tied, k, 1.0 / np.log2(np.arange(k) + 2.0))


def metrics_from_ranks(higher: np.ndarray, tied: np.ndarray | None = None) -> dict[str, float]:
    """HR, NDCG and MRR at each cutoff by whyrec's rule (``whyrec.metrics.ranking``): HIGHER items
    scored above the target and TIED other items level with it, every place among the tied ones
    equally likely. With more than one user, also the standard error of NDCG@10 over users."""
    higher = np.asarray(higher, dtype=np.float64)
    tied = np.zeros_like(higher) if tied is None else np.asarray(tied, dtype=np.float64)
    out: dict[str, float] = {}
    for k in CUTOFFS:
        out[f"HR@{k}"] = round(float(expected_gain(higher, tied, k, np.ones(k)).mean()), 5)
        out[f"NDCG@{k}"] = round(float(ndcg_per_user(higher, tied, k).mean()), 5)
        out[f"MRR@{k}"] = round(float(expected_gain(higher, tied, k, 1.0 / (np.arange(k) + 1.0)).mean()), 5)
    if len(higher) > 1:
        per_user = ndcg_per_user(higher, tied, 10)
        out["NDCG@10_se"] = round(float(per_user.std(ddof=1) / np.sqrt(len(per_user))), 5)
    return out


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items scored strictly above each row's target and other items tied with it (``-inf``
    marks a masked item; a masked target is tied with the other masked ones, as in whyrec)."""
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise SystemExit("recbole_run: the model gave NaN or +inf scores; its ranking cannot be measured")
    target = scores[np.arange(len(targets)), targets][:, None]
    return (scores > target).sum(axis=1), (scores == target).sum(axis=1) - 1


def pairs_matrix(datasets, n_users: int, n_items: int):
    """The binary users x items matrix (RecBole's internal ids) of the rows of DATASETS."""
    import scipy.sparse as sp

    users = np.concatenate([d.inter_feat[d.uid_field].numpy() for d in datasets])
    items = np.concatenate([d.inter_feat[d.iid_field].numpy() for d in datasets])
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def held_out_rows(dataset) -> tuple[np.ndarray, np.ndarray]:
    """The users of a validation or test dataset and the one item each holds out (internal ids)."""
    users = dataset.inter_feat[dataset.uid_field].numpy()
    if len(np.unique(users)) != len(users):
        raise SystemExit("recbole_run: a user holds out more than one item")
    return users, dataset.inter_feat[dataset.iid_field].numpy()


@contextmanager
def scoring_from(model, profile):
    """RecBole's EASE and ItemKNN score a user from their row of the training matrix they were
    fitted on; inside this block they score from PROFILE's row instead (the same weights: only
    the user's history changes). Other models are refused."""
    saved = {
        name: getattr(model, name) for name in ("interaction_matrix", "pred_mat") if hasattr(model, name)
    }
    if hasattr(model, "item_similarity"):  # EASE: interaction_matrix @ item_similarity
        model.interaction_matrix = profile
    elif hasattr(model, "w") and getattr(model, "method", None) == "item":  # ItemKNN: pred_mat = X @ w
        model.interaction_matrix = profile
        model.pred_mat = profile.dot(model.w).tolil()
    else:
        raise ValueError(f"{type(model).__name__} cannot score from another history")
    try:
        yield model
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


def general_ranks(model, uid_field: str, users: np.ndarray, targets: np.ndarray, seen, batch: int = 1024):
    """A general model's full ranking for USERS by its own ``full_sort_predict``, each row's SEEN
    items (a users x items matrix) masked as whyrec masks them, and where each target lands:
    (items above it, other items tied with it). RecBole's padding item 0 is no candidate."""
    import torch
    from recbole.data.interaction import Interaction

    higher, tied = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(users), batch):
            chunk = users[start : start + batch]
            interaction = Interaction({uid_field: torch.from_numpy(chunk)})
            scores = model.full_sort_predict(interaction).view(len(chunk), -1).double().numpy().copy()
            rows, cols = seen[chunk].nonzero()
            scores[rows, cols] = -np.inf
            h, t = target_ranks(scores[:, 1:], targets[start : start + batch] - 1)
            higher.append(h)
            tied.append(t)
    return np.concatenate(higher), np.concatenate(tied)


def grid_of(model: str, grids: list[str], fixed: list[str]) -> dict[str, list]:
    """The settings to try: ``--grid KEY=V1,V2`` options, else the model's default grid less the
    keys ``--set`` fixes."""

    def value(text: str):
        try:
            return json.loads(text)
        except ValueError:
            return text

    if grids:
        out = {}
        for item in grids:
            key, _, values = item.partition("=")
            out[key] = [value(v) for v in values.split(",")]
        return out
    fixed_keys = {item.partition("=")[0] for item in fixed}
    return {k: v for k, v in DEFAULT_GRIDS.get(model, {}).items() if k not in fixed_keys}


def run_traditional(config, train_data, valid_data, test_data, grid: dict[str, list]) -> dict:
    """Fit a closed-form general model (EASE, ItemKNN, ...) once per combination of GRID, keep
    the one with the best validation NDCG@10 (whyrec's rule: training items masked, ties at their
    expected place) and test it once. Returns the part of the row these models add."""
    from recbole.utils import get_model, get_trainer, init_seed

    train_set, valid_set, test_set = train_data._dataset, valid_data._dataset, test_data._dataset
    n_users, n_items, uid_field = train_set.user_num, train_set.item_num, train_set.uid_field
    train_matrix = pairs_matrix([train_set], n_users, n_items)
    before_test = pairs_matrix([train_set, valid_set], n_users, n_items)
    valid_users, valid_targets = held_out_rows(valid_set)
    test_users, test_targets = held_out_rows(test_set)

    tried: list[dict] = []
    best: dict | None = None
    chosen = None
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        for key, value in settings.items():
            config[key] = value
        init_seed(config["seed"], config["reproducibility"])
        start = time.perf_counter()
        model = get_model(config["model"])(config, train_set).to(config["device"])
        fit_seconds = time.perf_counter() - start
        valid = metrics_from_ranks(*general_ranks(model, uid_field, valid_users, valid_targets, train_matrix))
        tried.append(
            {**settings, "valid_NDCG@10": valid["NDCG@10"], "valid_HR@10": valid["HR@10"],
             "fit_seconds": round(fit_seconds, 2)}
        )  # fmt: skip
        print(
            f"{config['model']} {settings}: valid NDCG@10 {valid['NDCG@10']} (fit {fit_seconds:.1f}s)",
            flush=True,
        )
        if best is None or valid["NDCG@10"] > best["valid"]["NDCG@10"]:
            best = {"settings": settings, "valid": valid, "fit_seconds": round(fit_seconds, 2)}
            chosen = model
        del model
    assert best is not None and chosen is not None
    for key, value in best["settings"].items():
        config[key] = value

    # RecBole's own test: its Trainer ranks from the training matrix only (the validation item is
    # not in the user's row), masks what RecBole masks and breaks ties by torch.topk
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, chosen)
    recbole_own = from_recbole(trainer.evaluate(test_data, load_best_model=False, show_progress=False))
    train_only = metrics_from_ranks(*general_ranks(chosen, uid_field, test_users, test_targets, before_test))
    try:  # whyrec's protocol: every item before the test item is the user's history
        with scoring_from(chosen, before_test):
            test = metrics_from_ranks(
                *general_ranks(chosen, uid_field, test_users, test_targets, before_test)
            )
        profile = "training and validation items (the validation item folded in, as whyrec scores a test)"
    except ValueError:
        test, profile = train_only, "training items only (this model cannot score another history)"
    return {
        **test,
        "valid_NDCG@10": best["valid"]["NDCG@10"],
        "valid": best["valid"],
        "settings": best["settings"],
        "grid": tried,
        "chosen_on": "validation NDCG@10 (training items masked, ties at their expected place)",
        "fit_seconds": best["fit_seconds"],
        "grid_seconds": round(sum(g["fit_seconds"] for g in tried), 1),
        "test_history": profile,
        "test_training_items_only": train_only,
        "recbole_own_test": recbole_own,
    }


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
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="closed-form general models (EASE, ItemKNN, or another fitted when built): values to "
        "try, chosen on validation NDCG@10 (every combination of the --grid options; default: "
        + "; ".join(f"{m} {g}" for m, g in DEFAULT_GRIDS.items())
        + ", less the keys --set fixes)",
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
    # a general model reads user-item pairs: RecBole's sequential format would give it every
    # training prefix of a user as a row of its own
    general = get_model(args.model).type in (ModelType.GENERAL, ModelType.TRADITIONAL)
    if general:
        name, data_config = write_general_atomic(args.dataset, out / "atomic")
        user_map: dict[str, str] = {}
        item_map: dict[str, str] = {}
    else:
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

    # fitted when built (Pop is TRADITIONAL too, but counts during its one training epoch)
    if config["MODEL_TYPE"] == ModelType.TRADITIONAL and (args.model in DEFAULT_GRIDS or args.grid):
        grid = grid_of(args.model, args.grid, args.set)
        start = time.perf_counter()
        closed_form = run_traditional(config, train_data, valid_data, test_data, grid)
        row = {
            "dataset": args.dataset,
            "model": f"recbole:{args.model}",
            "n_users": int(dataset.user_num - 1),  # RecBole's id 0 is padding
            "n_items": int(dataset.item_num - 1),
            **closed_form,
            "train_seconds": round(time.perf_counter() - start, 1),  # the whole grid, with validation
            "epochs_run": 1,
            "best_epoch": None,
            "seconds_per_epoch": None,
            "converged": True,
            "stopped_by": "closed form (not iterative)",
            "valid_curve": [],
            "seen_items_ranked": False,
            "recbole": {
                "version": "1.2.1",
                "threads": args.threads,
                "set": args.set,
                "seed": config["seed"],
                **{key: config.final_config_dict.get(key) for key in ("knn_method", *grid)},
            },
            "wall_seconds": round(time.perf_counter() - wall_start, 1),
        }
        (out / "row.json").write_text(json.dumps(row, indent=2))
        print(json.dumps({k: v for k, v in row.items() if k != "grid"}), flush=True)
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
    if config["MODEL_TYPE"] == ModelType.TRADITIONAL:  # Pop
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
    main()
