"""Full-ranking evaluation and explanation-quality measures."""

from whyrec.eval.metrics import evaluate, mask_seen, metrics_from_ranks, rank_targets, target_ranks

__all__ = ["evaluate", "mask_seen", "metrics_from_ranks", "rank_targets", "target_ranks"]
