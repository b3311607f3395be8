"""Full-ranking metrics: every item is a candidate, never sampled negatives.

Ties. A list shown to a user is ordered by score, ties by the lower item index
(:func:`top_indices`, which serving uses too). A metric never profits from that order: a target
tied with other items is measured at its *expected* position under a uniformly random tie-break.
With ``h`` items scored strictly higher and ``t`` other items tied with it, the target sits at
each 0-based position ``h .. h + t`` with probability ``1 / (t + 1)``; HR, NDCG and MRR are the
exact averages over those positions, and :attr:`Ranks.expected` is ``h + t / 2``. A model that
gives every item the same score gets HR@10 = 10 / candidates, not 1.

Non-finite scores. ``-inf`` marks an item that is not a candidate (seen, excluded). A model
score of NaN or ``+inf``, or ``-inf`` from the model itself, raises :class:`NonFiniteScoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Ranker(Protocol):
    """Anything that scores every item for histories (every whyrec model does)."""

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...


class NonFiniteScoreError(ValueError):
    """A model produced NaN or infinite scores, so no ranking can be measured."""


CUTOFFS = (10, 20)


@dataclass(frozen=True)
class Ranks:
    """Where each target lands: ``higher`` items scored above it, ``tied`` other items level with it."""

    higher: np.ndarray
    tied: np.ndarray

    @property
    def expected(self) -> np.ndarray:
        """0-based expected rank under a uniformly random tie-break."""
        return self.higher + self.tied / 2.0

    def __len__(self) -> int:
        return len(self.higher)

    def __getitem__(self, rows: Any) -> Ranks:
        return Ranks(self.higher[rows], self.tied[rows])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.expected, dtype=dtype)

    @staticmethod
    def concatenate(parts: Sequence[Ranks]) -> Ranks:
        if not parts:
            return Ranks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return Ranks(np.concatenate([p.higher for p in parts]), np.concatenate([p.tied for p in parts]))


def _as_ranks(ranks: Ranks | np.ndarray) -> Ranks:
    """Plain arrays are exact 0-based ranks without ties."""
    if isinstance(ranks, Ranks):
        return ranks
    ranks = np.asarray(ranks, dtype=np.float64)
    if not np.array_equal(ranks, np.floor(ranks)) or (ranks < 0).any():
        raise ValueError("plain ranks must be whole numbers >= 0; pass Ranks to count ties")
    return Ranks(ranks, np.zeros_like(ranks))


def check_finite(scores: np.ndarray, what: str = "model") -> None:
    """Raise :class:`NonFiniteScoreError` if any score is NaN or infinite."""
    bad = ~np.isfinite(scores)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise NonFiniteScoreError(
            f"the {what} gave {int(bad.sum())} non-finite score(s) (first: row {rows[0]}, item "
            f"{cols[0]}, value {scores[rows[0], cols[0]]}); its ranking cannot be measured"
        )


def mask_seen(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set already-seen items to -inf in place (row i is history i) and return ``scores``."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if len(rows):
        scores[rows, np.concatenate(histories)] = -np.inf
    return scores


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> Ranks:
    """Each row's target against the other items; ``-inf`` entries are masked candidates.

    NaN or ``+inf`` anywhere raises :class:`NonFiniteScoreError`.
    """
    if np.isnan(scores).any() or np.isposinf(scores).any():
        check_finite(np.where(np.isneginf(scores), 0.0, scores), "scores")
    target_scores = scores[np.arange(len(targets)), targets]
    higher = (scores > target_scores[:, None]).sum(axis=1)
    tied = (scores == target_scores[:, None]).sum(axis=1) - 1
    return Ranks(higher, tied)


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best items of each row of a 2-D array, by score, ties by the lower item index."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((len(scores), 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(len(scores))[:, None]
    kth = scores[rows, part].min(axis=1)
    tops = np.empty((len(scores), k), dtype=np.int64)
    for r in range(len(scores)):
        if (scores[r] >= kth[r]).sum() > k:  # a tie crosses the cut: the lower indices win
            tops[r] = np.argsort(-scores[r], kind="stable")[:k]
        else:
            chosen = part[r]
            tops[r] = chosen[np.lexsort((chosen, -scores[r, chosen]))]
    return tops


SCORE_BUDGET = 2**25  # scores held at once while ranking: 256 MB of float64


def rank_targets(
    model: Ranker,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    exclude_seen: bool = True,
    batch_size: int = 512,
    top_k: int = 10,
) -> tuple[Ranks, np.ndarray]:
    """Ranks of the targets and each row's top-``top_k`` item indices (see :func:`top_indices`).

    Raises :class:`NonFiniteScoreError` if the model gives any candidate a non-finite score.
    """
    ranks, tops = [], []
    # a batch's scores are batch x n_items float64: at most SCORE_BUDGET of them at once
    batch_size = max(1, min(batch_size, SCORE_BUDGET // max(getattr(model, "n_items", 1), 1)))
    for start in range(0, len(histories), batch_size):
        batch = list(histories[start : start + batch_size])
        scores = np.asarray(model.score(batch), dtype=np.float64)
        check_finite(scores, getattr(model, "name", "model"))
        if exclude_seen:
            mask_seen(scores, batch)
        ranks.append(target_ranks(scores, targets[start : start + batch_size]))
        tops.append(top_indices(scores, top_k))
    return Ranks.concatenate(ranks), (np.concatenate(tops) if tops else np.zeros((0, top_k), np.int64))


def _expected_gain(ranks: Ranks | np.ndarray, k: int, gain: np.ndarray) -> np.ndarray:
    """Mean of ``gain[p]`` (0 beyond ``k``) over the positions ``higher .. higher + tied``."""
    r = _as_ranks(ranks)
    cumulative = np.concatenate([[0.0], np.cumsum(gain[:k])])  # cumulative[x] = sum of gain[:x]
    low = np.clip(np.asarray(r.higher, dtype=np.float64), 0, k)
    high = np.clip(np.asarray(r.higher, dtype=np.float64) + r.tied + 1, 0, k)
    return (cumulative[high.astype(np.int64)] - cumulative[low.astype(np.int64)]) / (
        np.asarray(r.tied, dtype=np.float64) + 1
    )


def ndcg_per_user(ranks: Ranks | np.ndarray, k: int) -> np.ndarray:
    """Each user's NDCG@k (one relevant item), averaged over random tie-breaks."""
    return _expected_gain(ranks, k, 1.0 / np.log2(np.arange(k) + 2.0))


def metrics_from_ranks(ranks: Ranks | np.ndarray, cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    """HR, NDCG and MRR at each cutoff, each the expectation under a random tie-break."""
    out: dict[str, float] = {}
    for k in cutoffs:
        out[f"HR@{k}"] = float(_expected_gain(ranks, k, np.ones(k)).mean())
        out[f"NDCG@{k}"] = float(ndcg_per_user(ranks, k).mean())
        out[f"MRR@{k}"] = float(_expected_gain(ranks, k, 1.0 / (np.arange(k) + 1.0)).mean())
    return out


def evaluate(
    model: Ranker,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    cutoffs: Sequence[int] = CUTOFFS,
) -> dict[str, float]:
    """HR/NDCG/MRR at each cutoff, catalogue coverage@10 and the standard error of NDCG@10 over
    the given users (to tell two runs apart from chance)."""
    ranks, tops = rank_targets(model, histories, targets, top_k=10)
    out = metrics_from_ranks(ranks, cutoffs)
    out["coverage@10"] = float(len(np.unique(tops)) / n_items)
    per_user = ndcg_per_user(ranks, 10)
    if len(per_user) > 1:
        out["NDCG@10_se"] = float(per_user.std(ddof=1) / np.sqrt(len(per_user)))
    return out
