"""The command line's ``--set KEY=VALUE``: text typed by the config field it names.

A value is converted by the field's real annotation and then checked by the config itself, so
``--set objective=masked`` on a model without that field, ``--set dim=big`` or ``--set
schedule=linear`` each end in one line that names the setting, before any work.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from whyrec.errors import WhyrecError
from whyrec.models.config import Config, field_types

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """``["id_dropout=0.3", "max_epochs=20"]`` as a dict; a pair without ``=`` is an error."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WhyrecError(f"--set takes KEY=VALUE, not {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def parse_value(kind: Any, text: str) -> Any:
    """TEXT read as a value of the annotation KIND (a ValueError if it cannot be)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return text
    if origin in (typing.Union, type(int | None)):
        if text.lower() == "none" and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return parse_value(options[0], text)
    if origin is tuple:
        return tuple(parse_value(args[0], part.strip()) for part in text.split(",") if part.strip())
    if kind is bool:
        if text.lower() not in (*_TRUE, *_FALSE):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() in _TRUE
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def apply_settings(config: Config, settings: Mapping[str, str]) -> Config:
    """CONFIG with the fields SETTINGS name changed (others ignored), checked by the config."""
    kinds = field_types(type(config))
    changes = {}
    for key, text in settings.items():
        if key not in kinds:
            continue
        try:
            changes[key] = parse_value(kinds[key], text)
        except ValueError:
            raise WhyrecError(f"--set {key}: {text!r} is not a {_describe(kinds[key])}") from None
    if not changes:
        return config
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as error:  # the config's own checks
        raise WhyrecError(f"--set: {error}") from None


def setting_names(configs: Sequence[Config]) -> set[str]:
    return {f.name for config in configs for f in dataclasses.fields(config)}


def _describe(kind: Any) -> str:
    names = {bool: "true or false", int: "whole number", float: "number", str: "text"}
    if typing.get_origin(kind) is tuple:
        return "comma-separated list"
    for option in (kind, *typing.get_args(kind)):
        if option in names:
            return names[option]
    return str(kind)
