"""Load -> split -> encode -> fit -> evaluate -> save: what the commands run."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whyrec.data import Dataset, LoadOptions, SequenceSplit, leave_one_out, load_dataset
from whyrec.errors import WhyrecError
from whyrec.metrics import evaluate
from whyrec.models import Hybrid
from whyrec.models.base import FitData, LogFn, Scorer
from whyrec.models.parallel import Processes
from whyrec.models.sequence import SequenceModel
from whyrec.text.encoder import make_encoder
from whyrec.training.adapt import AdaptConfig, Adapted, adapt_encoder
from whyrec.training.recommender import Recommender
from whyrec.training.registry import build_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    spec: str
    dataset: Dataset
    split: SequenceSplit
    item_vectors: np.ndarray
    encoder_name: str
    adapted: Adapted | None = None  # the encoder fine-tuned on the training split (--adapt-encoder)


def prepare(
    spec: str,
    options: LoadOptions | None = None,
    encoder: str | None = None,
    progress: bool = True,
    adapt: AdaptConfig | None = None,
) -> Prepared:
    """Load and clean the dataset (logging the cleaning report), split it, encode item text. With
    ADAPT, the encoder is first fine-tuned on the training split (see :mod:`whyrec.training.adapt`)
    and the item text is encoded by the adapted encoder."""
    dataset = load_dataset(spec, options)
    log.info(f"dataset {dataset.name}")
    for line in dataset.report.lines():
        log.info("  " + line)
    split = leave_one_out(dataset)
    if split.dropped_short_users:
        log.info(f"  users with fewer than 3 interactions (not split) {split.dropped_short_users:,}")
    adapted = None
    if adapt is not None:
        adapted = adapt_encoder(split, dataset.catalog, encoder, adapt, progress=progress)
        encoder = str(adapted.path)
    text_encoder = make_encoder(encoder, progress=progress)
    vectors = text_encoder.encode([dataset.catalog.text(i) for i in split.items.ids])
    encoded = getattr(text_encoder, "last_encoded", len(vectors))
    log.info(f"text encoder {text_encoder.name}: {len(vectors):,} items, {encoded:,} newly encoded")
    return Prepared(spec, dataset, split, vectors, text_encoder.name, adapted)


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
    curves: LogFn | None = None,
) -> list[dict[str, Any]]:
    """Fit each model (unless already fitted) and test it; a metrics row per model."""
    data = FitData(prepared.split, prepared.item_vectors, progress=progress, log=curves)
    histories, targets = prepared.split.test()
    rows = []
    fitted: list[Scorer] = []
    for name, model in models.items():
        log.info(f"fitting {name} ...")
        if isinstance(model, Hybrid):  # parts trained earlier in this list are not trained again
            for part in model.adopt(fitted):
                log.info(f"  {name} reuses the {part} model fitted above")
        model.fit(data)
        fitted.append(model)
        if not Processes().main:  # one of several processes training the models: rank 0 tests them
            continue
        test = evaluate(model, histories, targets, prepared.split.n_items)
        row = metrics_row(prepared, model, test)
        log.info(
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
        raise WhyrecError(
            "--tensorboard needs the tensorboard package: pip install 'whyrec[report]'"
        ) from None
    writer = SummaryWriter(log_dir)

    def write(tag: str, value: float, step: int) -> None:
        writer.add_scalar(tag, value, step)
        writer.flush()

    return write


def train_run(
    prepared: Prepared,
    model_name: str,
    out: Path,
    progress: bool = True,
    curves: LogFn | None = None,
    model: Scorer | None = None,
    settings: dict[str, str] | None = None,
) -> tuple[Recommender, dict[str, Any]]:
    """Fit one model (selection on validation), test it, and save a run directory. SETTINGS (the
    command line's ``--set``, already applied to MODEL) are recorded in run.json, so a retraining
    with feedback keeps them."""
    model = model or build_models([model_name])[model_name]
    row = fit_and_test(prepared, {model_name: model}, progress=progress, curves=curves)[0]
    split = prepared.split
    histories = {
        u: split.items.lookup_ids(seq) for u, seq in zip(split.users.ids, split.sequences, strict=True)
    }
    encoder_info: dict[str, Any] = {"encoder": prepared.encoder_name}
    if prepared.adapted is not None:  # the run keeps its own copy; search encodes queries with it
        copy = Path(out).resolve() / prepared.adapted.path.name
        if not copy.exists():
            shutil.copytree(prepared.adapted.path, copy)
        encoder_info = {"encoder": str(copy), "adaptation": prepared.adapted.report}
    recommender = Recommender(
        model,
        split.items,
        prepared.dataset.catalog,
        prepared.item_vectors,
        histories,
        info={
            "dataset": prepared.spec,
            **encoder_info,
            "metrics": row,
            **({"settings": settings} if settings else {}),
        },
    )
    recommender.save(out)
    (Path(out) / "metrics.json").write_text(json.dumps([row], indent=2))
    return recommender, row


def train_run_in_group(
    prepared: Prepared,
    model_name: str,
    out: Path,
    model: Scorer,
    settings: dict[str, str] | None = None,
    progress: bool = True,
    tensorboard: str | None = None,
) -> dict[str, Any]:
    """:func:`train_run` by every process of a torch.distributed group: all train MODEL together,
    rank 0 alone tests it and saves the run (and returns its metrics row; the others ``{}``)."""
    if not uses_processes(model):
        raise WhyrecError(f"{model_name} does not train on several processes (sequence models and hybrid do)")
    if Processes().main:
        curves = tensorboard_logger(tensorboard)
        return train_run(prepared, model_name, out, progress, curves, model, settings)[1]
    fit_and_test(prepared, {model_name: model}, progress=False)
    return {}


def uses_processes(model: Scorer) -> bool:
    """MODEL trains sequence models, which share the work of several processes."""
    return isinstance(model, SequenceModel | Hybrid)
