"""What whyrec's item-item models (item-kNN, EASE) share: a history read as one weighted row.

Both score item i for a history as Σ over its slots p of decay^age(p)·M[h_p, i], with h_p the
item at slot p and M the model's item-item matrix (item-kNN's similarities, EASE's B). The weight
reads the order of the history, as the time-decayed item-item models of session recommendation do
(Choi et al., "Session-aware Linear Item-Item Models", 2021): age(p) is the number of slots after
p, so the newest slot weighs 1, and decay 1 weighs every slot 1. An item seen twice weighs the sum
of its slots' weights: each slot is a term of its own, so hiding one slot lowers the score by
exactly that slot's term, and the share :func:`contributions` reports for a slot is what hiding it
changes. The fit reads each (user, item) pair once (:func:`binary_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from whyrec.metrics import metrics_from_ranks, rank_targets
from whyrec.models.base import HIDDEN

#: the decays searched on validation by default (1 = every item weighs the same)
DECAYS = (1.0, 0.9, 0.8, 0.7, 0.5)

#: validation users a setting is chosen on: their histories and held-out targets
Validation = tuple[Sequence[np.ndarray], np.ndarray]

#: validation users an item-item search scores at most by default (a seeded sample above that)
SEARCH_USERS = 10_000


def search_sample(valid: Validation, n_users: int | None, seed: int = 0) -> Validation:
    """At most N_USERS of VALID's users, drawn without replacement with SEED and kept in order
    (all of them when N_USERS is None or not below their number): what a search or early stopping
    is scored on, so its cost stays bounded however many users there are."""
    histories, targets = valid
    if n_users is None or n_users >= len(targets):
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(targets), n_users, replace=False))
    return [histories[r] for r in rows], np.asarray(targets)[rows]


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
    """(users, items): the sum of decay^age over the item's slots in the user's history, age
    counting the slots after each one (a :data:`HIDDEN` slot keeps its place and weighs nothing).
    Without repeats and with decay 1, :func:`binary_matrix`."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    ends = np.repeat(np.cumsum(lengths), lengths)
    ages = ends - 1 - np.arange(len(cols))  # slots after each slot in its own history
    shown = cols != HIDDEN
    weights = np.power(decay, ages[shown].astype(np.float64))
    # a repeated item's slots are summed by the conversion to CSR
    return sp.csr_matrix((weights, (rows[shown], cols[shown])), shape=(len(histories), n_items))


def scores(histories: Sequence[np.ndarray], matrix: np.ndarray | sp.spmatrix, decay: float) -> np.ndarray:
    """(B, n_items): each history's weighted row times MATRIX (dense or sparse), as float32."""
    users = recency_matrix(histories, matrix.shape[0], decay).astype(np.float32)
    product = users @ matrix
    return np.asarray(product.todense() if sp.issparse(product) else product, dtype=np.float32)


def contributions(history: np.ndarray, decay: float, column: np.ndarray) -> np.ndarray:
    """Exact share of each slot of HISTORY in the score Σ_p decay^age(p)·COLUMN[h_p] (COLUMN: the
    model matrix's column of the item explained): that slot's term, which is also how much hiding
    the slot lowers the score. A :data:`HIDDEN` slot contributes 0."""
    history = np.asarray(history)
    out = np.zeros(len(history))
    shown = history != HIDDEN
    ages = np.arange(len(history))[::-1]
    weights = np.power(decay, ages[shown].astype(np.float64))
    out[shown] = weights * np.asarray(column, dtype=np.float64)[history[shown]]
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
    batches so memory stays bounded for large catalogues (no top-10 lists: only the ranks)."""
    ranks, _ = rank_targets(_Weighted(matrix, decay), *valid, top_k=0)
    return metrics_from_ranks(ranks)["NDCG@10"]
