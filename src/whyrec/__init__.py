"""whyrec: a sequential recommender that explains itself.

from whyrec import load_dataset, leave_one_out, SASRec, Recommender, Explainer
"""

from whyrec.data import (
    Dataset,
    ItemCatalog,
    LoadOptions,
    SequenceSplit,
    Vocabulary,
    leave_one_out,
    load_dataset,
)
from whyrec.errors import DataError, RunError, UnknownIdError, WhyrecError
from whyrec.explain import Explainer, Explanation
from whyrec.models import (
    BERT4Rec,
    ContentModel,
    FitData,
    GRU4Rec,
    Hybrid,
    ItemKNN,
    Popularity,
    SASRec,
    SASRecConfig,
    Scorer,
)
from whyrec.training.recommender import Recommendation, Recommender

__version__ = "0.1.0"

__all__ = [
    "BERT4Rec",
    "ContentModel",
    "DataError",
    "Dataset",
    "Explainer",
    "Explanation",
    "FitData",
    "GRU4Rec",
    "Hybrid",
    "ItemCatalog",
    "ItemKNN",
    "LoadOptions",
    "Popularity",
    "Recommendation",
    "Recommender",
    "RunError",
    "SASRec",
    "SASRecConfig",
    "Scorer",
    "SequenceSplit",
    "UnknownIdError",
    "Vocabulary",
    "WhyrecError",
    "__version__",
    "leave_one_out",
    "load_dataset",
]
