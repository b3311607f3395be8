"""200 concurrent event POSTs over real HTTP to a running uvicorn: each stored exactly once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from whyrec.service import EventStore, ServiceSettings, create_app  # noqa: E402
from whyrec.service.testing import running_server  # noqa: E402
from whyrec.training.recommender import Recommender  # noqa: E402

N_POSTS = 200


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    elif not (url := os.environ.get("WHYREC_TEST_PG_URL", "")):
        pytest.skip("WHYREC_TEST_PG_URL is not set (source .ci/services.sh to get a PostgreSQL)")
    store = EventStore(url)
    yield store
    store.close()


def test_concurrent_event_posts_are_each_stored_once(recommender: Recommender, store: EventStore) -> None:
    crowd = f"crowd-{uuid.uuid4().hex[:8]}"  # PostgreSQL is shared between test runs
    wanted = [(f"{crowd}-{n % 10}", recommender.items.ids[n]) for n in range(N_POSTS)]
    with (
        running_server(create_app(recommender, store, ServiceSettings(events_per_minute=0))) as base_url,
        httpx.Client(base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=50)) as http,
    ):

        def send(pair: tuple[str, str]) -> tuple[int, int]:
            user, item = pair
            response = http.post(f"/api/users/{user}/events", json={"item_id": item, "type": "click"})
            return response.status_code, response.json()["event"]["event_id"]

        with ThreadPoolExecutor(max_workers=40) as pool:
            answers = list(pool.map(send, wanted))
        # the answers reflect the writes at once, over HTTP too
        history = http.get(f"/api/users/{crowd}-3").json()["history"]

    assert [status for status, _ in answers] == [201] * N_POSTS
    stored = [e for e in store.events() if e.user_id.startswith(crowd)]
    assert len(stored) == N_POSTS
    assert sorted((e.user_id, e.item_id) for e in stored) == sorted(wanted)
    assert sorted(e.event_id for e in stored) == sorted(event_id for _, event_id in answers)
    assert len({e.event_id for e in stored}) == N_POSTS
    assert {h["item_id"] for h in history} == {item for user, item in wanted if user == f"{crowd}-3"}
    for n in range(10):
        store.delete_user(f"{crowd}-{n}")
