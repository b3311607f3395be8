"""What whyrec's item-item models (item-kNN, EASE) share: a history read as one weighted row.

Both score item i for a history as Σ over the distinct items h in it of w_h·M[h, i], with M the
model's item-item matrix (item-kNN's similarities, EASE's B). The weight w_h = decay^age reads
the order of the history, as the time-decayed item-item models of session recommendation do
(Choi et al., "Session-aware Linear Item-Item Models", 2021): age is the number of slots after
h's latest occurrence, so the newest item weighs 1, and decay 1 weighs every item 1. Because the
score is a plain sum, each item's share of it is exact (:func:`contributions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from whyrec.metrics import metrics_from_ranks, rank_targets
from whyrec.models.base import HIDDEN, visible

#: the decays searched on validation by default (1 = every item weighs the same)
DECAYS = (1.0, 0.9, 0.8, 0.7, 0.5)

#: validation users a setting is chosen on: their histories and held-out targets
Validation = tuple[Sequence[np.ndarray], np.ndarray]


def binary_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """(users, items) with 1 where the item is in the user's history (repeats count once)."""
    lengths = [len(h) for h in histories]
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float64), (rows, cols)), shape=(len(histories), n_items)
    )
    matrix.data[:] = 1.0  # duplicates were summed
    return matrix


def recency_matrix(histories: Sequence[np.ndarray], n_items: int, decay: float) -> sp.csr_matrix:
    """(users, items) with decay^age where the item is in the user's history, age counting the
    slots after its latest occurrence (a :data:`HIDDEN` slot keeps its place and weighs nothing);
    with decay 1, :func:`binary_matrix`."""
    if decay == 1.0:
        return binary_matrix([visible(h) for h in histories], n_items)
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    ends = np.repeat(np.cumsum(lengths), lengths)
    ages = ends - 1 - np.arange(len(cols))  # items after each slot in its own history
    shown = cols != HIDDEN
    rows, cols, ages = rows[shown], cols[shown], ages[shown]
    # an item's latest occurrence sets its weight (a csr_matrix would sum the duplicates)
    keyed = rows * n_items + cols
    order = np.lexsort((ages, keyed))  # by (user, item) pair, the smallest age first
    first = np.ones(len(order), dtype=bool)
    first[1:] = keyed[order][1:] != keyed[order][:-1]
    kept = order[first]
    weights = np.power(decay, ages[kept].astype(np.float64))
    return sp.csr_matrix((weights, (rows[kept], cols[kept])), shape=(len(histories), n_items))


def scores(histories: Sequence[np.ndarray], matrix: np.ndarray | sp.spmatrix, decay: float) -> np.ndarray:
    """(B, n_items): each history's weighted row times MATRIX (dense or sparse), as float32."""
    users = recency_matrix(histories, matrix.shape[0], decay).astype(np.float32)
    product = users @ matrix
    return np.asarray(product.todense() if sp.issparse(product) else product, dtype=np.float32)


def contributions(history: np.ndarray, decay: float, column: np.ndarray) -> np.ndarray:
    """Exact share of each position of HISTORY in the score Σ_h w_h·COLUMN[h] (COLUMN: the model
    matrix's column of the item explained). A :data:`HIDDEN` slot contributes 0; an item at several
    positions counts once, with its latest occurrence's weight, shared equally among them."""
    history = np.asarray(history)
    out = np.zeros(len(history))
    shown = history != HIDDEN
    if not shown.any():
        return out
    weights = recency_matrix([history], len(column), decay)
    items, inverse, counts = np.unique(history[shown], return_inverse=True, return_counts=True)
    item_weight = np.asarray(weights[0, items].todense()).ravel()
    out[shown] = (item_weight * np.asarray(column, dtype=np.float64)[items])[inverse] / counts[inverse]
    return out


@dataclass(frozen=True)
class _Weighted:
    """An item-item matrix scored under one decay: what :func:`rank_targets` ranks."""

    matrix: np.ndarray | sp.spmatrix
    decay: float

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[0])

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return scores(histories, self.matrix, self.decay)


def validation_ndcg(matrix: np.ndarray | sp.spmatrix, decay: float, valid: Validation) -> float:
    """NDCG@10 of MATRIX under DECAY on VALID (histories, targets), seen items masked, scored in
    batches so memory stays bounded for large catalogues."""
    ranks, _ = rank_targets(_Weighted(matrix, decay), *valid)
    return metrics_from_ranks(ranks)["NDCG@10"]
