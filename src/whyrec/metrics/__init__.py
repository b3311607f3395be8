"""Full-ranking metrics: every item is a candidate, never sampled negatives; and measures of the
lists beyond accuracy (diversity, coverage, popularity, calibration). A leaf: it imports nothing
else of whyrec, so models (early stopping), training and explanations can all use it."""

from whyrec.metrics.lists import (
    CALIBRATION_SMOOTHING,
    attribute_distribution,
    attribute_matrix,
    average_popularity,
    calibration_kl,
    catalogue_coverage,
    intra_list_diversity,
    list_ndcg,
)
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
    "CALIBRATION_SMOOTHING",
    "CUTOFFS",
    "NonFiniteScoreError",
    "Ranker",
    "Ranks",
    "attribute_distribution",
    "attribute_matrix",
    "average_popularity",
    "calibration_kl",
    "catalogue_coverage",
    "check_finite",
    "evaluate",
    "intra_list_diversity",
    "list_ndcg",
    "mask_seen",
    "metrics_from_ranks",
    "ndcg_per_user",
    "rank_targets",
    "target_ranks",
    "top_indices",
]
