"""Typed, JSON-serialisable explanation results. Item IDs are external strings throughout."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Lang = Literal["en", "zh"]


@dataclass(frozen=True)
class Evidence:
    """A history item and how much it moves the explained item's score.

    ``contribution`` = score with the full history − score with this item removed (occlusion on
    the real model); positive means the item pushed the recommendation up.
    """

    item_id: str
    title: str
    contribution: float
    position: int  # 0 = oldest item in the history


@dataclass(frozen=True)
class Interest:
    """One cluster of the user's history in LM space."""

    interest_id: int
    label: str
    keywords: tuple[str, ...]
    share: float  # recency-weighted share of the history
    long_term_share: float  # unweighted share of the whole history
    recent_share: float  # share of the most recent items
    horizon: Literal["recent", "long-term"]
    item_ids: tuple[str, ...]
    muted: bool = False


@dataclass(frozen=True)
class InterestProfile:
    user_id: str | None
    interests: tuple[Interest, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Counterfactual:
    """The smallest set of history items (found greedily, re-scored at every step) whose removal
    takes the item out of the top-k."""

    found: bool
    removed: tuple[str, ...]
    removed_titles: tuple[str, ...]
    new_rank: int | None  # the item's rank after the removal (1-based), verified by re-scoring
    verified: bool
    max_size: int


@dataclass(frozen=True)
class Lift:
    """What would raise an item that is not recommended."""

    kind: Literal["interest", "item"]
    ref: str  # interest label or item id
    title: str
    new_rank: int


@dataclass(frozen=True)
class WhyNot:
    rank: int
    k: int
    score_gap: float  # how far below the k-th item's score it is
    evidence_against: tuple[Evidence, ...]
    best_lift: Lift | None


@dataclass(frozen=True)
class SentenceFacts:
    """Everything a sentence may say about one item, taken from its explanation (names as in the
    catalogue; the sentence translates what it can)."""

    title: str
    rank: int
    k: int
    evidence: tuple[str, ...] = ()  # titles of the strongest evidence items, strongest first
    attributes: tuple[str, ...] = ()  # attributes the item shares with that evidence
    interest: str | None = None  # the label of the interest it serves, if that interest fits it
    counterfactual: tuple[str, ...] | None = None  # titles whose removal takes it out of the top-k
    why_not: WhyNot | None = None
    moved_by: Literal["diversity", "calibration"] | None = None  # a ranking control chose it


@dataclass(frozen=True)
class Sentence:
    text: str
    lang: Lang
    source: Literal["template", "llm"]
    note: str = ""  # why the LLM phrasing was or was not shown
    grounded: bool = True


@dataclass(frozen=True)
class Explanation:
    user_id: str | None
    item_id: str
    title: str
    model: str
    score: float
    rank: int  # 1-based rank in the user's real ranking (seen items excluded)
    k: int
    recommended: bool  # rank <= k
    evidence: tuple[Evidence, ...]  # sorted by contribution, strongest first
    interest: Interest | None  # the interest this item serves
    shared_attributes: tuple[str, ...]
    shared_words: tuple[str, ...]
    counterfactual: Counterfactual | None
    why_not: WhyNot | None
    sentence: Sentence
    template_sentence: str
    evidence_window: int  # how many of the most recent history items were occluded
    grounded_on: tuple[str, ...] = ()  # every name the sentence may mention
    interest_named: bool = False  # the sentence names the interest (only when its label fits the item)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
