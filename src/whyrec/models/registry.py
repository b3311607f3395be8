"""The command line's model names, in one visible table. Library users import the classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

from whyrec.errors import WhyrecError
from whyrec.models.base import Scorer
from whyrec.models.hybrid import Hybrid
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


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """``["id_dropout=0.3", "max_epochs=20"]`` (the command line's ``--set``) as a dict."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WhyrecError(f"--set takes KEY=VALUE, not {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _typed(name: str, kind: str, value: str) -> Any:
    """VALUE converted to a config field's declared type (configs use postponed annotations)."""
    kind = kind.replace(" ", "")
    optional = kind.endswith("|None")
    kind = kind.removesuffix("|None")
    if optional and value.lower() == "none":
        return None
    try:
        if kind == "bool":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise WhyrecError(f"--set {name}: {value!r} is not of type {kind}") from None
    if kind == "str" or kind.startswith("Literal"):
        return value
    raise WhyrecError(f"--set {name}: a {kind} cannot be set from the command line")


def configured(cls: type[Any], settings: Mapping[str, str]) -> Any:
    """A model of CLS with its default config changed by the SETTINGS that name its fields."""
    model = cls()
    config = getattr(model, "config", None)
    if not settings or config is None or not is_dataclass(config):
        return model
    kinds = {f.name: str(f.type) for f in fields(config)}
    changes = {k: _typed(k, kinds[k], v) for k, v in settings.items() if k in kinds}
    if not changes:
        return model
    try:
        return cls(replace(config, **changes))  # type: ignore[type-var]
    except ValueError as error:  # the config's own checks
        raise WhyrecError(f"--set: {error}") from None


def build_models(names: list[str], settings: Mapping[str, str] | None = None) -> dict[str, Scorer]:
    """Instantiate models by name; a hybrid reuses the SASRec / GRU4Rec / item-kNN / content models
    of the same list (as its seed-0 members and parts) instead of training its own copies.

    SETTINGS (``--set KEY=VALUE``) change the config field KEY of every model that has one (for
    a hybrid, also of its sequence members); a KEY that no chosen model has is an error.
    """
    settings = dict(settings or {})
    classes = {name: model_class(name) for name in names}
    built: dict[str, Scorer] = {
        name: configured(cls, settings) for name, cls in classes.items() if cls is not Hybrid
    }
    if "hybrid" in classes:
        config = configured(Hybrid, settings).config
        members = [built.get(n) or configured(model_class(n), settings) for n in config.sequence_models]
        built["hybrid"] = Hybrid(
            config,
            sequence=members,
            cf=built.get("itemknn") or configured(ItemKNN, settings),  # type: ignore[arg-type]
            content=built.get("content") or configured(ContentModel, settings),  # type: ignore[arg-type]
        )
    everything = list(built.values())
    if isinstance(built.get("hybrid"), Hybrid):
        everything += list(built["hybrid"].parts().values())  # type: ignore[attr-defined]
    configs = [getattr(model, "config", None) for model in everything]
    known = {f.name for config in configs if is_dataclass(config) for f in fields(config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise WhyrecError(
            f"--set {unknown[0]}: no chosen model ({', '.join(names)}) has this setting; "
            f"theirs: {', '.join(sorted(known)) or 'none'}"
        )
    return {name: built[name] for name in names}
