"""Forgetting means forgetting (no answer, no store table, no file of the retrained run holds the
user), and interest mutes that survive history changes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from sqlalchemy import select

from whyrec.cli import main
from whyrec.events.store import metadata
from whyrec.service import EventStore, ServiceSettings, create_app, default_db_url
from whyrec.training.recommender import Recommender

KEY = "forget-test-service-key-0123"
ADMIN = {"Authorization": f"Bearer {KEY}"}


def holds(value: Any, user: str) -> bool:
    """The user id anywhere in a JSON value: as a key, a string, or inside a string."""
    if isinstance(value, dict):
        return any(holds(k, user) or holds(v, user) for k, v in value.items())
    if isinstance(value, list):
        return any(holds(v, user) for v in value)
    return isinstance(value, str) and user in value


def store_cells(store: EventStore) -> list[str]:
    with store.engine.connect() as conn:
        return [
            str(v) for table in metadata.sorted_tables for row in conn.execute(select(table)) for v in row
        ]


def test_forgotten_user_is_gone_from_answers_store_and_retrained_run(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    monkeypatch.setenv("WHYREC_CACHE", str(run_dir.parent / "cache"))
    rec = Recommender.load(run)
    # a run user with a long history, under a name no other string of the run can contain
    user = max(rec.histories, key=lambda u: (len(rec.histories[u]), u))
    assert holds(json.loads((run / "histories.json").read_text()), user)  # the control: it is there
    store = EventStore(default_db_url(run))
    client = TestClient(create_app(rec, store, ServiceSettings(api_key=KEY)))
    token = client.post(f"/api/users/{user}/token", headers=ADMIN).json()["token"]
    mine = {"Authorization": f"Bearer {token}"}
    liked = next(i for i in rec.items.ids if i not in rec.histories[user])
    assert (
        client.post(
            f"/api/users/{user}/events", json={"item_id": liked, "type": "like"}, headers=mine
        ).status_code
        == 201
    )
    assert client.get(f"/api/users/{user}/interests", headers=mine).status_code == 200  # a cached profile
    other = next(u for u in rec.histories if u != user)
    client.post(f"/api/users/{other}/events", json={"item_id": liked, "type": "like"}, headers=ADMIN)
    assert any(user == c for c in store_cells(store))

    forgot = client.delete(f"/api/users/{user}", headers=mine)
    assert forgot.status_code == 200 and forgot.json()["events_deleted"] == 1

    # no answer holds the user any more
    assert client.get(f"/api/users/{user}", headers=mine).status_code == 401  # the token is revoked
    item = rec.items.ids[0]
    for path in (f"/api/users/{user}", f"/api/users/{user}/recommendations", f"/api/users/{user}/interests",
                 f"/api/users/{user}/recommendations/{item}/explanation"):  # fmt: skip
        response = client.get(path, headers=ADMIN)
        assert response.status_code == 404, (path, response.text)
    ask = client.post(f"/api/users/{user}/ask", json={"question": "what are my interests?"}, headers=ADMIN)
    assert ask.status_code == 404
    listed = client.get("/api/users", params={"limit": 500}, headers=ADMIN).json()["users"]
    assert user not in [u["user_id"] for u in listed] and other in [u["user_id"] for u in listed]
    more = client.get(f"/api/users/{user}/more-like/{item}", headers=ADMIN).json()
    assert more["history_length"] == 0  # nothing of the old history: as for a stranger
    stranger = [r.item_id for r in rec.recommend(history=[item], k=10, exclude=(item,))]
    assert [r["item_id"] for r in more["recommendations"]] == stranger
    # no table of the store holds the user (the tombstone keeps a digest of the id)
    assert store.is_forgotten(user)
    assert not any(user in c for c in store_cells(store) if len(c) != 64)
    assert user not in store.users() and store.count(user) == 0
    store.close()

    # the retrained run leaves them out: no file holds the user
    assert main(["train", "--run", str(run), "--with-feedback", "--model", "itemknn"]) == 0
    new_run = tmp_path / "run-feedback"
    report = json.loads((new_run / "feedback.json").read_text())
    assert report["forgotten_users"] == 1
    histories = json.loads((new_run / "histories.json").read_text())
    assert other in histories and user not in histories
    for path in new_run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".json":
                assert not holds(json.loads(data), user), path
            assert f'"{user}"'.encode() not in data, path


# -- stable interest ids --------------------------------------------------------------------------
@pytest.fixture
def client(recommender: Recommender, tmp_path: Path) -> Iterator[TestClient]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield TestClient(create_app(recommender, store, ServiceSettings(events_per_minute=0)))
    store.close()


def test_a_muted_interest_stays_muted_as_the_history_changes(
    client: TestClient, recommender: Recommender
) -> None:
    users = sorted(recommender.histories, key=lambda u: (-len(recommender.histories[u]), u))
    user = next(u for u in users if len(client.get(f"/api/users/{u}/interests").json()["interests"]) >= 3)
    profile = client.get(f"/api/users/{user}/interests").json()
    target = profile["interests"][1]
    others_before = {i["key"] for i in profile["interests"]} - {target["key"]}
    anchor = target["key"].removeprefix("item:")
    assert anchor in target["item_ids"]
    response = client.post(
        f"/api/users/{user}/events", json={"type": "mute_interest", "value": target["key"]}
    )
    assert response.status_code == 201
    after = client.get(f"/api/users/{user}/interests").json()
    assert [i["key"] for i in after["muted"]] == [target["key"]]
    assert {i["key"] for i in after["interests"]} == others_before  # no other interest is hidden

    # like more items: the clusters are recomputed, labels move; the same interest stays muted
    seen = set(recommender.histories[user])
    for item in [i for i in recommender.items.ids if i not in seen][:12]:
        ok = client.post(f"/api/users/{user}/events", json={"item_id": item, "type": "like"})
        assert ok.status_code == 201
    changed = client.get(f"/api/users/{user}/interests").json()
    assert len(changed["muted"]) == 1
    muted = changed["muted"][0]
    assert anchor in muted["item_ids"]  # the interest holding the muted one's items
    assert all(anchor not in i["item_ids"] for i in changed["interests"])
    assert changed["interests"], "muting one interest hid all of them"
    # the explanation never names the muted interest
    explained = client.get(f"/api/users/{user}/recommendations", params={"explain": True}).json()
    served = [
        r["explanation"]["interest"] for r in explained["recommendations"] if r["explanation"]["interest"]
    ]
    assert all(s["key"] != muted["key"] or s["muted"] for s in served)
    # unmuting by the key shows it again
    client.post(f"/api/users/{user}/events", json={"type": "unmute_interest", "value": target["key"]})
    assert client.get(f"/api/users/{user}/interests").json()["muted"] == []
