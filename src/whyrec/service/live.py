"""The service's operations on a user's live state: recommend, explain, interests, what-if,
more-like-this. Domain objects in, domain objects out; the routes turn them into schemas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from whyrec.errors import WhyrecError
from whyrec.events.store import EventStore
from whyrec.explain import Explainer, Explanation, InterestProfile, Phraser
from whyrec.explain.grouping import ReasonGroup, group_by_reason
from whyrec.explain.timeline import InterestTimeline, interest_timeline
from whyrec.explain.types import Lang
from whyrec.service.session import LiveState, UserSessions
from whyrec.training.controls import MovedOut, RankingControls
from whyrec.training.recommender import Recommendation, Recommender

Explained = list[tuple[Recommendation, Explanation]]


class NotRankableError(WhyrecError):
    """The item is in the user's history, marked not interested or removed, or blocked by the
    service: it is never ranked."""


class ControlsError(WhyrecError):
    """A request's ranking controls that cannot be applied (answered 422)."""


@dataclass(frozen=True)
class WhatIf:
    removed: tuple[str, ...]
    before: list[Recommendation]
    after: list[Recommendation]

    @property
    def entered(self) -> list[Recommendation]:
        ids = {r.item_id for r in self.before}
        return [r for r in self.after if r.item_id not in ids]

    @property
    def left(self) -> list[Recommendation]:
        ids = {r.item_id for r in self.after}
        return [r for r in self.before if r.item_id not in ids]


class LiveRecommender:
    """A :class:`Recommender` and its :class:`Explainer`, answering from each user's live state.

    ``controls`` are the deployment's ranking controls: every recommended list is ranked under
    them unless a request passes its own (made with :meth:`RankingControls.with_request`, so it
    keeps the deployment's blocklists); "more like this" keeps their blocklists alone."""

    def __init__(self, recommender: Recommender, store: EventStore, phraser: Phraser | None = None,
                 cache_size: int = 1024, controls: RankingControls | None = None) -> None:  # fmt: skip
        self.rec = recommender
        self.controls = controls or RankingControls()
        self._blocked: tuple[int, tuple[str, ...]] | None = None  # (catalogue size, blocked ids)
        self.explainer = Explainer(recommender, phraser=phraser)
        self.use_llm = phraser is not None
        self.sessions = UserSessions(recommender, store, self.explainer, cache_size=cache_size)

    # -- reading ----------------------------------------------------------------------------------
    def require_item(self, item_id: str) -> str:
        self.rec.item_index(item_id)  # raises UnknownIdError with a clear message
        return item_id

    def blocked_ids(self) -> tuple[str, ...]:
        """Every item the deployment's blocklists rule out (read again when the catalogue grows)."""
        controls, facts = self.controls, self.rec.item_facts()
        if not controls.block_items and not controls.block_attributes:
            return ()
        cached = self._blocked
        if cached is None or cached[0] != len(facts):
            having = facts.having(controls.block_attributes)
            ids = {*controls.block_items, *(facts.item_ids[i] for i in having)}
            cached = (len(facts), tuple(sorted(ids)))
            self._blocked = cached
        return cached[1]

    def blocked(self, item_id: str) -> bool:
        """The deployment's blocklists rule the item out of every list."""
        controls = self.controls
        if item_id in controls.block_items:
            return True
        return bool(set(controls.block_attributes) & set(self.rec.catalog.attrs(item_id)))

    def recommend(
        self, state: LiveState, k: int, controls: RankingControls | None = None
    ) -> list[Recommendation]:
        return self.recommend_listed(state, k, controls)[0]

    def recommend_listed(
        self, state: LiveState, k: int, controls: RankingControls | None = None
    ) -> tuple[list[Recommendation], tuple[MovedOut, ...]]:
        """Top-k under CONTROLS (default: the deployment's), and the items of the plain top-k
        that the controls left out."""
        controls = controls or self.controls
        history = list(state.history)
        if controls.plain:
            return self.rec.recommend(history=history, k=k, exclude=state.removed, avoid=state.avoid), ()
        return self.rec.recommend_controlled(history=history, k=k, exclude=state.removed, avoid=state.avoid,
                                             controls=controls)  # fmt: skip

    def recommend_explained(
        self, state: LiveState, k: int, lang: Lang, controls: RankingControls | None = None
    ) -> Explained:
        """Top-k with a short explanation each, from one batched scoring of the history and its
        occluded variants (no counterfactual: that one is per item, on demand)."""
        return self.explain_listed(state, k, lang, controls)[0]

    def explain_listed(
        self, state: LiveState, k: int, lang: Lang, controls: RankingControls | None = None
    ) -> tuple[Explained, tuple[MovedOut, ...]]:
        """:meth:`recommend_explained`, and the items the controls left out of the list."""
        return self.explainer.explain_list(
            state.user_id, history=list(state.history), k=k, lang=lang, exclude=state.removed,
            avoid=state.avoid, profile=self.sessions.profile(state), controls=controls or self.controls,
        )  # fmt: skip

    def recommend_grouped(
        self, state: LiveState, k: int, lang: Lang, controls: RankingControls | None = None
    ) -> tuple[Explained, list[ReasonGroup]]:
        """Top-k explained, and grouped by what drives it (see :func:`group_by_reason`)."""
        pairs = self.recommend_explained(state, k, lang, controls)
        return pairs, self.groups(pairs, lang)

    def groups(self, pairs: Explained, lang: Lang) -> list[ReasonGroup]:
        return group_by_reason([e for _, e in pairs], self.rec.catalog, lang)

    def timeline(self, state: LiveState, windows: int) -> InterestTimeline:
        return interest_timeline(self.sessions.profile(state), state.history, windows)

    def explain(self, state: LiveState, item_id: str, k: int, lang: Lang) -> Explanation:
        """Why (with a verified counterfactual) or, outside the top-k, why not."""
        self.require_item(item_id)
        if item_id in state.history:
            raise NotRankableError(
                f"item {item_id!r} is in user {state.user_id!r}'s history; seen items are not ranked"
            )
        if item_id in state.avoid or item_id in state.removed:
            what = "marked not interested" if item_id in state.avoid else "removed"
            raise NotRankableError(f"item {item_id!r} was {what} by user {state.user_id!r}; it is not ranked")
        if self.blocked(item_id):
            raise NotRankableError(f"item {item_id!r} is blocked by this service; it is never recommended")
        return self._explain(state, item_id, k, lang, self.sessions.profile(state), counterfactual=True)

    def interests(self, state: LiveState) -> InterestProfile:
        return self.sessions.profile(state)

    def what_if(self, state: LiveState, remove: Sequence[str], k: int) -> WhatIf:
        for item in remove:
            self.require_item(item)
        before = self.recommend(state, k)
        after = self.explainer.what_if(state.user_id, remove=remove, history=list(state.history), k=k,
                                       exclude=state.removed, avoid=state.avoid,
                                       controls=self.controls)  # fmt: skip
        return WhatIf(tuple(remove), before, after)

    def more_like(self, state: LiveState | None, item_id: str, k: int) -> list[Recommendation]:
        """What the model would recommend right after the user took ``item_id``: the sequence
        model's own notion of "more like this", personalised by the rest of the history."""
        self.require_item(item_id)
        history = [h for h in (state.history if state else ()) if h != item_id] + [item_id]
        exclude = (*state.removed, item_id) if state else (item_id,)
        avoid = state.avoid if state else ()
        controls = self.controls.blocklists()  # the deployment's knobs are for the user's own list
        return self.rec.recommend(history=history, k=k, exclude=exclude, avoid=avoid, controls=controls)

    # -- parts ------------------------------------------------------------------------------------
    def _explain(self, state: LiveState, item_id: str, k: int, lang: Lang, profile: InterestProfile,
                 counterfactual: bool) -> Explanation:  # fmt: skip
        # ranked among what the user can be shown: the deployment's blocked items never are
        return self.explainer.explain(
            item_id, user_id=state.user_id, history=list(state.history), k=k, lang=lang,
            exclude=(*state.removed, *self.blocked_ids()), avoid=state.avoid, counterfactual=counterfactual,
            use_llm=self.use_llm, profile=profile,
        )  # fmt: skip
