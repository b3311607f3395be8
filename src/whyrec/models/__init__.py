"""Recommendation models; every one follows the :class:`Scorer` protocol."""

from whyrec.models.base import FitData, FitInfo, Scorer
from whyrec.models.config import Config, ItemEmbeddingConfig, TrainingConfig
from whyrec.models.gru4rec import GRU4Rec, GRU4RecConfig
from whyrec.models.hybrid import Hybrid, HybridConfig
from whyrec.models.sasrec import BERT4Rec, SASRec, SASRecConfig
from whyrec.models.sequence import SequenceModel
from whyrec.models.simple import ContentConfig, ContentModel, ItemKNN, ItemKNNConfig, Popularity

__all__ = [
    "BERT4Rec",
    "Config",
    "ContentConfig",
    "ContentModel",
    "FitData",
    "FitInfo",
    "GRU4Rec",
    "GRU4RecConfig",
    "Hybrid",
    "HybridConfig",
    "ItemEmbeddingConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "Popularity",
    "SASRec",
    "SASRecConfig",
    "Scorer",
    "SequenceModel",
    "TrainingConfig",
]
