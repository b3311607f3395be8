"""Access control, security headers, CORS and rate limits of the service."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from sqlalchemy import select

from whyrec.cli import main
from whyrec.events.store import metadata
from whyrec.service import EventStore, ServiceSettings, create_app
from whyrec.service.limits import shared_retry_after
from whyrec.service.server import check_exposure, is_loopback
from whyrec.training.recommender import Recommender

KEY = "test-service-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield store
    store.close()


def make_client(recommender: Recommender, store: EventStore, **settings: object) -> TestClient:
    return TestClient(create_app(recommender, store, ServiceSettings(api_key=KEY, **settings)))  # type: ignore[arg-type]


@pytest.fixture
def client(recommender: Recommender, store: EventStore) -> TestClient:
    return make_client(recommender, store)


def token_for(client: TestClient, user: str, **body: object) -> dict[str, str]:
    response = client.post(f"/api/users/{user}/token", headers=ADMIN, json=body or None)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def user_routes(user: str, item: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/api/users/{user}", None),
        ("GET", f"/api/users/{user}/recommendations", None),
        ("GET", f"/api/users/{user}/recommendations/{item}/explanation", None),
        ("GET", f"/api/users/{user}/interests", None),
        ("GET", f"/api/users/{user}/more-like/{item}", None),
        ("POST", f"/api/users/{user}/events", {"item_id": item, "type": "click"}),
        ("POST", f"/api/users/{user}/ask", {"question": "what are my interests?"}),
        ("DELETE", f"/api/users/{user}/tokens", None),
        ("DELETE", f"/api/users/{user}", None),
    ]


def test_every_user_route_needs_a_credential_covering_the_user(
    client: TestClient, recommender: Recommender, user: str
) -> None:
    other = next(u for u in recommender.histories if u != user)
    item = next(i for i in recommender.items.ids if i not in recommender.histories[user])
    mine = token_for(client, user)
    theirs = token_for(client, other)
    assert client.get("/api/health").status_code == 200  # open
    for method, path, body in user_routes(user, item):
        bare = client.request(method, path, json=body)
        assert bare.status_code == 401, (method, path, bare.text)
        assert bare.headers["www-authenticate"] == "Bearer" and "credential" in bare.json()["detail"]
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code == 401, (method, path)
        foreign = client.request(method, path, json=body, headers=theirs)
        assert foreign.status_code == 403, (method, path, foreign.text)
        assert user in foreign.json()["detail"]
    # the user's own token and the service key both work (forgetting last: it revokes the token)
    for method, path, body in user_routes(user, item)[:-2]:
        assert client.request(method, path, json=body, headers=mine).status_code < 300, (method, path)
        assert client.request(method, path, json=body, headers=ADMIN).status_code < 300, (method, path)
    # admin routes: the service key only
    assert client.get("/api/users", headers=mine).status_code == 403
    assert client.get("/api/users", headers=ADMIN).status_code == 200
    assert client.post(f"/api/users/{user}/token", headers=mine).status_code == 403
    assert client.get("/api/items/search", params={"q": "star"}).status_code == 401
    assert client.get("/api/items/search", params={"q": "star"}, headers=mine).status_code == 200


def test_tokens_are_signed_expiring_revocable_and_never_stored(
    client: TestClient, store: EventStore, user: str
) -> None:
    headers = token_for(client, user)
    token = headers["Authorization"].removeprefix("Bearer ")
    assert client.get(f"/api/users/{user}", headers=headers).status_code == 200
    # nothing in the store holds the token (only a digest of it)
    with store.engine.connect() as conn:
        cells = [
            str(v) for table in metadata.sorted_tables for row in conn.execute(select(table)) for v in row
        ]
    signature = token.rsplit(".", 1)[1]
    assert cells and not any(token in c or signature in c for c in cells)
    # altering any part breaks the signature
    head, tail = token.rsplit(".", 1)
    forged = [f"{head}.{tail[:-1]}{'A' if tail[-1] != 'A' else 'B'}", token.replace(".", ".9", 1)]
    parts = token.split(".")
    parts[2] = str(int(parts[2]) + 10_000_000)  # a later expiry
    forged.append(".".join(parts))
    for bad in forged:
        assert client.get(f"/api/users/{user}", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    # a token made with another service key is not accepted either
    other = TestClient(create_app(client.app.state.live.rec, store, ServiceSettings(api_key="x" * 32)))
    assert other.get(f"/api/users/{user}", headers=headers).status_code == 401
    # expired
    authority = client.app.state.authority
    stale, _ = authority.issue(user, ttl_seconds=-5)
    assert client.get(f"/api/users/{user}", headers={"Authorization": f"Bearer {stale}"}).status_code == 401
    # revoked by the user themself: every token of theirs stops working
    second = token_for(client, user, ttl_seconds=600)
    revoked = client.delete(f"/api/users/{user}/tokens", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"] >= 2
    assert client.get(f"/api/users/{user}", headers=headers).status_code == 401
    assert client.get(f"/api/users/{user}", headers=second).status_code == 401
    assert client.post(f"/api/users/{user}/token", headers=ADMIN, json={"ttl_seconds": 5}).status_code == 422


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    paths = doc["paths"]
    assert "security" not in paths["/api/health"]["get"]
    for path, method in [("/api/users/{user_id}/recommendations", "get"), ("/api/users/{user_id}", "delete"),
                         ("/api/users/{user_id}/events", "post"), ("/api/users/{user_id}/token", "post"),
                         ("/api/users", "get")]:  # fmt: skip
        assert paths[path][method]["security"] == [{"bearer": []}], path
        assert {"401", "403"} <= set(paths[path][method]["responses"]), path


def test_open_service_covers_everyone_and_says_so(
    recommender: Recommender, store: EventStore, user: str
) -> None:
    client = TestClient(create_app(recommender, store, ServiceSettings()))
    assert client.get("/api/health").json()["auth"] == "open"
    assert client.get(f"/api/users/{user}/recommendations").status_code == 200
    assert client.post(f"/api/users/{user}/token").status_code == 409
    page = client.get("/").text
    assert 'id="open-banner"' in page and "Open for local use" in page


def test_serve_refuses_a_network_host_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHYREC_API_KEY", raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", KEY)
    assert main(["serve", "--run", str(tmp_path), "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to serve on 0.0.0.0 without a service key" in err[0]
    monkeypatch.setenv("WHYREC_API_KEY", "short")
    assert main(["serve", "--run", str(tmp_path), "--host", "0.0.0.0"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    assert main(["serve", "--run", str(tmp_path), "--api-key-file", str(tmp_path / "missing")]) == 2
    assert "cannot read --api-key-file" in capsys.readouterr().err


# -- headers and browsers -------------------------------------------------------------------------
def test_security_headers_on_every_response(client: TestClient, user: str) -> None:
    responses = [
        client.get("/"),
        client.get("/api/health"),
        client.get("/static/app.js"),
        client.get("/docs"),
        client.get(f"/api/users/{user}"),  # 401
        client.get("/api/users/nobody-at-all", headers=ADMIN),  # 404
        client.get(f"/api/users/{user}/recommendations", params={"k": 0}, headers=ADMIN),  # 422
    ]
    for response in responses:
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script(client: TestClient) -> None:
    for path in ("/", "/docs"):
        html = client.get(path).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), path
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
        assert "javascript:" not in html


def test_cors_closed_unless_an_origin_is_listed(recommender: Recommender, store: EventStore) -> None:
    preflight = {"Origin": "https://app.example.org", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    closed = make_client(recommender, store)
    answer = closed.options("/api/health", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    assert (
        "access-control-allow-origin"
        not in closed.get("/api/health", headers={"Origin": "https://x.org"}).headers
    )
    opened = make_client(recommender, store, cors_origins=("https://app.example.org",))
    answer = opened.options("/api/health", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "https://app.example.org"
    evil = opened.options("/api/health", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    with pytest.raises(ValueError, match="one by one"):
        ServiceSettings(cors_origins=("*",))


# -- limits ---------------------------------------------------------------------------------------
def test_event_and_ask_rate_limits_are_per_credential(
    recommender: Recommender, store: EventStore, user: str
) -> None:
    client = make_client(recommender, store, events_per_minute=3, asks_per_minute=2)
    other = next(u for u in recommender.histories if u != user)
    mine, theirs = token_for(client, user), token_for(client, other)
    item = recommender.items.ids[0]
    statuses = [client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "click"},
                            headers=mine).status_code for _ in range(4)]  # fmt: skip
    assert statuses == [201, 201, 201, 429]
    limited = client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "click"}, headers=mine)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "at most 3 a minute" in limited.json()["detail"]
    assert store.count(user) == 3  # a refused event is not stored
    # another credential has its own allowance
    ok = client.post(f"/api/users/{other}/events", json={"item_id": item, "type": "click"}, headers=theirs)
    assert ok.status_code == 201
    asks = [client.post(f"/api/users/{user}/ask", json={"question": "what are my interests?"},
                        headers=mine).status_code for _ in range(3)]  # fmt: skip
    assert asks == [200, 200, 429]
    assert (
        client.get(f"/api/users/{user}/recommendations", headers=mine).status_code == 200
    )  # reads not limited


def test_workers_share_rate_limits_through_the_store(
    recommender: Recommender, tmp_path: Path, user: str
) -> None:
    """Two apps on one store file stand for two worker processes: alternate requests of one
    credential get its limit once with shared limits, and once per worker without."""
    item = recommender.items.ids[0]
    body = {"item_id": item, "type": "click"}
    for shared, expected in ((True, [201, 201, 201, 429, 429, 429]), (False, [201] * 6)):
        stores = [EventStore(f"sqlite:///{tmp_path / f'shared-{shared}.db'}") for _ in range(2)]
        workers = [make_client(recommender, s, events_per_minute=3, shared_limits=shared) for s in stores]
        headers = token_for(workers[0], user)
        statuses = [workers[n % 2].post(f"/api/users/{user}/events", json=body, headers=headers).status_code
                    for n in range(6)]  # fmt: skip
        assert statuses == expected, shared
        assert stores[0].count(user) == expected.count(201)
        for s in stores:
            s.close()


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "limit", "seconds"),
    [
        (10, 0, 0.5, 10, 30.0),  # full this minute: wait for the next one, which starts empty
        (10, 0, 0.5, 5, 60.0),  # twice the limit: half of the next minute must pass as well
        (2, 10, 0.2, 5, 30.0),  # the previous minute's 10 must fall to 3: at 70% of this minute
        (2, 10, 0.9, 5, 0.0),  # (an allowed request has nothing to wait for)
    ],
)
def test_shared_retry_after_is_when_the_sliding_estimate_falls_below_the_limit(
    current: int, previous: int, elapsed: float, limit: int, seconds: float
) -> None:
    assert shared_retry_after(current, previous, elapsed, limit) == pytest.approx(seconds)


def test_events_one_user_may_store_per_window_are_capped(
    recommender: Recommender, store: EventStore, user: str
) -> None:
    client = make_client(recommender, store, user_event_cap=2, events_per_minute=0)
    item = recommender.items.ids[0]
    statuses = [client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "click"},
                            headers=ADMIN).status_code for _ in range(3)]  # fmt: skip
    assert statuses == [201, 201, 429]
    assert store.count(user) == 2


# -- the store unavailable ------------------------------------------------------------------------
def test_store_unavailable_gives_503_with_retry_after_then_recovers(
    client: TestClient, store: EventStore, user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine

    working = store.engine
    broken = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'events.db'}")
    monkeypatch.setattr(store, "engine", broken)
    item = client.app.state.live.rec.items.ids[0]
    for response in (
        client.get(f"/api/users/{user}/recommendations", headers=ADMIN),
        client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "like"}, headers=ADMIN),
        client.get(f"/api/users/{user}", headers=ADMIN),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5" and "event store" in response.json()["detail"]
        assert "Traceback" not in response.text
    monkeypatch.setattr(store, "engine", working)
    assert client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "like"},
                       headers=ADMIN).status_code == 201  # fmt: skip
