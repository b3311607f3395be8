"""Request and response bodies of the HTTP API. Separate from the domain types on purpose: the
wire format is a contract, the dataclasses inside may change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from whyrec.events import INTEREST_TYPES, MAX_ID_LENGTH, EventType
from whyrec.explain import Explanation, Interest
from whyrec.explain.grouping import ReasonGroup
from whyrec.explain.messages import interest_label
from whyrec.explain.sentences import moved_out_note
from whyrec.explain.timeline import InterestTimeline
from whyrec.service.session import interest_key
from whyrec.training.controls import MovedOut, RankingControls
from whyrec.training.recommender import Recommendation


# -- requests -------------------------------------------------------------------------------------
class EventIn(BaseModel):
    """One piece of feedback. ``item_id`` names the item; for ``mute_interest`` and
    ``unmute_interest`` the interest's stable ``key`` (or, less stable, its label) goes in
    ``value`` instead."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"item_id": "0133093", "type": "like"},
        {"item_id": "0120338", "type": "not_interested"},
        {"item_id": "0133093", "type": "rate", "value": 9},
        {"type": "mute_interest", "value": "item:0133093"},
    ]})  # fmt: skip

    item_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    type: EventType
    value: float | str | None = Field(
        default=None, description="rating for rate; label for (un)mute_interest"
    )

    @model_validator(mode="after")
    def _fits_type(self) -> EventIn:
        if self.type in INTEREST_TYPES:
            if not isinstance(self.value, str) or not self.value.strip():
                raise ValueError(f"{self.type} needs the interest's label as a string in 'value'")
            if len(self.value) > 200:
                raise ValueError("interest label is longer than 200 characters")
        elif self.item_id is None:
            raise ValueError(f"a {self.type} event needs an 'item_id'")
        if self.type == "rate" and not isinstance(self.value, (int, float)):
            raise ValueError("a rate event needs a number in 'value'")
        if (
            self.type not in ("rate", *INTEREST_TYPES)
            and self.value is not None
            and isinstance(self.value, str)
        ):
            raise ValueError(f"a {self.type} event takes no text 'value'")
        return self


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Why did you recommend The Matrix?"}, {"question": "为什么不推荐《Titanic》？"},
        {"question": "What if I remove Gravity?"}, {"question": "What are my interests?"},
    ]})  # fmt: skip

    question: str = Field(min_length=1, max_length=1000)
    k: int = Field(default=10, ge=1, le=100)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(
        default=None, ge=60, le=90 * 86_400, description="lifetime in seconds; default: the service's"
    )


# -- pieces ---------------------------------------------------------------------------------------
class ItemOut(BaseModel):
    item_id: str
    title: str


class HistoryItemOut(ItemOut):
    source: Literal["run", "event"]


class EvidenceOut(BaseModel):
    item_id: str
    title: str
    contribution: float = Field(description="score with the item in the history minus score without it")
    position: int


class InterestOut(BaseModel):
    interest_id: int = Field(description="position in this profile; changes as the history changes")
    key: str = Field(description="stable id: mute with {'type': 'mute_interest', 'value': key}")
    label: str
    keywords: list[str]
    share: float
    long_term_share: float
    recent_share: float
    horizon: Literal["recent", "long-term"]
    item_ids: list[str]
    muted: bool
    examples: list[ItemOut] = Field(default_factory=list, description="the interest's most recent items")


class CounterfactualOut(BaseModel):
    found: bool
    removed: list[str]
    removed_titles: list[str]
    new_rank: int | None
    verified: bool
    max_size: int


class LiftOut(BaseModel):
    kind: Literal["interest", "item"]
    ref: str
    title: str
    new_rank: int


class WhyNotOut(BaseModel):
    rank: int
    k: int
    score_gap: float
    evidence_against: list[EvidenceOut]
    best_lift: LiftOut | None


class SentenceOut(BaseModel):
    text: str
    lang: Literal["en", "zh"]
    source: Literal["template", "llm"]
    note: str
    grounded: bool


class ExplanationOut(BaseModel):
    user_id: str | None
    item_id: str
    title: str
    model: str
    score: float
    rank: int
    k: int
    recommended: bool
    evidence: list[EvidenceOut]
    interest: InterestOut | None
    shared_attributes: list[str]
    shared_words: list[str]
    counterfactual: CounterfactualOut | None
    why_not: WhyNotOut | None
    sentence: SentenceOut
    template_sentence: str
    evidence_window: int
    interest_named: bool = Field(default=False, description="the sentence names the interest")


class RecommendationOut(BaseModel):
    item_id: str
    title: str
    score: float
    rank: int
    attributes: list[str]
    explanation: ExplanationOut | None = None
    plain_rank: int | None = Field(
        default=None, description="under ranking controls: the item's rank without them"
    )
    moved_by: Literal["diversity", "calibration"] | None = Field(
        default=None, description="the ranking control that chose this item over a more relevant one"
    )


class MovedOutOut(BaseModel):
    """An item of the plain top-k that the ranking controls left out of the list."""

    item_id: str
    title: str
    plain_rank: int = Field(description="its rank without the controls")
    reason: Literal["blocked_item", "blocked_attribute", "attribute_cap", "diversity", "calibration"]
    attribute: str | None = Field(description="the blocked attribute, or the one whose cap was reached")
    note: str = Field(description="the reason in words, in the requested language")


class ControlsOut(BaseModel):
    """The ranking controls a list was ranked under: the service's with the request's."""

    diversity: float = Field(description="0: the plain ranking; 1: as varied as possible (MMR)")
    calibrate: bool = Field(description="the list matches the attribute mix of the user's history")
    calibration_weight: float
    max_per_attribute: int | None = Field(description="at most this many items per attribute; null: no cap")
    blocked_items: int = Field(description="how many item ids are blocked")
    blocked_attributes: list[str]


# -- responses ------------------------------------------------------------------------------------
class RunOut(BaseModel):
    run_dir: str | None
    dataset: str | None
    model: str
    encoder: str | None
    n_users: int
    n_items: int
    metrics: dict[str, Any]


class HealthOut(BaseModel):
    status: Literal["ok"]
    run: RunOut
    store: str
    search: str
    auth: Literal["key", "open"] = Field(description="open: no service key, every caller is covered")


class TokenOut(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer TOKEN'; shown once, never stored")
    user_id: str
    expires_at: float = Field(description="unix seconds")


class TokensRevokedOut(BaseModel):
    user_id: str
    revoked: int


class GroupedItemOut(BaseModel):
    item_id: str
    title: str
    rank: int
    specific: str = Field(description="what is specific to this item beside the group's reason")


class ReasonGroupOut(BaseModel):
    kind: Literal["item", "interest", "own"] = Field(
        description="item: a shared evidence item; interest: a shared interest; own: each its own reason"
    )
    ref: str | None = Field(description="the evidence item's id or the interest's label")
    reason: str = Field(description="the shared reason, said once for the group")
    items: list[GroupedItemOut]


class RecommendationsOut(BaseModel):
    user_id: str
    k: int
    history_length: int
    recommendations: list[RecommendationOut]
    groups: list[ReasonGroupOut] | None = Field(
        default=None, description="with group=reason: the recommendations grouped by what drives them"
    )
    controls: ControlsOut | None = Field(
        default=None, description="the ranking controls applied; null when none apply"
    )
    moved_out: list[MovedOutOut] = Field(
        default_factory=list, description="items of the plain top-k that the ranking controls left out"
    )


class TimelineInterestOut(BaseModel):
    interest_id: int
    label: str
    name: str = Field(description="the label in the requested language where a translation is known")
    long_term_share: float
    recent_share: float
    horizon: Literal["recent", "long-term"]


class TimelineWindowOut(BaseModel):
    start: int = Field(description="first history position of the window (0 = oldest item)")
    end: int = Field(description="one past its last history position")
    shares: list[float] = Field(description="each interest's share of the window, in the order of interests")


class TimelineOut(BaseModel):
    user_id: str
    history_length: int
    interests: list[TimelineInterestOut]
    windows: list[TimelineWindowOut]


class InterestsOut(BaseModel):
    user_id: str
    interests: list[InterestOut] = Field(description="visible interests, largest share first")
    muted: list[InterestOut] = Field(description="interests the user muted (hidden from the profile)")


class UserOut(BaseModel):
    user_id: str
    in_run: bool
    n_events: int
    history: list[HistoryItemOut] = Field(description="oldest first")
    not_interested: list[ItemOut]
    removed: list[ItemOut]
    muted_interests: list[str]


class UserSummaryOut(BaseModel):
    user_id: str
    history_length: int
    in_run: bool


class UsersOut(BaseModel):
    users: list[UserSummaryOut]


class EventOut(BaseModel):
    event_id: int
    user_id: str
    item_id: str | None
    type: str
    value: float | str | None
    created_at: float


class EventAcceptedOut(BaseModel):
    event: EventOut
    history_length: int
    n_events: int


class ForgetOut(BaseModel):
    user_id: str
    events_deleted: int


class SearchHitOut(BaseModel):
    item_id: str
    title: str
    attributes: list[str]
    score: float
    match: Literal["text", "semantic"]


class SearchOut(BaseModel):
    query: str
    mode: str
    items: list[SearchHitOut]


class AskOut(BaseModel):
    question: str
    lang: Literal["en", "zh"]
    intent: Literal["why", "why_not", "what_if", "interests", "more_like", "unknown"]
    item: ItemOut | None = None
    answer: str
    explanation: ExplanationOut | None = None
    recommendations: list[RecommendationOut] = Field(default_factory=list)
    interests: list[InterestOut] = Field(default_factory=list)
    can_ask: list[str] = Field(default_factory=list, description="examples of questions that can be asked")


class ErrorOut(BaseModel):
    detail: str


#: the answers of a route that needs a credential (declared in the OpenAPI document)
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no credential, or one that is not valid"},
    403: {"model": ErrorOut, "description": "a credential that does not cover this user or route"},
}


# -- from domain objects --------------------------------------------------------------------------
def explanation_out(explanation: Explanation) -> ExplanationOut:
    data = explanation.to_dict()
    data.pop("extra", None)
    if explanation.interest is not None:
        data["interest"] = {**data["interest"], "key": interest_key(explanation.interest)}
    return ExplanationOut.model_validate(data)


def groups_out(groups: list[ReasonGroup]) -> list[ReasonGroupOut]:
    return [ReasonGroupOut.model_validate(asdict(g)) for g in groups]


def timeline_out(timeline: InterestTimeline, history_length: int, lang: str) -> TimelineOut:
    interests = [TimelineInterestOut(interest_id=i.interest_id, label=i.label,
                                     name=interest_label(i.label, lang) or i.label,
                                     long_term_share=i.long_term_share, recent_share=i.recent_share,
                                     horizon=i.horizon) for i in timeline.interests]  # fmt: skip
    windows = [TimelineWindowOut(start=w.start, end=w.end, shares=[round(x, 4) for x in w.shares])
               for w in timeline.windows]  # fmt: skip
    return TimelineOut(user_id=timeline.user_id or "", history_length=history_length, interests=interests,
                       windows=windows)  # fmt: skip


def interest_out(interest: Interest, titles: dict[str, str], n_examples: int = 3) -> InterestOut:
    examples = [
        ItemOut(item_id=i, title=titles.get(i, i)) for i in list(interest.item_ids)[-n_examples:][::-1]
    ]
    data = {**asdict(interest), "examples": examples, "key": interest_key(interest)}
    return InterestOut.model_validate(data)


def recommendation_out(rec: Recommendation, attributes: tuple[str, ...],
                       explanation: Explanation | None = None) -> RecommendationOut:  # fmt: skip
    return RecommendationOut(
        item_id=rec.item_id, title=rec.title, score=round(rec.score, 6), rank=rec.rank,
        attributes=list(attributes), explanation=explanation_out(explanation) if explanation else None,
        plain_rank=rec.plain_rank, moved_by=rec.moved_by,
    )  # fmt: skip


def controls_out(controls: RankingControls) -> ControlsOut | None:
    if controls.plain:
        return None
    return ControlsOut(diversity=controls.diversity, calibrate=controls.calibrate,
                       calibration_weight=controls.calibration_weight,
                       max_per_attribute=controls.max_per_attribute, blocked_items=len(controls.block_items),
                       blocked_attributes=list(controls.block_attributes))  # fmt: skip


def moved_out_out(moved: tuple[MovedOut, ...], controls: RankingControls, titles: dict[str, str],
                  lang: str) -> list[MovedOutOut]:  # fmt: skip
    return [MovedOutOut(item_id=m.item_id, title=titles.get(m.item_id, m.item_id), plain_rank=m.plain_rank,
                        reason=m.reason, attribute=m.attribute,
                        note=moved_out_note(m, lang, controls.max_per_attribute)) for m in moved]  # fmt: skip
