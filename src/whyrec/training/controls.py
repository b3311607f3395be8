"""Responsible ranking controls, applied to one user's full score vector: blocklists of items and
of attributes, a cap on items per attribute, diversity (MMR over the items' LM vectors) and
calibration to the user's mix of interests (Steck 2018, "Calibrated Recommendations").

Pure: a score vector and the catalogue's facts in, the final list and what the controls did out.
The greedy re-ranker picks one item at a time from the best ``candidates`` recommendable items,
maximising

    (1 - λ) · [(1 - d) · rel(i) - d · max_{j in list} cos(i, j)]  -  λ · KL(p || q~(list + i))

where ``rel`` is the score min-max normalised over the candidates (so ``d`` means the same for
every model), ``d`` is ``diversity``, ``λ`` is ``calibration_weight`` (0 unless ``calibrate``),
``p`` the attribute mix of the user's history and ``q~ = (1 - α) q + α p`` the smoothed mix of
the list. With ``d = 0`` and no calibration it is the plain ranking, exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from whyrec.errors import WhyrecError
from whyrec.metrics import CALIBRATION_SMOOTHING, calibration_kl, top_indices
from whyrec.models.config import Config, field_types, setting
from whyrec.training.settings import parse_value

#: what moved an item into or up the list
MoveReason = Literal["diversity", "calibration"]
#: why an item of the plain top k is not in the final list
OutReason = Literal["blocked_item", "blocked_attribute", "attribute_cap", "diversity", "calibration"]


@dataclass(frozen=True)
class RankingControls(Config):
    """What a deployment or a request asks of a ranking. The defaults change nothing."""

    block_items: tuple[str, ...] = ()  # item ids never recommended
    block_attributes: tuple[str, ...] = ()  # an item with any of these attributes is never recommended
    diversity: float = setting(0.0, ge=0, le=1)  # 0: plain ranking; 1: as different as possible
    calibrate: bool = False  # match the attribute mix of the user's history
    calibration_weight: float = setting(0.5, ge=0, le=1)  # λ, when calibrate
    calibration_smoothing: float = setting(CALIBRATION_SMOOTHING, gt=0, le=1)  # α
    max_per_attribute: int | None = setting(None, ge=1)  # None: no cap
    # diversity and calibration choose from the best max(candidates, 2k) recommendable items
    candidates: int = setting(100, ge=1)

    def check(self) -> None:
        for name in ("block_items", "block_attributes"):
            if any(not value.strip() for value in getattr(self, name)):
                raise ValueError(f"{name} must not hold an empty name")

    @property
    def reranks(self) -> bool:
        """Diversity or calibration is on: the order itself changes, not only what is left out."""
        return self.diversity > 0 or self.calibrate

    @property
    def plain(self) -> bool:
        """Nothing to do: the plain ranking."""
        blocks = self.block_items or self.block_attributes
        return not (blocks or self.reranks or self.max_per_attribute is not None)

    def blocklists(self) -> RankingControls:
        """These blocklists alone, every knob at its default."""
        return RankingControls(block_items=self.block_items, block_attributes=self.block_attributes)

    def with_request(
        self,
        *,
        block_items: Iterable[str] = (),
        block_attributes: Iterable[str] = (),
        diversity: float | None = None,
        calibrate: bool | None = None,
        max_per_attribute: int | None = None,
    ) -> RankingControls:
        """These controls (a deployment's) combined with a request's: the request adds to the
        blocklists, never lifts one, and sets the knobs it names (None keeps this value;
        ``max_per_attribute=0`` lifts the cap)."""
        changes: dict[str, Any] = {
            "block_items": tuple(dict.fromkeys([*self.block_items, *block_items])),
            "block_attributes": tuple(dict.fromkeys([*self.block_attributes, *block_attributes])),
        }
        if diversity is not None:
            changes["diversity"] = diversity
        if calibrate is not None:
            changes["calibrate"] = calibrate
        if max_per_attribute is not None:
            changes["max_per_attribute"] = max_per_attribute or None
        return dataclasses.replace(self, **changes)

    def label(self) -> str:
        """A short name, as :func:`parse_controls` reads it: ``diversity=0.3,calibrate`` or ``none``."""
        default = RankingControls()
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            if isinstance(value, tuple):
                parts.append(f"{f.name}={'|'.join(value)}")
            elif value is True:
                parts.append(f.name)
            else:
                parts.append(f"{f.name}={value:g}" if isinstance(value, float) else f"{f.name}={value}")
        return ",".join(parts) or "none"


def parse_controls(text: str) -> RankingControls:
    """``diversity=0.3,calibrate,max_per_attribute=3`` (or ``none``) as :class:`RankingControls`:
    comma-separated fields, a bare name means true, lists are ``|``-separated, and
    ``max_per_attribute=0`` means no cap. A mistake raises a WhyrecError naming it."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return RankingControls()
    kinds = field_types(RankingControls)
    values: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = (s.strip() for s in part.partition("="))
        key = key.replace("-", "_")
        if key not in kinds:
            raise WhyrecError(f"unknown ranking control {key!r} in {text!r}; choose from {', '.join(kinds)}")
        if not sep:
            value = "true"
        try:
            if key in ("block_items", "block_attributes"):
                values[key] = tuple(v.strip() for v in value.split("|") if v.strip())
            elif key == "max_per_attribute" and value in ("0", "none"):
                values[key] = None
            else:
                values[key] = parse_value(kinds[key], value)
        except ValueError:
            raise WhyrecError(f"ranking control {key}: {value!r} is not valid") from None
    try:
        return RankingControls(**values)
    except ValueError as error:
        raise WhyrecError(f"ranking controls {text!r}: {error}") from None


def parse_control_settings(text: str) -> dict[str, RankingControls]:
    """``none;diversity=0.3;calibrate`` as settings by label, in order (duplicates once)."""
    settings = [parse_controls(part) for part in text.split(";") if part.strip()]
    if not settings:
        raise WhyrecError("--controls names no setting (e.g. 'none;diversity=0.3;calibrate')")
    return {s.label(): s for s in settings}


class ItemFacts:
    """What the controls read about the catalogue, aligned with the score vectors: each item's id,
    attributes and LM vector (unit-normalised here if it is not already)."""

    def __init__(
        self, item_ids: Sequence[str], attributes: Sequence[Sequence[str]], vectors: np.ndarray
    ) -> None:
        if not len(item_ids) == len(attributes) == len(vectors):
            sizes = f"{len(item_ids)} ids, {len(attributes)} attribute lists, {len(vectors)} vectors"
            raise ValueError(f"item facts do not line up: {sizes}")
        self.item_ids = list(item_ids)
        self.attributes = [tuple(a) for a in attributes]
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if len(vectors) and not np.allclose(norms, 1.0, atol=1e-3):
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        self.vectors = vectors
        self.index = {item_id: idx for idx, item_id in enumerate(self.item_ids)}
        self._by_attribute: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def having(self, attributes: Iterable[str]) -> np.ndarray:
        """Indices of the items with any of ATTRIBUTES."""
        by_attribute = self._by_attribute
        if by_attribute is None:  # built whole, then published: a concurrent request never sees it half-built
            by_attribute = {}
            for idx, attrs in enumerate(self.attributes):
                for a in set(attrs):
                    by_attribute.setdefault(a, []).append(idx)
            self._by_attribute = by_attribute
        found = {idx for a in attributes for idx in by_attribute.get(a, ())}
        return np.array(sorted(found), dtype=np.int64)

    def mix(self, indices: Iterable[int]) -> dict[str, float]:
        """The attribute distribution of these items: each spreads 1 over its attributes (items
        without attributes count for nothing), normalised to sum to 1; empty if none has any."""
        mass: dict[str, float] = {}
        for idx in indices:
            attrs = set(self.attributes[int(idx)])
            for a in attrs:
                mass[a] = mass.get(a, 0.0) + 1.0 / len(attrs)
        total = sum(mass.values())
        return {a: m / total for a, m in sorted(mass.items())} if total else {}


@dataclass(frozen=True)
class Placed:
    """An item of the final list."""

    item_id: str
    score: float
    rank: int  # 1-based, in the final list
    plain_rank: int  # 1-based, in the ranking without the controls
    moved_by: MoveReason | None = None  # chosen over a more relevant item by this control


@dataclass(frozen=True)
class MovedOut:
    """An item of the plain top k that the controls left out of the final list."""

    item_id: str
    score: float
    plain_rank: int
    reason: OutReason
    attribute: str | None = None  # the blocked attribute, or the one whose cap was reached


@dataclass(frozen=True)
class ControlledList:
    items: tuple[Placed, ...]
    moved_out: tuple[MovedOut, ...]


def rerank(
    scores: np.ndarray,
    k: int,
    controls: RankingControls,
    facts: ItemFacts,
    history: Iterable[int] = (),
) -> ControlledList:
    """The top K of SCORES (one per item of FACTS; ``-inf`` = not recommendable) under CONTROLS,
    for a user whose history holds the item indices HISTORY (their attribute mix is the target of
    calibration). Never returns an item with a non-finite score; returns fewer than K items rather
    than fill the list with one the controls rule out."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(facts),):
        raise ValueError(f"scores have shape {scores.shape}, the catalogue {len(facts)} items")
    k = max(0, int(k))
    recommendable = np.where(np.isfinite(scores), scores, -np.inf)
    n_recommendable = int(np.isfinite(recommendable).sum())
    plain = top_indices(recommendable[None, :], min(k, n_recommendable))[0]
    blocked_item = np.zeros(len(facts), dtype=bool)
    blocked_item[[facts.index[i] for i in controls.block_items if i in facts.index]] = True
    blocked_attribute = np.zeros(len(facts), dtype=bool)
    if controls.block_attributes:
        blocked_attribute[facts.having(controls.block_attributes)] = True
    eligible = np.where(blocked_item | blocked_attribute, -np.inf, recommendable)
    greedy = _Greedy(eligible, k, controls, facts, facts.mix(history), set(plain.tolist()))
    greedy.run()
    items = tuple(
        Placed(
            facts.item_ids[idx],
            float(scores[idx]),
            rank + 1,
            _plain_rank(recommendable, idx),
            greedy.moved_by.get(idx),
        )
        for rank, idx in enumerate(greedy.picked)
    )
    picked, moved_out = set(greedy.picked), []
    for position, idx in enumerate(plain.tolist()):
        if idx in picked:
            continue
        attrs = facts.attributes[idx]
        reason: OutReason
        attribute = None
        if blocked_item[idx]:
            reason = "blocked_item"
        elif blocked_attribute[idx]:
            reason, attribute = "blocked_attribute", next(a for a in attrs if a in controls.block_attributes)
        elif (full := greedy.full_attribute(attrs)) is not None:
            reason, attribute = "attribute_cap", full
        else:  # passed over for a less relevant item at some step (see _Greedy.step)
            reason = greedy.passed_over.get(idx, "diversity" if controls.diversity > 0 else "calibration")
        moved_out.append(MovedOut(facts.item_ids[idx], float(scores[idx]), position + 1, reason, attribute))
    return ControlledList(items, tuple(moved_out))


def _plain_rank(scores: np.ndarray, idx: int) -> int:
    """1-based rank by score, ties by the lower index: the order of :func:`top_indices`."""
    own = scores[idx]
    return int((scores > own).sum() + (scores[:idx] == own).sum()) + 1


class _Greedy:
    """One item at a time from a pool of the best eligible items in plain order; the pool grows
    only when the per-attribute cap leaves none of it to pick."""

    def __init__(self, scores: np.ndarray, k: int, controls: RankingControls, facts: ItemFacts,
                 target: dict[str, float], watched: set[int]) -> None:  # fmt: skip
        self.scores, self.k, self.controls, self.facts = scores, k, controls, facts
        self.watched = watched  # the plain top k: whoever passes one over is recorded
        self.n_eligible = int(np.isfinite(scores).sum())
        self.diversity = controls.diversity
        # calibration needs attributes in the history; without them it has nothing to match
        self.weight = controls.calibration_weight if controls.calibrate and target else 0.0
        self.target_names = list(target)
        self.target = np.array([target[a] for a in self.target_names])
        self.picked: list[int] = []
        self.moved_by: dict[int, MoveReason] = {}
        self.passed_over: dict[int, MoveReason] = {}
        self.counts: dict[str, int] = {}  # items per attribute in the list
        self.list_mass = np.zeros(len(self.target_names))  # the list's mass on the target's attributes
        self.list_items = 0.0  # the list's items with attributes
        # per pool position: item, LM vector, attribute mass, has attributes, taken, capped,
        # highest similarity to the list (-inf while the list is empty)
        dim = facts.vectors.shape[1]
        self.pool = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.mass = np.zeros((0, len(self.target_names)))
        self.has, self.similar = np.zeros(0), np.zeros(0)
        self.taken, self.capped = np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
        self._grow(min(self.n_eligible, max(controls.candidates, 2 * k) if controls.reranks else k))
        self.hi = float(scores[self.pool[0]]) if len(self.pool) else 0.0
        self.lo = float(scores[self.pool[-1]]) if len(self.pool) else 0.0

    def _grow(self, size: int) -> None:
        old = len(self.pool)
        self.pool = top_indices(self.scores[None, :], size)[0]  # the old pool is its prefix
        new = self.pool[old:]
        vectors = self.facts.vectors[new]
        column = {a: c for c, a in enumerate(self.target_names)}
        mass = np.zeros((len(new), len(self.target_names)))
        has = np.zeros(len(new))
        for row, idx in enumerate(new):
            attrs = set(self.facts.attributes[idx])
            has[row] = 1.0 if attrs else 0.0
            for a in attrs & column.keys():
                mass[row, column[a]] = 1.0 / len(attrs)
        similar = np.full(len(new), -np.inf)
        if self.picked:
            similar = (vectors @ self.facts.vectors[self.picked].T).max(axis=1)
        capped = [self.full_attribute(self.facts.attributes[idx]) is not None for idx in new]
        self.vectors = np.concatenate([self.vectors, vectors])
        self.mass, self.has = np.concatenate([self.mass, mass]), np.concatenate([self.has, has])
        self.similar = np.concatenate([self.similar, similar])
        self.taken = np.concatenate([self.taken, np.zeros(len(new), dtype=bool)])
        self.capped = np.concatenate([self.capped, np.array(capped, dtype=bool)])

    def full_attribute(self, attrs: Iterable[str]) -> str | None:
        """The first of ATTRS whose cap the list has reached, if any."""
        cap = self.controls.max_per_attribute
        return next((a for a in attrs if cap is not None and self.counts.get(a, 0) >= cap), None)

    def run(self) -> None:
        while len(self.picked) < self.k:
            available = ~self.taken & ~self.capped
            if available.any():
                self.step(available)
            elif len(self.pool) < self.n_eligible:  # the cap left nothing in the pool: look further
                self._grow(min(self.n_eligible, 2 * len(self.pool)))
            else:
                return  # nothing left that the controls allow: a shorter list

    def step(self, available: np.ndarray) -> None:
        span = self.hi - self.lo
        rel = (self.scores[self.pool] - self.lo) / span if span > 0 else np.zeros(len(self.pool))
        d, weight = self.diversity, self.weight
        similar = np.where(np.isfinite(self.similar), self.similar, 0.0)  # empty list: no term
        objective = (1.0 - d) * rel - d * similar
        kl = np.zeros(len(self.pool))
        if weight > 0:
            items = self.list_items + self.has
            mix = np.divide(self.list_mass + self.mass, items[:, None], out=np.zeros_like(self.mass),
                            where=items[:, None] > 0)  # fmt: skip
            kl = calibration_kl(self.target, mix, self.controls.calibration_smoothing)
            objective = (1.0 - weight) * objective - weight * kl
        objective = np.where(available, objective, -np.inf)
        pick = int(np.argmax(objective))  # the first of equals: the more relevant
        top = int(np.argmax(available))  # the most relevant item still allowed
        idx = int(self.pool[pick])
        if pick != top:  # chosen over a more relevant item: by the term that gained more
            gain_diversity = (1.0 - weight) * d * (similar[top] - similar[pick])
            gain_calibration = weight * (kl[top] - kl[pick])
            reason: MoveReason = "calibration" if gain_calibration > gain_diversity else "diversity"
            if len(self.picked) < pick:  # shown above its place among the eligible items: moved up
                self.moved_by[idx] = reason
            for position in np.flatnonzero(available[:pick]):
                passed = int(self.pool[position])
                if passed in self.watched:
                    self.passed_over.setdefault(passed, reason)
        self.picked.append(idx)
        self.taken[pick] = True
        self.similar = np.maximum(self.similar, self.vectors @ self.facts.vectors[idx])
        self.list_mass = self.list_mass + self.mass[pick]
        self.list_items += self.has[pick]
        cap = self.controls.max_per_attribute
        for a in set(self.facts.attributes[idx]):
            self.counts[a] = self.counts.get(a, 0) + 1
            if cap is not None and self.counts[a] == cap:
                self.capped |= np.array([a in self.facts.attributes[i] for i in self.pool], dtype=bool)
