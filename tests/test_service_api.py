"""Every HTTP endpoint, and every kind of bad input, through FastAPI's TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from whyrec.service import EventStore, ServiceSettings, StoreError, create_app
from whyrec.training.recommender import Recommender

CJK = re.compile(r"[\u4e00-\u9fff]")
CONTRACT_PATHS = {
    "/api/health": {"get"},
    "/api/users/{user_id}/recommendations": {"get"},
    "/api/users/{user_id}/recommendations/{item_id}/explanation": {"get"},
    "/api/users/{user_id}/interests": {"get"},
    "/api/users/{user_id}/events": {"post"},
    "/api/users/{user_id}/ask": {"post"},
    "/api/items/search": {"get"},
    "/api/users/{user_id}": {"delete"},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield store
    store.close()


@pytest.fixture
def client(recommender: Recommender, store: EventStore) -> TestClient:
    return TestClient(create_app(recommender, store, ServiceSettings(run_dir="tiny-run")))


def top(client: TestClient, user: str, k: int = 10) -> list[dict]:
    response = client.get(f"/api/users/{user}/recommendations", params={"k": k})
    assert response.status_code == 200, response.text
    return response.json()["recommendations"]


# -- service --------------------------------------------------------------------------------------
def test_health_names_the_run(client: TestClient, recommender: Recommender) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["store"] == "sqlite"
    assert body["run"]["model"] == "itemknn" and body["run"]["n_items"] == recommender.n_items
    assert body["run"]["run_dir"] == "tiny-run"


def test_openapi_has_every_contract_endpoint(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # offline: no CDN
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(paths.get(path, {})), path


def test_page_and_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    script = client.get("/static/app.js")
    assert (
        script.status_code == 200
        and ".innerHTML" not in script.text
        and "insertAdjacentHTML" not in script.text
    )
    assert client.get("/static/style.css").status_code == 200


# -- recommendations and explanations -------------------------------------------------------------
def test_recommendations_plain_and_explained(client: TestClient, user: str) -> None:
    recs = top(client, user, k=5)
    assert [r["rank"] for r in recs] == [1, 2, 3, 4, 5] and all(r["explanation"] is None for r in recs)
    body = client.get(f"/api/users/{user}/recommendations", params={"k": 3, "explain": "true"}).json()
    assert body["history_length"] > 0
    for rec in body["recommendations"]:
        explanation = rec["explanation"]
        assert explanation["item_id"] == rec["item_id"] and explanation["recommended"]
        assert explanation["sentence"]["text"] and explanation["counterfactual"] is None
    zh = client.get(
        f"/api/users/{user}/recommendations", params={"k": 2, "explain": True, "lang": "zh"}
    ).json()
    assert all(CJK.search(r["explanation"]["sentence"]["text"]) for r in zh["recommendations"])


@pytest.mark.parametrize("query", [{"k": 0}, {"k": 1000}, {"lang": "fr"}, {"explain": "maybe"}])
def test_recommendation_parameters_are_checked(client: TestClient, user: str, query: dict) -> None:
    response = client.get(f"/api/users/{user}/recommendations", params=query)
    assert response.status_code == 422 and response.json()["detail"].startswith("invalid request")


def test_unknown_user_is_404_everywhere_it_needs_a_history(client: TestClient) -> None:
    for response in (
        client.get("/api/users/nobody-here/recommendations"),
        client.get("/api/users/nobody-here/interests"),
        client.get("/api/users/nobody-here"),
        client.post("/api/users/nobody-here/ask", json={"question": "what are my interests?"}),
    ):
        assert response.status_code == 404
        assert "unknown user 'nobody-here'" in response.json()["detail"]


def test_explanation_why_and_why_not(client: TestClient, recommender: Recommender, user: str) -> None:
    first = top(client, user)[0]["item_id"]
    why = client.get(f"/api/users/{user}/recommendations/{first}/explanation").json()
    assert why["recommended"] and why["rank"] == 1 and why["why_not"] is None
    assert why["counterfactual"] is not None and why["evidence"]
    assert all(e["contribution"] > 0 for e in why["evidence"])
    far = top(client, user, k=60)[-1]["item_id"]
    why_not = client.get(f"/api/users/{user}/recommendations/{far}/explanation", params={"lang": "zh"}).json()
    assert not why_not["recommended"] and why_not["rank"] == 60 and why_not["why_not"]["rank"] == 60
    assert CJK.search(why_not["sentence"]["text"])


def test_explanation_errors(client: TestClient, recommender: Recommender, user: str) -> None:
    missing = client.get(f"/api/users/{user}/recommendations/no-such-item/explanation")
    assert missing.status_code == 404 and "no-such-item" in missing.json()["detail"]
    seen = recommender.histories[user][-1]
    conflict = client.get(f"/api/users/{user}/recommendations/{seen}/explanation")
    assert conflict.status_code == 409 and "history" in conflict.json()["detail"]


def test_interests_and_muting(client: TestClient, user: str) -> None:
    profile = client.get(f"/api/users/{user}/interests").json()
    assert profile["interests"] and profile["muted"] == []
    assert abs(sum(i["share"] for i in profile["interests"]) - 1.0) < 1e-6
    label = profile["interests"][0]["label"]
    muted = client.post(f"/api/users/{user}/events", json={"type": "mute_interest", "value": label})
    assert muted.status_code == 201
    after = client.get(f"/api/users/{user}/interests").json()
    assert label not in [i["label"] for i in after["interests"]] and after["muted"][0]["label"] == label
    client.post(f"/api/users/{user}/events", json={"type": "unmute_interest", "value": label})
    assert label in [i["label"] for i in client.get(f"/api/users/{user}/interests").json()["interests"]]


def test_more_like_this(client: TestClient, recommender: Recommender, user: str) -> None:
    item = recommender.histories[user][0]
    body = client.get(f"/api/users/{user}/more-like/{item}", params={"k": 4}).json()
    ids = [r["item_id"] for r in body["recommendations"]]
    assert len(ids) == 4 and item not in ids and not set(ids) & set(recommender.histories[user])
    assert client.get(f"/api/users/{user}/more-like/nope").status_code == 404
    # a visitor with no history yet can still ask for items like one they found
    assert client.get(f"/api/users/just-browsing/more-like/{item}").status_code == 200


# -- events ---------------------------------------------------------------------------------------
def test_event_is_stored_and_acknowledged(client: TestClient, store: EventStore, user: str) -> None:
    item = top(client, user)[0]["item_id"]
    response = client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "click"})
    assert response.status_code == 201
    body = response.json()
    assert body["event"]["item_id"] == item and body["event"]["type"] == "click" and body["n_events"] == 1
    assert [e.item_id for e in store.events(user)] == [item]
    rated = client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "rate", "value": 4.5})
    assert rated.status_code == 201 and rated.json()["event"]["value"] == 4.5


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"item_id": "x"}, "type"),
        ({"item_id": "x", "type": "purchase"}, "type"),
        ({"type": "like"}, "needs an 'item_id'"),
        ({"item_id": "x", "type": "rate"}, "needs a number"),
        ({"item_id": "x", "type": "like", "colour": "red"}, "colour"),
        ({"type": "mute_interest"}, "label"),
        ({"item_id": "", "type": "like"}, "item_id"),
        ({"item_id": "x" * 500, "type": "like"}, "item_id"),
        ([1, 2, 3], "body"),
    ],
)
def test_malformed_events_are_422_with_a_message(
    client: TestClient, user: str, body: object, fragment: str
) -> None:
    response = client.post(f"/api/users/{user}/events", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_event_that_is_not_json(client: TestClient, user: str) -> None:
    response = client.post(
        f"/api/users/{user}/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "invalid request" in response.json()["detail"]


def test_event_for_unknown_item_is_404(client: TestClient, store: EventStore, user: str) -> None:
    response = client.post(f"/api/users/{user}/events", json={"item_id": "no-such-item", "type": "like"})
    assert response.status_code == 404 and "no-such-item" in response.json()["detail"]
    assert store.count() == 0


def test_oversized_bodies_are_413(client: TestClient, store: EventStore, user: str) -> None:
    big = b'{"item_id": "' + b"x" * 70_000 + b'", "type": "like"}'
    announced = client.post(
        f"/api/users/{user}/events", content=big, headers={"Content-Type": "application/json"}
    )
    assert announced.status_code == 413 and "65,536" in announced.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while streaming
        yield b'{"question": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    streamed = client.post(
        f"/api/users/{user}/ask", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert store.count() == 0


def test_too_long_user_id_is_422(client: TestClient) -> None:
    assert client.get(f"/api/users/{'u' * 200}/recommendations").status_code == 422


# -- users ----------------------------------------------------------------------------------------
def test_user_state_lists_history_sources(client: TestClient, recommender: Recommender, user: str) -> None:
    item = top(client, user)[0]["item_id"]
    client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "like"})
    body = client.get(f"/api/users/{user}").json()
    assert body["in_run"] and body["n_events"] == 1
    assert body["history"][-1] == {
        "item_id": item,
        "title": recommender.catalog.title(item),
        "source": "event",
    }
    assert {h["source"] for h in body["history"][:-1]} == {"run"}


def test_user_list_puts_active_users_first(client: TestClient, recommender: Recommender) -> None:
    item = recommender.items.ids[0]
    client.post("/api/users/brand-new/events", json={"item_id": item, "type": "like"})
    users = client.get("/api/users", params={"limit": 5}).json()["users"]
    assert users[0] == {"user_id": "brand-new", "history_length": 1, "in_run": False}
    assert len(users) == 5 and all(u["in_run"] for u in users[1:])


def test_delete_forgets_events_and_is_idempotent(
    client: TestClient, store: EventStore, recommender: Recommender
) -> None:
    for item in recommender.items.ids[:3]:
        client.post("/api/users/forget-me/events", json={"item_id": item, "type": "like"})
    assert client.get("/api/users/forget-me/recommendations").status_code == 200
    response = client.delete("/api/users/forget-me")
    assert response.status_code == 200 and response.json() == {"user_id": "forget-me", "events_deleted": 3}
    assert store.count("forget-me") == 0
    assert client.get("/api/users/forget-me/recommendations").status_code == 404
    assert client.delete("/api/users/forget-me").json()["events_deleted"] == 0


# -- search ---------------------------------------------------------------------------------------
def test_search_text_matches_then_semantic_neighbours(client: TestClient) -> None:
    body = client.get("/api/items/search", params={"q": "star wars", "k": 8}).json()
    assert body["items"][0]["match"] == "text" and "Star Wars" in body["items"][0]["title"]
    assert len(body["items"]) == 8 and body["items"][-1]["match"] == "semantic"
    nothing_literal = client.get("/api/items/search", params={"q": "zzqx drama"}).json()
    assert nothing_literal["items"] and all(i["match"] == "semantic" for i in nothing_literal["items"])


def test_search_needs_a_query(client: TestClient) -> None:
    assert client.get("/api/items/search").status_code == 422
    assert client.get("/api/items/search", params={"q": ""}).status_code == 422


# -- failures inside ------------------------------------------------------------------------------
def test_unexpected_errors_become_json_500_without_traceback(
    client: TestClient, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    # the operation the recommendations route calls
    monkeypatch.setattr(client.app.state.live, "recommend_listed", explode)  # type: ignore[attr-defined]
    response = client.get(f"/api/users/{user}/recommendations")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert "secret" not in response.text and "Traceback" not in response.text


def test_store_outage_is_503(
    client: TestClient, store: EventStore, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise StoreError("event store read failed: database is locked")

    monkeypatch.setattr(store, "events", down)
    response = client.get(f"/api/users/{user}/recommendations")
    assert response.status_code == 503 and "event store" in response.json()["detail"]
