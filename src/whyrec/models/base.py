"""The one protocol every model follows: fit on a split, score every item for histories."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from whyrec.data.split import SequenceSplit

#: (tag, value, step): a hook for training curves (TensorBoard or anything else)
LogFn = Callable[[str, float, int], None]

#: A history slot whose item is hidden in place (occlusion that keeps positions): models that read
#: positions (``reads_positions = True``) read it as padding where the item stood; the others must
#: never receive it (see :func:`visible`).
HIDDEN = -1


@dataclass(frozen=True)
class FitData:
    """Everything a model may learn from: the split and the items' LM vectors."""

    split: SequenceSplit
    item_vectors: np.ndarray  # (n_items, text_dim), L2-normalised
    progress: bool = True
    log: LogFn | None = None


@dataclass
class FitInfo:
    """What training did, for metrics JSON and reports."""

    train_seconds: float = 0.0
    best_epoch: int | None = None
    seconds_to_best: float | None = None
    best_valid_ndcg10: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Scores for every item given users' histories (item indices, oldest first)."""

    name: str
    n_items: int
    fit_info: FitInfo

    @property
    def fitted(self) -> bool:
        """Trained or loaded (``fit`` on a fitted model trains it again)."""
        ...

    def configs(self) -> Mapping[str, Any]:
        """Everything that defines the model before training, by role (``{}`` if nothing)."""
        ...

    def fit(self, data: FitData) -> Self: ...

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(batch, n_items) float scores; higher is better. Seen items are not masked here."""
        ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self: ...


class Scores(Protocol):
    """Scores of a batch of histories, read whole for one history or for a few items across all:
    what explaining needs (the ranking of the full history, and a handful of items under each
    occluded variant), so a model may fuse only those (see ``Hybrid.score_parts``)."""

    def row(self, i: int) -> np.ndarray:
        """(n_items,) float64: every item's score for history I."""
        ...

    def at(self, columns: Sequence[int]) -> np.ndarray:
        """(batch, len(COLUMNS)) float64: these items' scores for every history."""
        ...


@dataclass(frozen=True)
class ScoreMatrix:
    """:class:`Scores` already computed in full."""

    matrix: np.ndarray  # (batch, n_items)

    def row(self, i: int) -> np.ndarray:
        return np.asarray(self.matrix[i], dtype=np.float64)

    def at(self, columns: Sequence[int]) -> np.ndarray:
        return np.asarray(self.matrix[:, list(columns)], dtype=np.float64)


@dataclass(frozen=True)
class InnerProductScores:
    """:class:`Scores` that are inner products of user and item vectors: a few items' columns cost
    a product with those items only, and a full row is computed by FULL (the model's own scoring
    of that history, so that it matches what the model serves to the bit)."""

    users: np.ndarray  # (batch, dim)
    items: np.ndarray  # (n_items, dim)
    full: Callable[[int], np.ndarray]

    def row(self, i: int) -> np.ndarray:
        return np.asarray(self.full(i), dtype=np.float64)

    def at(self, columns: Sequence[int]) -> np.ndarray:
        return (self.users @ self.items[list(columns)].T).astype(np.float64)


def visible(history: np.ndarray) -> np.ndarray:
    """HISTORY without its :data:`HIDDEN` slots: what a model that ignores order reads."""
    history = np.asarray(history)
    return history[history != HIDDEN]


def reads_positions(model: object) -> bool:
    """Whether MODEL reads where each item stands, so hiding an item in place differs from
    removing it (sequence networks and ensembles of them do, and item-kNN and EASE with a recency
    decay below 1; content does not)."""
    return bool(getattr(model, "reads_positions", False))


def recency_weights(length: int, half_life: float) -> np.ndarray:
    """Weights for a history of ``length`` items, newest = 1, halving every ``half_life`` items."""
    age = np.arange(length - 1, -1, -1, dtype=np.float64)
    return np.power(0.5, age / max(half_life, 1e-9))
