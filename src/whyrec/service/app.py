"""The FastAPI application factory: dependencies in, an app out; no module-level state."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whyrec.errors import UnknownIdError, WhyrecError
from whyrec.events.store import EventStore, StoreError
from whyrec.service.ask import Answerer
from whyrec.service.auth import Authority
from whyrec.service.headers import SecurityHeaders
from whyrec.service.items import AddItemError, build_items_router
from whyrec.service.limits import Limiter, RateLimitedError, SharedLimiter
from whyrec.service.live import ControlsError, LiveRecommender, NotRankableError
from whyrec.service.routes import build_router
from whyrec.service.search import ItemSearch
from whyrec.service.settings import ServiceSettings
from whyrec.training.recommender import Recommender

log = logging.getLogger("whyrec.service")
STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """
Recommendations that explain themselves, and take feedback at once.

**Feedback** (`POST /api/users/{user_id}/events`) changes the next answer without retraining:
`view`, `click`, `like`, `rate` extend the user's sequence; `not_interested` hides the item and
pushes down items close to it in LM space; `remove` drops a history item (a what-if made
permanent); `mute_interest` / `unmute_interest` (the interest's stable `key` in `value`) hide
or show an interest; the mute holds as the history changes.
The latest event about an item wins.

**Access**: send `Authorization: Bearer <credential>`. The service key covers every user and
the admin routes (user list, tokens); a user token from `POST /api/users/{user_id}/token`
covers that user alone. 401 without a valid credential, 403 with one that does not cover the
user or route. `/api/health` is open. A service started without a key is open to every caller
(loopback only) and says so in `/api/health` (`auth: "open"`).

**Ranking controls** on `GET /api/users/{user_id}/recommendations`: `diversity=0..1` (MMR over
the items' LM vectors), `calibrate=true` (match the attribute mix of the user's history),
`max_per_attribute=N` (0: no cap), `block_items` and `block_attributes` (repeat the parameter or
separate names with commas; `exclude_items` and `exclude_attributes` are the same). They combine
with the service's own: a request may add blocks and choose the knobs, never lift a blocklist of
the service. Each item says whether a control moved it in (`moved_by`) and its rank without the
controls (`plain_rank`); `moved_out` lists the items of the plain top-k that the controls left
out, with the reason.

**Limits**: events and ask are limited per credential per minute, and the events one user may
store per window are capped: 429 with `Retry-After`.

**Users**: a user the run has no history for and who has sent no events gets **404** on
recommendations, explanations, interests and ask. Sending a like (any item event) creates the
user; their recommendations then come from those items alone.

**Errors** are JSON `{"detail": "..."}`: 404 unknown user or item, 409 asking to explain an item
the user has seen, marked not interested or removed (or that the service blocks), 413 a body over
the size limit, 422 a malformed request (a ranking control out of range included), 429 over a
limit, 503 the event store is unavailable (with `Retry-After`), 500 anything else (details only in
the server log).
"""


def create_app(
    recommender: Recommender, store: EventStore, settings: ServiceSettings | None = None
) -> FastAPI:
    settings = settings or ServiceSettings()
    live = LiveRecommender(recommender, store, settings.phraser, settings.profile_cache_size,
                           controls=settings.controls)  # fmt: skip
    search = ItemSearch(recommender, recommender.info.get("encoder"), semantic=settings.semantic_search)
    if settings.warm_search:
        search.warm()
    app = FastAPI(title="whyrec", version=_version(), description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.live = live  # for tests and benchmarks; the routes get their dependencies directly
    authority = Authority(settings.api_key, store, settings.token_ttl_seconds)
    app.state.authority = authority  # read by the access dependencies of every route
    per_minute = {"events": settings.events_per_minute, "ask": settings.asks_per_minute}
    app.state.limiter = SharedLimiter(store, per_minute) if settings.shared_limits else Limiter(per_minute)
    answerer = Answerer(live)
    app.include_router(build_router(live, search, answerer, store, settings, authority))
    app.include_router(build_items_router(live, answerer, settings))
    _add_error_handlers(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    _add_local_docs(app)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    # the last one added runs first: the shield sees every error, the size limit runs inside it
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # closed unless configured: browsers then refuse cross-origin calls
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ErrorShield)
    return app


def _add_local_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the ``swagger-ui-bundle`` package's files: no CDN, works offline."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the page still lists where the schema is
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger_ui_path is None:
            return HTMLResponse(
                "<p>Install swagger-ui-bundle for the docs page; the schema is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return HTMLResponse(DOCS_PAGE)


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whyrec API</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


# -- errors ---------------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    def answer(status: int, retry_after: int | None = None):  # type: ignore[no-untyped-def]
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            wait = getattr(exc, "retry_after", retry_after)
            headers = {"Retry-After": str(wait)} if wait is not None else None
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

        return handler

    app.add_exception_handler(UnknownIdError, answer(404))
    app.add_exception_handler(NotRankableError, answer(409))
    app.add_exception_handler(RateLimitedError, answer(429))
    app.add_exception_handler(StoreError, answer(503, settings.store_retry_after_seconds))
    app.add_exception_handler(WhyrecError, answer(400))
    app.add_exception_handler(AddItemError, answer(422))
    app.add_exception_handler(ControlsError, answer(422))
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
    parts = []
    for e in errors:
        where = ".".join(p for p in e["loc"] if p != "body") or "body"
        parts.append(f"{where}: {e['msg']}")
    return JSONResponse({"detail": "invalid request: " + "; ".join(parts), "errors": errors}, status_code=422)


class ErrorShield:
    """The last line: any exception becomes a JSON 500; the traceback goes to the log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a clean answer; let the server close the connection
                raise
            detail = "internal error: the server could not answer this request (details are in its log)"
            await JSONResponse({"detail": detail}, status_code=500)(scope, receive, send)


class BodySizeLimit:
    """413 for a body over ``max_bytes``, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(scope, receive, send, 400, "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _reply(scope, receive, send, 413, f"request body is larger than {self.max_bytes:,} bytes")


async def _reply(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("whyrec")
    except Exception:
        return "0"
