"""The event store, against SQLite always and PostgreSQL when WHYREC_TEST_PG_URL is set."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy")

from whyrec.events.store import EventStore, StoreError, default_db_url, redact_url

PG_URL = os.environ.get("WHYREC_TEST_PG_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[EventStore]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        if not PG_URL:
            pytest.skip("WHYREC_TEST_PG_URL is not set (source .ci/services.sh to get a PostgreSQL)")
        url = PG_URL
    store = EventStore(url)
    yield store
    store.close()


@pytest.fixture
def user(store: EventStore) -> Iterator[str]:
    """A fresh user id per test (tests share one PostgreSQL database), forgotten afterwards."""
    user_id = f"test-{uuid.uuid4().hex[:12]}"
    yield user_id
    for suffix in ("", "-b", "-c"):
        store.delete_user(user_id + suffix)


def test_events_come_back_in_arrival_order_with_their_values(store: EventStore, user: str) -> None:
    store.add(user, "like", "i1")
    store.add(user, "rate", "i2", value=8.5)
    store.add(user, "mute_interest", value="Drama & War")
    store.add(user, "not_interested", "i3")
    events = store.events(user)
    assert [(e.type, e.item_id, e.value) for e in events] == [
        ("like", "i1", None), ("rate", "i2", 8.5), ("mute_interest", None, "Drama & War"),
        ("not_interested", "i3", None),
    ]  # fmt: skip
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)
    assert all(e.user_id == user and e.created_at > 0 for e in events)
    assert store.count(user) == 4


def test_users_are_separate_and_listed_most_recent_first(store: EventStore, user: str) -> None:
    store.add(user, "like", "i1")
    store.add(user + "-b", "like", "i2")
    store.add(user + "-c", "like", "i3")
    store.add(user, "click", "i4")
    mine = [u for u in store.users() if u.startswith(user)]
    assert mine == [user, user + "-c", user + "-b"]
    assert [e.item_id for e in store.events(user + "-b")] == ["i2"]


def test_delete_user_forgets_only_that_user(store: EventStore, user: str) -> None:
    store.add(user, "like", "i1")
    store.add(user, "like", "i2")
    store.add(user + "-b", "like", "i3")
    assert store.delete_user(user) == 2
    assert store.events(user) == []
    assert store.count(user + "-b") == 1
    assert store.delete_user(user) == 0


def test_unknown_event_type_is_refused(store: EventStore, user: str) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        store.add(user, "purchase", "i1")


def test_concurrent_writers_lose_nothing(store: EventStore, user: str) -> None:
    def write(n: int) -> None:
        for j in range(10):
            store.add(user, "click", f"i{n}-{j}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = [e.item_id for e in store.events(user)]
    assert len(items) == 120 and len(set(items)) == 120


def test_sqlite_default_is_a_wal_file_in_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = default_db_url(tmp_path / "run")
    assert url.endswith("/run/events.db")
    store = EventStore(url)
    store.add("u", "like", "i")
    store.close()
    with sqlite3.connect(tmp_path / "run" / "events.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_works_across_threads() -> None:
    store = EventStore("sqlite://")
    thread = threading.Thread(target=store.add, args=("u", "like", "i"))
    thread.start()
    thread.join()
    assert store.count() == 1


def test_bad_urls_are_one_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="cannot use event store URL"):
        EventStore("nosuchdb://x")
    with pytest.raises(StoreError) as caught:
        EventStore("postgresql+psycopg://someone:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cret" not in str(caught.value)
    assert redact_url("postgresql://me:pw@host/db") == "postgresql://me:***@host/db"


def test_two_workers_counting_one_credential_never_pass_more_than_the_limit(
    store: EventStore, user: str
) -> None:
    """Two store instances (as two worker processes have) count the same credential from 8
    threads at once: exactly ``limit`` requests pass, whatever the interleaving."""
    other = EventStore(store.url)
    key, window, limit = f"{user}-key", 29_000_000, 7
    passed: list[bool] = []

    def hit(which: EventStore) -> None:
        for _ in range(5):
            passed.append(which.count_request("events", key, window, lambda current, _: current < limit)[2])

    threads = [threading.Thread(target=hit, args=(store if n % 2 else other,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert len(passed) == 40 and sum(passed) == limit
    # the next minute sees this one as its previous window; a refused request was not counted
    assert store.count_request("events", key, window + 1, lambda current, previous: True)[:2] == (0, limit)
