"""Full-ranking metrics: every item is a candidate, never sampled negatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Ranker(Protocol):
    """Anything that scores every item for histories (every whyrec model does)."""

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...


CUTOFFS = (10, 20)


def mask_seen(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set already-seen items to -inf in place (row i is history i) and return ``scores``."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if len(rows):
        scores[rows, np.concatenate(histories)] = -np.inf
    return scores


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target: the number of items scored strictly higher."""
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def rank_targets(
    model: Ranker,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    exclude_seen: bool = True,
    batch_size: int = 512,
    top_k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the targets and each row's top-``top_k`` item indices."""
    ranks, tops = [], []
    for start in range(0, len(histories), batch_size):
        batch = list(histories[start : start + batch_size])
        scores = np.asarray(model.score(batch), dtype=np.float64)
        if exclude_seen:
            mask_seen(scores, batch)
        ranks.append(target_ranks(scores, targets[start : start + batch_size]))
        tops.append(np.argpartition(-scores, top_k, axis=1)[:, :top_k])
    return np.concatenate(ranks), np.concatenate(tops)


def ndcg_per_user(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each user's NDCG@k from 0-based target ranks (one relevant item)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2), 0.0)


def metrics_from_ranks(ranks: np.ndarray, cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in cutoffs:
        hit = ranks < k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float(ndcg_per_user(ranks, k).mean())
        out[f"MRR@{k}"] = float((hit / (ranks + 1)).mean())
    return out


def evaluate(
    model: Ranker,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    cutoffs: Sequence[int] = CUTOFFS,
) -> dict[str, float]:
    """HR/NDCG/MRR at each cutoff and catalogue coverage@10 over the given users."""
    ranks, tops = rank_targets(model, histories, targets, top_k=10)
    out = metrics_from_ranks(ranks, cutoffs)
    out["coverage@10"] = float(len(np.unique(tops)) / n_items)
    return out
