"""Training: from a dataset spec to a saved run (the pipeline), the models by name (the registry,
``--set`` settings), serving a run (:class:`Recommender`, with :class:`RankingControls`) and
retraining with stored feedback."""

from whyrec.training.controls import (
    ControlledList,
    ItemFacts,
    MovedOut,
    Placed,
    RankingControls,
    parse_control_settings,
    parse_controls,
    rerank,
)
from whyrec.training.recommender import Recommendation, Recommender, rank_of
from whyrec.training.registry import MODELS, build_model, build_models, model_class
from whyrec.training.settings import parse_settings

__all__ = [
    "MODELS",
    "ControlledList",
    "ItemFacts",
    "MovedOut",
    "Placed",
    "RankingControls",
    "Recommendation",
    "Recommender",
    "build_model",
    "build_models",
    "model_class",
    "parse_control_settings",
    "parse_controls",
    "parse_settings",
    "rank_of",
    "rerank",
]
