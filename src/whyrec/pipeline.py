"""Load -> split -> encode -> fit -> evaluate -> save: what the commands run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whyrec.data import Dataset, LoadOptions, SequenceSplit, leave_one_out, load_dataset
from whyrec.eval.metrics import evaluate
from whyrec.models.base import FitData, LogFn, Scorer
from whyrec.models.registry import build_models
from whyrec.recommender import Recommender
from whyrec.text.encoder import make_encoder

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Prepared:
    spec: str
    dataset: Dataset
    split: SequenceSplit
    item_vectors: np.ndarray
    encoder_name: str


def prepare(
    spec: str,
    options: LoadOptions | None = None,
    encoder: str | None = None,
    say: Say = _stderr,
    progress: bool = True,
) -> Prepared:
    """Load and clean the dataset (printing the cleaning report), split it, encode item text."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    dataset = load_dataset(spec, options)
    say(f"dataset {dataset.name}")
    for line in dataset.report.lines():
        say("  " + line)
    split = leave_one_out(dataset)
    if split.dropped_short_users:
        say(f"  users with fewer than 3 interactions (not split) {split.dropped_short_users:,}")
    text_encoder = make_encoder(encoder, progress=progress)
    vectors = text_encoder.encode([dataset.catalog.text(i) for i in split.items.ids])
    encoded = getattr(text_encoder, "last_encoded", len(vectors))
    say(f"text encoder {text_encoder.name}: {len(vectors):,} items, {encoded:,} newly encoded")
    return Prepared(spec, dataset, split, vectors, text_encoder.name)


def metrics_row(prepared: Prepared, model: Scorer, test: dict[str, float]) -> dict[str, Any]:
    info = model.fit_info
    row: dict[str, Any] = {
        "dataset": prepared.spec,
        "model": model.name,
        "n_users": prepared.split.n_users,
        "n_items": prepared.split.n_items,
        **{k: round(v, 5) for k, v in test.items()},
        "train_seconds": round(info.train_seconds, 2),
    }
    if info.best_valid_ndcg10 is not None:
        row["valid_NDCG@10"] = round(info.best_valid_ndcg10, 5)
    if info.best_epoch is not None:
        row["best_epoch"] = info.best_epoch
    if info.seconds_to_best is not None:
        row["seconds_to_best"] = round(info.seconds_to_best, 2)
    if info.extra:
        row["details"] = info.extra
    return row


def fit_and_test(
    prepared: Prepared,
    models: dict[str, Scorer],
    progress: bool = True,
    log: LogFn | None = None,
    say: Say = _stderr,
) -> list[dict[str, Any]]:
    data = FitData(prepared.split, prepared.item_vectors, progress=progress, log=log)
    histories, targets = prepared.split.test()
    rows = []
    for name, model in models.items():
        say(f"fitting {name} ...")
        if (
            model.n_items != prepared.split.n_items or name == "hybrid"
        ):  # a hybrid's parts may already be fitted
            model.fit(data)
        test = evaluate(model, histories, targets, prepared.split.n_items)
        row = metrics_row(prepared, model, test)
        say(
            f"  {name}: test NDCG@10 {row['NDCG@10']:.4f}  HR@10 {row['HR@10']:.4f}  "
            f"({row['train_seconds']:.1f}s)"
        )
        rows.append(row)
    return rows


def tensorboard_logger(log_dir: str | None) -> LogFn | None:
    if not log_dir:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from whyrec.errors import WhyrecError

        raise WhyrecError(
            "--tensorboard needs the tensorboard package: pip install 'whyrec[report]'"
        ) from None
    writer = SummaryWriter(log_dir)

    def log(tag: str, value: float, step: int) -> None:
        writer.add_scalar(tag, value, step)
        writer.flush()

    return log


def train_run(
    prepared: Prepared,
    model_name: str,
    out: Path,
    progress: bool = True,
    log: LogFn | None = None,
    say: Say = _stderr,
    model: Scorer | None = None,
    settings: dict[str, str] | None = None,
) -> tuple[Recommender, dict[str, Any]]:
    """Fit one model (selection on validation), test it, and save a run directory. SETTINGS (the
    command line's ``--set``, already applied to MODEL) are recorded in run.json, so a retraining
    with feedback keeps them."""
    model = model or build_models([model_name])[model_name]
    row = fit_and_test(prepared, {model_name: model}, progress=progress, log=log, say=say)[0]
    split = prepared.split
    histories = {
        u: split.items.lookup_ids(seq) for u, seq in zip(split.users.ids, split.sequences, strict=True)
    }
    recommender = Recommender(
        model,
        split.items,
        prepared.dataset.catalog,
        prepared.item_vectors,
        histories,
        info={
            "dataset": prepared.spec,
            "encoder": prepared.encoder_name,
            "metrics": row,
            **({"settings": settings} if settings else {}),
        },
    )
    recommender.save(out)
    import json

    (Path(out) / "metrics.json").write_text(json.dumps([row], indent=2))
    return recommender, row
