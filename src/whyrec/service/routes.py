"""The HTTP routes: parse, call one operation, convert to a response schema. Nothing else.

No ``from __future__ import annotations`` here: FastAPI reads the parameter annotations at
runtime, and some of them (the k limit) are built inside :func:`build_router`.
"""

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query

from whyrec.events import MAX_ID_LENGTH, EventStore
from whyrec.service.ask import Answerer
from whyrec.service.auth import Authority, Credential, credential, require_admin, require_user
from whyrec.service.limits import RateLimitedError, rate_limit
from whyrec.service.live import ControlsError, LiveRecommender
from whyrec.service.schemas import (
    AUTH_RESPONSES,
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
    TokenIn,
    TokenOut,
    TokensRevokedOut,
    UserOut,
    UsersOut,
    UserSummaryOut,
    controls_out,
    explanation_out,
    groups_out,
    interest_out,
    moved_out_out,
    recommendation_out,
    timeline_out,
)
from whyrec.service.search import ItemSearch
from whyrec.service.settings import ServiceSettings
from whyrec.training.controls import RankingControls

UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="external user id")]
ItemIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="external item id")]
LangQuery = Annotated[Literal["en", "zh"], Query(description="language of the sentences")]
GroupQuery = Annotated[Literal["reason"] | None, Query(description="reason: group the items by their driver")]
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "unknown user (no run history, no events) or item"}
}
SEEN: Responses = {409: {"model": ErrorOut, "description": "item seen or hidden"}}
AUTH: Responses = AUTH_RESPONSES
LIMITED: Responses = {429: {"model": ErrorOut, "description": "over a rate limit; see Retry-After"}}
UserCredential = Annotated[Credential, Depends(require_user)]
AdminCredential = Annotated[Credential, Depends(require_admin)]
MAX_BLOCKED = 1_000  # names one request may block, items and attributes each
DEFAULT = "; default: the service's"
DiversityQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=1,
        description=(
            "0..1: 0 the plain ranking, 1 as varied as possible (MMR over the items' LM vectors)" + DEFAULT
        ),
    ),
]
CalibrateQuery = Annotated[
    bool | None,
    Query(description=("true: match the attribute mix of the user's history (Steck 2018)" + DEFAULT)),
]
CapQuery = Annotated[
    int | None,
    Query(
        ge=0,
        le=1_000,
        description=("at most this many items per attribute (genre, category); 0: no cap" + DEFAULT),
    ),
]
BlockItemsQuery = Annotated[
    list[str] | None,
    Query(
        description=(
            "item ids never to show (repeat, or separate with commas); added to the service's blocklist"
        )
    ),
]
BlockAttributesQuery = Annotated[
    list[str] | None,
    Query(description=("attributes whose items are never shown; added to the service's blocklist")),
]
ExcludeItemsQuery = Annotated[list[str] | None, Query(description="the same as block_items")]
ExcludeAttributesQuery = Annotated[list[str] | None, Query(description="the same as block_attributes")]


def _names(what: str, *given: list[str] | None) -> list[str]:
    """Names from repeated query parameters, each possibly comma-separated."""
    names = [n.strip() for values in given for value in values or () for n in value.split(",") if n.strip()]
    if len(names) > MAX_BLOCKED:
        raise ControlsError(f"{what}: at most {MAX_BLOCKED:,} names per request, not {len(names):,}")
    if any(len(n) > MAX_ID_LENGTH for n in names):
        raise ControlsError(f"{what}: a name is longer than {MAX_ID_LENGTH} characters")
    return names


def build_router(live: LiveRecommender, search: ItemSearch, answerer: Answerer, store: EventStore,
                 settings: "ServiceSettings", authority: Authority) -> APIRouter:  # fmt: skip
    router = APIRouter(prefix="/api")
    rec, sessions = live.rec, live.sessions
    catalog = rec.catalog
    KQuery = Annotated[int, Query(ge=1, le=settings.max_k, description="how many items")]

    def request_controls(diversity: DiversityQuery = None, calibrate: CalibrateQuery = None,
                         max_per_attribute: CapQuery = None, block_items: BlockItemsQuery = None,
                         block_attributes: BlockAttributesQuery = None,
                         exclude_items: ExcludeItemsQuery = None,
                         exclude_attributes: ExcludeAttributesQuery = None) -> RankingControls:  # fmt: skip
        """The service's ranking controls with the request's: blocks add up, knobs are chosen."""
        try:
            return live.controls.with_request(
                block_items=_names("block_items", block_items, exclude_items),
                block_attributes=_names("block_attributes", block_attributes, exclude_attributes),
                diversity=diversity,
                calibrate=calibrate,
                max_per_attribute=max_per_attribute,
            )
        except ValueError as error:  # the controls' own checks
            raise ControlsError(f"invalid ranking controls: {error}") from None

    Controls = Annotated[RankingControls, Depends(request_controls)]

    @router.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> HealthOut:
        info = rec.info
        run = RunOut(run_dir=settings.run_dir, dataset=info.get("dataset"), model=rec.model.name,
                     encoder=info.get("encoder"), n_users=len(rec.histories), n_items=rec.n_items,
                     metrics=dict(info.get("metrics") or {}))  # fmt: skip
        return HealthOut(status="ok", run=run, store=store.dialect, search=search.mode,
                         auth="open" if authority.open else "key")  # fmt: skip

    @router.get("/users", response_model=UsersOut, responses=AUTH, tags=["users"])
    def list_users(_: AdminCredential, limit: Annotated[int, Query(ge=1, le=500)] = 30) -> UsersOut:
        """Users to pick from: recently active ones first, then the run's most active."""
        rows = sessions.users(limit)
        return UsersOut(users=[UserSummaryOut(user_id=u, history_length=n, in_run=r) for u, n, r in rows])

    @router.get("/users/{user_id}", response_model=UserOut, responses={**NOT_FOUND, **AUTH}, tags=["users"])
    def get_user(user_id: UserId, _: UserCredential) -> UserOut:
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

    @router.delete("/users/{user_id}", response_model=ForgetOut, responses=AUTH, tags=["users"])
    def forget_user(user_id: UserId, _: UserCredential) -> ForgetOut:
        """Forget the user everywhere: their stored events, tokens and cached profile are deleted,
        and a tombstone (a digest of the id, not the id) hides their history in the trained run
        from every answer and keeps it out of ``whyrec train --run RUN --with-feedback``.
        Forgetting an unknown user is not an error."""
        return ForgetOut(user_id=user_id, events_deleted=sessions.forget(user_id))

    @router.post("/users/{user_id}/token", response_model=TokenOut, status_code=201,
                 responses={**AUTH, 409: {"model": ErrorOut, "description": "the service runs open"}},
                 tags=["access"])  # fmt: skip
    def issue_token(user_id: UserId, _: AdminCredential,
                    body: Annotated[TokenIn | None, Body()] = None) -> TokenOut:  # fmt: skip
        """A token covering this user alone (service key only). It is shown once: the store keeps
        only its digest. It expires after ``ttl_seconds`` and can be revoked."""
        if authority.open:
            raise HTTPException(409, "this service runs open (no service key): it issues no tokens")
        token, expires = authority.issue(user_id, body.ttl_seconds if body else None)
        return TokenOut(token=token, user_id=user_id, expires_at=expires)

    @router.delete("/users/{user_id}/tokens", response_model=TokensRevokedOut, responses=AUTH,
                   tags=["access"])  # fmt: skip
    def revoke_tokens(user_id: UserId, _: UserCredential) -> TokensRevokedOut:
        """Revoke every token of the user (with the service key or one of the user's tokens)."""
        return TokensRevokedOut(user_id=user_id, revoked=authority.revoke(user_id))

    @router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut,
                responses={**NOT_FOUND, **AUTH, 422: {"model": ErrorOut, "description": "a bad parameter"}},
                tags=["recommendations"])  # fmt: skip
    def recommendations(user_id: UserId, _: UserCredential, controls: Controls, k: KQuery = 10,
                        explain: bool = False, lang: LangQuery = "en",
                        group: GroupQuery = None) -> RecommendationsOut:  # fmt: skip
        """Top-k from the live history; with ``explain=true`` each item carries its explanation
        (evidence, interest, sentence; the counterfactual is in the single-item endpoint); with
        ``group=reason`` also the items grouped by what drives them, each reason said once.

        Ranking controls (``diversity``, ``calibrate``, ``max_per_attribute``, ``block_items``,
        ``block_attributes``) combine with the service's; ``moved_out`` lists the items of the
        plain top-k they left out, and each item's ``moved_by`` names the control that chose it."""
        state = sessions.require(user_id)
        groups = None
        if explain or group == "reason":
            pairs, moved = live.explain_listed(state, k, lang, controls)
            rows = [recommendation_out(r, catalog.attrs(r.item_id), e) for r, e in pairs]
            if group == "reason":
                groups = groups_out(live.groups(pairs, lang))
        else:
            recs, moved = live.recommend_listed(state, k, controls)
            rows = [recommendation_out(r, catalog.attrs(r.item_id)) for r in recs]
        return RecommendationsOut(user_id=user_id, k=k, history_length=len(state.history),
                                  recommendations=rows, groups=groups, controls=controls_out(controls),
                                  moved_out=moved_out_out(moved, controls, catalog.titles, lang))  # fmt: skip

    @router.get("/users/{user_id}/interests/timeline", response_model=TimelineOut,
                responses={**NOT_FOUND, **AUTH}, tags=["recommendations"])  # fmt: skip
    def interest_timeline(user_id: UserId, _: UserCredential, windows: Annotated[int, Query(ge=1, le=50)] = 8,
                          lang: LangQuery = "en") -> TimelineOut:  # fmt: skip
        """Each interest's share of the history, window by window (oldest first), with its long-term
        and recent shares."""
        state = sessions.require(user_id)
        return timeline_out(live.timeline(state, windows), len(state.history), lang)

    @router.get("/users/{user_id}/recommendations/{item_id}/explanation", response_model=ExplanationOut,
                responses={**NOT_FOUND, **AUTH, **SEEN},
                tags=["recommendations"])  # fmt: skip
    def explanation(user_id: UserId, item_id: ItemIdPath, _: UserCredential, lang: LangQuery = "en",
                    k: KQuery = 10) -> ExplanationOut:  # fmt: skip
        """Why the item is in the top-k (with a verified counterfactual), or why not."""
        live.require_item(item_id)
        return explanation_out(live.explain(sessions.require(user_id), item_id, k, lang))

    @router.get("/users/{user_id}/interests", response_model=InterestsOut, responses={**NOT_FOUND, **AUTH},
                tags=["recommendations"])  # fmt: skip
    def interests(user_id: UserId, _: UserCredential) -> InterestsOut:
        """The interest profile: the history clustered in LM space, weighted by recency. Muted
        interests are listed apart."""
        profile = live.interests(sessions.require(user_id))
        out = [interest_out(i, catalog.titles) for i in profile.interests]
        return InterestsOut(user_id=user_id, interests=[i for i in out if not i.muted],
                            muted=[i for i in out if i.muted])  # fmt: skip

    @router.get("/users/{user_id}/more-like/{item_id}", response_model=RecommendationsOut,
                responses={**NOT_FOUND, **AUTH}, tags=["recommendations"])  # fmt: skip
    def more_like(user_id: UserId, item_id: ItemIdPath, _: UserCredential,
                  k: KQuery = 10) -> RecommendationsOut:  # fmt: skip
        """What the model would recommend next if the user took this item now."""
        state = sessions.state(user_id)
        recs = live.more_like(state if state.known else None, item_id, k)
        rows = [recommendation_out(r, catalog.attrs(r.item_id)) for r in recs]
        return RecommendationsOut(
            user_id=user_id, k=k, history_length=len(state.history), recommendations=rows
        )

    @router.post("/users/{user_id}/events", response_model=EventAcceptedOut, status_code=201,
                 responses={404: {"model": ErrorOut, "description": "unknown item"}, 413: {"model": ErrorOut},
                            422: {"model": ErrorOut}, **AUTH, **LIMITED}, tags=["feedback"],
                 dependencies=[Depends(rate_limit("events"))])  # fmt: skip
    def post_event(user_id: UserId, event: EventIn, _: UserCredential) -> EventAcceptedOut:
        """Store one event; the next answer reflects it. An unknown user id starts a new user.
        At most ``user_event_cap`` events per user are stored per window (429 beyond)."""
        if event.item_id is not None:
            live.require_item(event.item_id)
        if settings.user_event_cap:
            window = settings.user_event_window_seconds
            if store.count(user_id, since=time.time() - window) >= settings.user_event_cap:
                raise RateLimitedError(f"user {user_id!r} stored {settings.user_event_cap:,} events in "
                                       f"the last {window:,} seconds, the most allowed",
                                       retry_after=60)  # fmt: skip
        value = event.value.strip() if isinstance(event.value, str) else event.value
        stored = sessions.record(user_id, event.type, event.item_id, value)
        state = sessions.state(user_id)
        return EventAcceptedOut(event=EventOut(**vars(stored)), history_length=len(state.history),
                                n_events=state.n_events)  # fmt: skip

    @router.post("/users/{user_id}/ask", response_model=AskOut, responses={**NOT_FOUND, **AUTH, **LIMITED},
                 tags=["ask"], dependencies=[Depends(rate_limit("ask"))])  # fmt: skip
    def ask(user_id: UserId, body: AskIn, _: UserCredential) -> AskOut:
        """Why X / why not Y / what if I remove Z / what are my interests / more like X, in English
        or Chinese; answered in the question's language. Anything else: what can be asked."""
        return answerer.ask(sessions.require(user_id), body.question, body.k)

    @router.get("/items/search", response_model=SearchOut, responses={401: AUTH[401]}, tags=["items"],
                dependencies=[Depends(credential)])  # fmt: skip
    def search_items(q: Annotated[str, Query(min_length=1, max_length=200)],
                     k: KQuery = 10) -> SearchOut:  # fmt: skip
        """Items whose text contains every word of ``q``, then the items nearest to it in LM space."""
        hits = search.search(q, k)
        return SearchOut(query=q, mode=search.mode, items=[SearchHitOut(**vars(h)) for h in hits])

    return router
