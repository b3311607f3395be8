"""Training: from a dataset spec to a saved run (the pipeline), the models by name (the registry,
``--set`` settings), serving a run (:class:`Recommender`) and retraining with stored feedback."""

from whyrec.training.recommender import Recommendation, Recommender, rank_of
from whyrec.training.registry import MODELS, build_model, build_models, model_class
from whyrec.training.settings import parse_settings

__all__ = [
    "MODELS",
    "Recommendation",
    "Recommender",
    "build_model",
    "build_models",
    "model_class",
    "parse_settings",
    "rank_of",
]
