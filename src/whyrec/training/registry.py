"""The command line's model names, in one visible table, and building models from names and
``--set`` settings. Library users construct the classes directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from whyrec.errors import WhyrecError
from whyrec.models import (
    BERT4Rec,
    ContentModel,
    GRU4Rec,
    Hybrid,
    HybridConfig,
    ItemKNN,
    Popularity,
    SASRec,
    Scorer,
)
from whyrec.models.ease import EASE
from whyrec.models.hybrid import MEMBERS
from whyrec.models.sequence import SequenceModel
from whyrec.training.settings import apply_settings, setting_names

MODELS: dict[str, type[Any]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
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


def build_model(name: str, settings: Mapping[str, str] | None = None) -> Scorer:
    """An untrained model of the NAME class, each of its configs changed by the SETTINGS that name
    its fields (a hybrid's members, item-kNN and content parts too)."""
    settings = settings or {}
    cls = model_class(name)
    configs = {role: apply_settings(config, settings) for role, config in cls().configs().items()}
    if cls is not Hybrid:
        try:
            return cls(**configs)  # type: ignore[no-any-return]
        except ValueError as error:  # checks across configs
            raise WhyrecError(f"--set: {error}") from None
    config = configs["config"]
    assert isinstance(config, HybridConfig)
    prototypes = [build_model(member, settings) for member in config.sequence_models]
    return Hybrid(
        config,
        prototypes=[p for p in prototypes if isinstance(p, SequenceModel)],
        cf=build_model("itemknn", settings),  # type: ignore[arg-type]
        content=build_model("content", settings),  # type: ignore[arg-type]
        ease=build_model("ease", settings),  # type: ignore[arg-type]
    )


def build_models(names: Sequence[str], settings: Mapping[str, str] | None = None) -> dict[str, Scorer]:
    """Untrained models by name, each its own instance. SETTINGS (``--set KEY=VALUE``) change the
    config field KEY of every model that has one; a KEY that no chosen model has is an error."""
    settings = dict(settings or {})
    built = {name: build_model(name, settings) for name in names}
    everything: list[Scorer] = list(built.values())
    for model in built.values():
        if isinstance(model, Hybrid):
            everything += list(model.parts().values())
    known = setting_names([c for model in everything for c in model.configs().values()])
    unknown = sorted(set(settings) - known)
    if unknown:
        raise WhyrecError(
            f"--set {unknown[0]}: no chosen model ({', '.join(names)}) has this setting; "
            f"theirs: {', '.join(sorted(known)) or 'none'}"
        )
    return built


__all__ = ["MEMBERS", "MODELS", "build_model", "build_models", "model_class"]
