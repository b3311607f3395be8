"""The command line's model names, in one visible table. Library users import the classes."""

from __future__ import annotations

from typing import Any

from whyrec.errors import WhyrecError
from whyrec.models.base import Scorer
from whyrec.models.hybrid import Hybrid, HybridConfig
from whyrec.models.sequence import BERT4Rec, GRU4Rec, SASRec
from whyrec.models.simple import ContentModel, ItemKNN, Popularity

MODELS: dict[str, type[Any]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "content": ContentModel,
    "sasrec": SASRec,
    "bert4rec": BERT4Rec,
    "gru4rec": GRU4Rec,
    "hybrid": Hybrid,
}


def model_class(name: str) -> type[Any]:
    try:
        return MODELS[name]
    except KeyError:
        raise WhyrecError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}") from None


def build_models(names: list[str]) -> dict[str, Scorer]:
    """Instantiate models by name; a hybrid reuses the SASRec / GRU4Rec / item-kNN / content models
    of the same list (as its seed-0 members and parts) instead of training its own copies."""
    classes = {name: model_class(name) for name in names}
    built: dict[str, Scorer] = {name: cls() for name, cls in classes.items() if cls is not Hybrid}
    if "hybrid" in classes:
        config = HybridConfig()
        built["hybrid"] = Hybrid(
            config,
            sequence=[built[n] for n in config.sequence_models if n in built],
            cf=built.get("itemknn"),  # type: ignore[arg-type]
            content=built.get("content"),  # type: ignore[arg-type]
        )
    return {name: built[name] for name in names}
