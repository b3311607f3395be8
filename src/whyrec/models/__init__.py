"""Recommendation models; every one follows the :class:`Scorer` protocol."""

from whyrec.models.base import FitData, FitInfo, Scorer
from whyrec.models.hybrid import Hybrid, HybridConfig
from whyrec.models.registry import MODELS, build_models, model_class
from whyrec.models.sequence import BERT4Rec, GRU4Rec, GRU4RecConfig, SASRec, SASRecConfig
from whyrec.models.simple import ContentConfig, ContentModel, ItemKNN, ItemKNNConfig, Popularity

__all__ = [
    "MODELS",
    "BERT4Rec",
    "ContentConfig",
    "ContentModel",
    "FitData",
    "FitInfo",
    "GRU4Rec",
    "GRU4RecConfig",
    "Hybrid",
    "HybridConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "Popularity",
    "SASRec",
    "SASRecConfig",
    "Scorer",
    "build_models",
    "model_class",
]
