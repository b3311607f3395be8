"""Full-ranking metrics: every item is a candidate, never sampled negatives. A leaf: it imports
nothing else of whyrec, so models (early stopping), training and explanations can all use it."""

from whyrec.metrics.ranking import (
    CUTOFFS,
    Ranker,
    evaluate,
    mask_seen,
    metrics_from_ranks,
    ndcg_per_user,
    rank_targets,
    target_ranks,
)

__all__ = [
    "CUTOFFS",
    "Ranker",
    "evaluate",
    "mask_seen",
    "metrics_from_ranks",
    "ndcg_per_user",
    "rank_targets",
    "target_ranks",
]
