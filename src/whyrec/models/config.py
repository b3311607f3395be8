"""Configs that check themselves, and the settings shared by every sequence model.

A config is a frozen dataclass deriving from :class:`Config`. On construction every field is
checked against its annotation (``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``X | None``, ``tuple[X, ...]``) and against the bounds given with :func:`setting`, so a bad
value fails where it is written, with one line that names the field, never later in training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Self


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None) -> Any:  # fmt: skip
    """A config field with bounds: ``dim: int = setting(64, ge=1)``."""
    given = (("ge", ge), ("gt", gt), ("le", le), ("lt", lt))
    bounds = {name: value for name, value in given if value is not None}
    if isinstance(default, list | dict | set):
        raise TypeError("config defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata={"bounds": bounds})


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of a config class."""
    if cls not in _FIELD_TYPES:
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _FIELD_TYPES[cls]


def check_value(name: str, kind: Any, value: Any) -> Any:
    """VALUE if it fits the annotation KIND (ints are accepted for floats and returned as floats),
    else a ValueError naming the field."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, args))}, not {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return check_value(name, option, value)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0])
    if origin is tuple:
        if not isinstance(value, tuple | list):
            raise ValueError(f"{name} must be a tuple, not {value!r}")
        return tuple(check_value(name, args[0], v) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, not {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, not {value!r}")
        return value
    return value


def _check_bounds(name: str, value: Any, bounds: dict[str, float]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None or isinstance(v, str):
            continue
        for op, limit in bounds.items():
            ok = {"ge": v >= limit, "gt": v > limit, "le": v <= limit, "lt": v < limit}[op]
            if not ok:
                word = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}[op]
                raise ValueError(f"{name} must be {word} {limit:g}, not {v!r}")


@dataclass(frozen=True)
class Config:
    """Base of every config: checks each field on construction (see the module docstring)."""

    def __post_init__(self) -> None:
        kinds = field_types(type(self))
        for f in dataclasses.fields(self):
            value = check_value(f.name, kinds[f.name], getattr(self, f.name))
            _check_bounds(f.name, value, f.metadata.get("bounds", {}))
            object.__setattr__(self, f.name, value)  # e.g. an int given for a float, a list for a tuple
        self.check()

    def check(self) -> None:
        """Checks across fields; subclasses override."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """A config from saved values; an unknown key is an error (a different version wrote it)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field {unknown[0]!r}")
        return cls(**values)


@dataclass(frozen=True)
class TrainingConfig(Config):
    """How a sequence model is trained: batches, optimiser, schedule, early stopping, seed."""

    batch_size: int = setting(128, ge=1)
    lr: float = setting(5e-3, gt=0)
    weight_decay: float = setting(0.0, ge=0)
    max_epochs: int = setting(15, ge=1)
    patience: int = setting(10, ge=1)  # epochs without a better validation NDCG@10
    # early stopping reads this many validation users, drawn once with the seed (None: all of
    # them); on a large log a few thousand are enough and spare most of each epoch's scoring
    valid_users: int | None = setting(None, ge=1)
    # None: non-overlapping windows of max_len cover each history
    window_stride: int | None = setting(None, ge=1)
    # "cosine": the learning rate falls from lr to 0 along a half cosine over max_epochs
    schedule: Literal["constant", "cosine"] = "cosine"
    seed: int = setting(0, ge=0)
    # above this many items in the softmax, train with a sampled softmax (models/losses.py): the
    # batch's distinct targets plus sampled_negatives uniform items, logQ-corrected. The full
    # softmax's logits take targets x items x 4 bytes: 6,400 targets (128 windows of 50) x 50,000
    # items is 1.3 GB. 0 forces the sampled softmax on
    sampled_softmax_above: int = setting(50_000, ge=0)
    sampled_negatives: int = setting(1024, ge=1)
    # the share of each training target taken from a recency-weighted EASE teacher's soft targets
    # over the catalogue (models/teacher.py), the teacher fitted on the training split first and
    # discarded after; 0 trains on the next item alone. Causal objective and full softmax only
    distill: float = setting(0.0, ge=0, lt=1)
    distill_sharpness: float = setting(1.0, gt=0)  # s in softmax(s·z), z the standardised scores
    # where the net trains (it scores on the CPU once trained)
    device: Literal["cpu", "cuda"] = "cpu"


@dataclass(frozen=True)
class ItemEmbeddingConfig(Config):
    """How an item is represented: a learned ID embedding plus a learned projection of its text."""

    use_text: bool = True  # add the projected LM vector to each item's ID embedding
    # False: text alone (no ID embedding), so any item with text can be ranked, trained or not
    use_ids: bool = True
    # how the frozen LM vector is mapped into the model: "linear" (a learned projection) or
    # "whitening" (UniSRec's parametric whitening, (x - b) W, learned with the sequence model)
    text_adaptor: Literal["linear", "whitening"] = "linear"
    # whitening: more than 1 mixes that many whitening experts through a learned gate (UniSRec's MoE)
    experts: int = setting(1, ge=1, le=16)
    # share of items shown by text alone in a training step (cold start): 0.3 lifted held-out
    # items on Scientific and its validation NDCG@10 a little, but lowered ml-100k's, so 0
    id_dropout: float = setting(0.0, ge=0, lt=1)
    # False: items never seen in training are left out of the training softmax, as items that
    # arrive after training would be, instead of being pushed down as negatives at every step.
    # On Scientific with 5% of the items held out of training (bench/cold_start.py): the same
    # validation NDCG@10, and those items' median rank about 430 instead of 3,700 of 4,385
    unseen_negatives: bool = False
    # k > 0: at inference an item never seen in training borrows the ID embeddings of the k seen
    # items with the closest text (0: it has the shared "unknown ID" vector and its text). k = 3
    # helped cold items into the top 10 on Scientific but not on ml-100k, so it is off by default
    cold_neighbours: int = setting(0, ge=0)

    def check(self) -> None:
        if not self.use_text and (self.id_dropout > 0 or self.cold_neighbours > 0):
            raise ValueError(
                "id_dropout and cold_neighbours need use_text=true (a cold item has only its text)"
            )
        if not self.use_ids and not self.use_text:
            raise ValueError("use_ids=false needs use_text=true (an item needs an ID or its text)")
        if not self.use_ids and (self.id_dropout > 0 or self.cold_neighbours > 0):
            raise ValueError("id_dropout and cold_neighbours act on ID embeddings: they need use_ids=true")
        if self.experts > 1 and self.text_adaptor != "whitening":
            raise ValueError("experts > 1 needs text_adaptor=whitening")


@dataclass(frozen=True)
class ArchitectureConfig(Config):
    """What every sequence architecture has: width, the window it reads, dropout."""

    dim: int = setting(64, ge=1)
    max_len: int = setting(50, ge=2)
    dropout: float = setting(0.2, ge=0, lt=1)
    # a wide item-to-item part beside the network (nets.ItemItem), trained with it: for
    # catalogues up to ITEM_ITEM_MAX_ITEMS items, with the causal objective and the full softmax
    item_item: bool = False
    item_item_decay: float = setting(0.0, ge=0)  # AdamW weight decay of that part alone


#: the largest catalogue the wide item-to-item part accepts: its weight has n_items² floats
ITEM_ITEM_MAX_ITEMS = 12_000
