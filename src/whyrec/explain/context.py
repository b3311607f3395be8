"""One history scored once: the base ranking and every occluded variant, in one batched call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from whyrec.explain.types import InterestProfile
from whyrec.models.base import HIDDEN, Scores, reads_positions
from whyrec.training.recommender import Recommender, rank_of

Occlusion = Literal["remove", "mask"]


@dataclass
class ScoringContext:
    """Shared by all the items explained for one history."""

    items: list[str]
    exclude: list[str]
    avoid: list[str]
    raw: np.ndarray  # (n_items,) model scores for the full history
    final: np.ndarray  # (n_items,) what the user sees (seen/excluded at -inf)
    start: int  # the occlusion window is items[start:]
    scores: Scores  # row 0: the full history; row 1 + p: window item p occluded
    profile: InterestProfile | None = None
    drops: dict[int, np.ndarray] = field(default_factory=dict)  # item -> its contributions

    @property
    def window(self) -> list[str]:
        return self.items[self.start :]

    def contributions(self, item_idx: int) -> np.ndarray:
        """The score drop of one item when each window item is occluded, aligned with the window:
        score with the full history - score with that item occluded."""
        self.prefetch([item_idx])
        return self.drops[item_idx]

    def prefetch(self, item_indices: Iterable[int]) -> None:
        """Compute the contributions of these items together (cheaper than one by one)."""
        missing = list(dict.fromkeys(i for i in item_indices if i not in self.drops))
        if missing:
            columns = self.scores.at(missing)  # (1 + window, len(missing))
            for c, item_idx in enumerate(missing):
                self.drops[item_idx] = columns[0, c] - columns[1:, c]


def occluded(indices: np.ndarray, positions: Iterable[int], how: Occlusion, positional: bool) -> np.ndarray:
    """INDICES with the items at POSITIONS occluded: removed, or (``how="mask"`` for a model that
    reads positions) hidden in place so that every other item keeps its position."""
    positions = list(positions)
    if how == "mask" and positional:
        hidden = indices.copy()
        hidden[positions] = HIDDEN
        return hidden
    return np.delete(indices, positions)


def variants(indices: np.ndarray, start: int, how: Occlusion, positional: bool) -> list[np.ndarray]:
    """The batch an explanation scores: the history INDICES, then the history with each of its
    items from START on occluded, one at a time (see :func:`occluded`)."""
    return [indices] + [occluded(indices, [p], how, positional) for p in range(start, len(indices))]


def build_context(
    rec: Recommender,
    items: list[str],
    window: int,
    exclude: Iterable[str] = (),
    avoid: Iterable[str] = (),
    occlusion: Occlusion = "remove",
) -> ScoringContext:
    """Score the history and all its one-item-occluded variants in one batched call."""
    indices = rec.to_indices(items)
    start = max(0, len(indices) - window)
    scores = rec.score_lazily(variants(indices, start, occlusion, reads_positions(rec.model)))
    raw = scores.row(0)
    exclude, avoid = list(exclude), list(avoid)
    final = rec.adjust(raw, items, exclude=exclude, avoid=avoid)
    return ScoringContext(items, exclude, avoid, raw, final, start, scores)


def ranks_under(
    rec: Recommender,
    histories: list[list[str]],
    item_idx: int,
    exclude: Iterable[str] = (),
    avoid: Iterable[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Rank (1-based) and raw score of ``item_idx`` under each history, as the user would see it."""
    exclude, avoid = list(exclude), list(avoid)
    ranks, scores = np.zeros(len(histories), dtype=np.int64), np.zeros(len(histories))
    raw = rec.score_indices([rec.to_indices(h) for h in histories])
    for row, history in enumerate(histories):
        final = rec.adjust(raw[row], history, exclude=exclude, avoid=avoid)
        scores[row] = raw[row, item_idx]
        ranks[row] = rank_of(final, item_idx)
    return ranks, scores
