"""Full-ranking metrics: every item is a candidate, never sampled negatives. A leaf: it imports
nothing else of whyrec, so models (early stopping), training and explanations can all use it."""

from whyrec.metrics.ranking import (
    CUTOFFS,
    NonFiniteScoreError,
    Ranker,
    Ranks,
    check_finite,
    evaluate,
    mask_seen,
    metrics_from_ranks,
    ndcg_per_user,
    rank_targets,
    target_ranks,
    top_indices,
)

__all__ = [
    "CUTOFFS",
    "NonFiniteScoreError",
    "Ranker",
    "Ranks",
    "check_finite",
    "evaluate",
    "mask_seen",
    "metrics_from_ranks",
    "ndcg_per_user",
    "rank_targets",
    "target_ranks",
    "top_indices",
]
