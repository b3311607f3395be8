"""The HTTP routes: parse, call one operation, convert to a response schema. Nothing else.

No ``from __future__ import annotations`` here: FastAPI reads the parameter annotations at
runtime, and some of them (the k limit) are built inside :func:`build_router`.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from whyrec.events import MAX_ID_LENGTH, EventStore, LiveState
from whyrec.explain.types import Lang
from whyrec.service.ask import Answerer
from whyrec.service.live import LiveRecommender
from whyrec.service.schemas import (
    AskIn,
    AskOut,
    ErrorOut,
    EventAcceptedOut,
    EventIn,
    EventOut,
    ExplanationOut,
    ForgetOut,
    HealthOut,
    HistoryItemOut,
    InterestsOut,
    ItemOut,
    RecommendationsOut,
    RunOut,
    SearchHitOut,
    SearchOut,
    TimelineOut,
    UserOut,
    UsersOut,
    UserSummaryOut,
    explanation_out,
    groups_out,
    interest_out,
    recommendation_out,
    timeline_out,
)
from whyrec.service.search import ItemSearch
from whyrec.service.settings import ServiceSettings

UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="external user id")]
ItemIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="external item id")]
LangQuery = Annotated[Literal["en", "zh"], Query(description="language of the sentences")]
GroupQuery = Annotated[Literal["reason"] | None, Query(description="reason: group the items by their driver")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "unknown user (no run history, no events) or item"}
}


def build_router(live: LiveRecommender, search: ItemSearch, answerer: Answerer, store: EventStore,
                 settings: "ServiceSettings") -> APIRouter:  # fmt: skip
    router = APIRouter(prefix="/api")
    rec, sessions = live.rec, live.sessions
    catalog = rec.catalog
    KQuery = Annotated[int, Query(ge=1, le=settings.max_k, description="how many items")]

    @router.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> HealthOut:
        info = rec.info
        run = RunOut(run_dir=settings.run_dir, dataset=info.get("dataset"), model=rec.model.name,
                     encoder=info.get("encoder"), n_users=len(rec.histories), n_items=rec.n_items,
                     metrics=dict(info.get("metrics") or {}))  # fmt: skip
        return HealthOut(status="ok", run=run, store=store.dialect, search=search.mode)

    @router.get("/users", response_model=UsersOut, tags=["users"])
    def list_users(limit: Annotated[int, Query(ge=1, le=500)] = 30) -> UsersOut:
        """Users to pick from: recently active ones first, then the run's most active."""
        rows = sessions.users(limit)
        return UsersOut(users=[UserSummaryOut(user_id=u, history_length=n, in_run=r) for u, n, r in rows])

    @router.get("/users/{user_id}", response_model=UserOut, responses=NOT_FOUND, tags=["users"])
    def get_user(user_id: UserId) -> UserOut:
        """The user's live state: history (run + events, oldest first), hidden items, muted interests."""
        state = sessions.state(user_id)
        if not state.known:
            sessions.require(user_id)  # raises the 404 with its message
        items = lambda ids: [ItemOut(item_id=i, title=catalog.title(i)) for i in ids]  # noqa: E731
        history = [HistoryItemOut(item_id=i, title=catalog.title(i), source="event" if i in state.from_events
                                  else "run") for i in state.history]  # fmt: skip
        return UserOut(user_id=user_id, in_run=state.in_run, n_events=state.n_events, history=history,
                       not_interested=items(state.avoid), removed=items(state.removed),
                       muted_interests=list(state.muted))  # fmt: skip

    @router.delete("/users/{user_id}", response_model=ForgetOut, tags=["users"])
    def forget_user(user_id: UserId) -> ForgetOut:
        """Forget every stored event and cached profile of the user. The run's own history (its
        training data) stays until the run is retrained. Forgetting an unknown user is not an error."""
        return ForgetOut(user_id=user_id, events_deleted=sessions.forget(user_id))

    @router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut, responses=NOT_FOUND,
                tags=["recommendations"])  # fmt: skip
    def recommendations(user_id: UserId, k: KQuery = 10, explain: bool = False,
                        lang: LangQuery = "en", group: GroupQuery = None) -> RecommendationsOut:  # fmt: skip
        """Top-k from the live history; with ``explain=true`` each item carries its explanation
        (evidence, interest, sentence; the counterfactual is in the single-item endpoint); with
        ``group=reason`` also the items grouped by what drives them, each reason said once."""
        state = sessions.require(user_id)
        if group == "reason":
            return grouped_recommendations(user_id, state, k, lang)
        if explain:
            rows = [recommendation_out(r, catalog.attrs(r.item_id), e)
                    for r, e in live.recommend_explained(state, k, lang)]  # fmt: skip
        else:
            rows = [recommendation_out(r, catalog.attrs(r.item_id)) for r in live.recommend(state, k)]
        return RecommendationsOut(
            user_id=user_id, k=k, history_length=len(state.history), recommendations=rows
        )

    def grouped_recommendations(user_id: str, state: LiveState, k: int, lang: Lang) -> RecommendationsOut:
        pairs, groups = live.recommend_grouped(state, k, lang)
        rows = [recommendation_out(r, catalog.attrs(r.item_id), e) for r, e in pairs]
        return RecommendationsOut(user_id=user_id, k=k, history_length=len(state.history),
                                  recommendations=rows, groups=groups_out(groups))  # fmt: skip

    @router.get("/users/{user_id}/interests/timeline", response_model=TimelineOut, responses=NOT_FOUND,
                tags=["recommendations"])  # fmt: skip
    def interest_timeline(user_id: UserId, windows: Annotated[int, Query(ge=1, le=50)] = 8,
                          lang: LangQuery = "en") -> TimelineOut:  # fmt: skip
        """Each interest's share of the history, window by window (oldest first), with its long-term
        and recent shares."""
        state = sessions.require(user_id)
        return timeline_out(live.timeline(state, windows), len(state.history), lang)

    @router.get("/users/{user_id}/recommendations/{item_id}/explanation", response_model=ExplanationOut,
                responses={**NOT_FOUND, 409: {"model": ErrorOut, "description": "item seen or hidden"}},
                tags=["recommendations"])  # fmt: skip
    def explanation(
        user_id: UserId, item_id: ItemIdPath, lang: LangQuery = "en", k: KQuery = 10
    ) -> ExplanationOut:
        """Why the item is in the top-k (with a verified counterfactual), or why not."""
        live.require_item(item_id)
        return explanation_out(live.explain(sessions.require(user_id), item_id, k, lang))

    @router.get("/users/{user_id}/interests", response_model=InterestsOut, responses=NOT_FOUND,
                tags=["recommendations"])  # fmt: skip
    def interests(user_id: UserId) -> InterestsOut:
        """The interest profile: the history clustered in LM space, weighted by recency. Muted
        interests are listed apart."""
        profile = live.interests(sessions.require(user_id))
        out = [interest_out(i, catalog.titles) for i in profile.interests]
        return InterestsOut(user_id=user_id, interests=[i for i in out if not i.muted],
                            muted=[i for i in out if i.muted])  # fmt: skip

    @router.get("/users/{user_id}/more-like/{item_id}", response_model=RecommendationsOut,
                responses=NOT_FOUND, tags=["recommendations"])  # fmt: skip
    def more_like(user_id: UserId, item_id: ItemIdPath, k: KQuery = 10) -> RecommendationsOut:
        """What the model would recommend next if the user took this item now."""
        state = sessions.state(user_id)
        recs = live.more_like(state if state.known else None, item_id, k)
        rows = [recommendation_out(r, catalog.attrs(r.item_id)) for r in recs]
        return RecommendationsOut(
            user_id=user_id, k=k, history_length=len(state.history), recommendations=rows
        )

    @router.post("/users/{user_id}/events", response_model=EventAcceptedOut, status_code=201,
                 responses={404: {"model": ErrorOut, "description": "unknown item"}, 413: {"model": ErrorOut},
                            422: {"model": ErrorOut}}, tags=["feedback"])  # fmt: skip
    def post_event(user_id: UserId, event: EventIn) -> EventAcceptedOut:
        """Store one event; the next answer reflects it. An unknown user id starts a new user."""
        if event.item_id is not None:
            live.require_item(event.item_id)
        value = event.value.strip() if isinstance(event.value, str) else event.value
        stored = sessions.record(user_id, event.type, event.item_id, value)
        state = sessions.state(user_id)
        return EventAcceptedOut(event=EventOut(**vars(stored)), history_length=len(state.history),
                                n_events=state.n_events)  # fmt: skip

    @router.post("/users/{user_id}/ask", response_model=AskOut, responses=NOT_FOUND, tags=["ask"])
    def ask(user_id: UserId, body: AskIn) -> AskOut:
        """Why X / why not Y / what if I remove Z / what are my interests / more like X, in English
        or Chinese; answered in the question's language. Anything else: what can be asked."""
        return answerer.ask(sessions.require(user_id), body.question, body.k)

    @router.get("/items/search", response_model=SearchOut, tags=["items"])
    def search_items(q: Annotated[str, Query(min_length=1, max_length=200)],
                     k: KQuery = 10) -> SearchOut:  # fmt: skip
        """Items whose text contains every word of ``q``, then the items nearest to it in LM space."""
        hits = search.search(q, k)
        return SearchOut(query=q, mode=search.mode, items=[SearchHitOut(**vars(h)) for h in hits])

    return router
