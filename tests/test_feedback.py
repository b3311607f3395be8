"""Feedback acts at once (no retraining), and `whyrec train --run RUN --with-feedback` folds it in."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from whyrec.cli import main
from whyrec.data import Dataset, ItemCatalog
from whyrec.data.dataset import clean
from whyrec.service import EventStore, create_app, default_db_url
from whyrec.training.feedback import fold_events_into
from whyrec.training.recommender import Recommender


@pytest.fixture(scope="module")
def recommender(run_dir: Path) -> Recommender:
    return Recommender.load(run_dir)


@pytest.fixture
def client(recommender: Recommender, tmp_path: Path) -> Iterator[TestClient]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield TestClient(create_app(recommender, store))
    store.close()


@pytest.fixture(scope="module")
def user(recommender: Recommender) -> str:
    users = sorted(recommender.histories, key=lambda u: (len(recommender.histories[u]), u))
    return next(u for u in users if len(recommender.histories[u]) >= 20)


def recs(client: TestClient, user: str, k: int = 10) -> list[str]:
    response = client.get(f"/api/users/{user}/recommendations", params={"k": k})
    assert response.status_code == 200, response.text
    return [r["item_id"] for r in response.json()["recommendations"]]


def post(client: TestClient, user: str, item_id: str | None, type: str, value: object = None) -> None:
    body = (
        {"item_id": item_id, "type": type}
        if value is None
        else {"item_id": item_id, "type": type, "value": value}
    )
    response = client.post(f"/api/users/{user}/events", json=body)
    assert response.status_code == 201, response.text


# -- at once, without retraining ------------------------------------------------------------------
def test_likes_extend_the_sequence_and_change_the_next_answer(
    client: TestClient, recommender: Recommender, user: str
) -> None:
    before = recs(client, user)
    liked = recs(client, user, k=100)[-3:]  # items the model did not think of
    for item in liked:
        post(client, user, item, "like")
    after = recs(client, user)
    assert after != before and not set(after) & set(liked)
    assert after == [r.item_id for r in recommender.recommend(history=[*recommender.histories[user], *liked])]
    # the explanation is computed from the new history: the liked items can be its evidence
    why = client.get(f"/api/users/{user}/recommendations/{after[0]}/explanation").json()
    assert why["evidence_window"] >= min(50, len(recommender.histories[user]) + 3)


def test_not_interested_replaces_the_card(client: TestClient, user: str) -> None:
    before = recs(client, user)
    post(client, user, before[0], "not_interested")
    after = recs(client, user)
    assert before[0] not in after and len(after) == len(before)
    assert after[:-1] != before[1:] or after[-1] not in before  # something new came in


def test_remove_reranks_like_the_what_if(client: TestClient, recommender: Recommender, user: str) -> None:
    victim = recommender.histories[user][-1]
    expected = client.post(f"/api/users/{user}/ask", json={"question": f"what if I remove {victim}"}).json()
    post(client, user, victim, "remove")
    assert recs(client, user) == [r["item_id"] for r in expected["recommendations"]]
    history = [h["item_id"] for h in client.get(f"/api/users/{user}").json()["history"]]
    assert victim not in history


def test_mute_hides_the_interest_from_profile_and_sentences(client: TestClient, user: str) -> None:
    interests = client.get(f"/api/users/{user}/interests").json()["interests"]
    label = interests[0]["label"]
    post(client, user, None, "mute_interest", label)
    assert label not in [i["label"] for i in client.get(f"/api/users/{user}/interests").json()["interests"]]
    explained = client.get(f"/api/users/{user}/recommendations", params={"explain": True}).json()
    assert all(f"“{label}”" not in r["explanation"]["sentence"]["text"] for r in explained["recommendations"])


def test_new_user_with_a_few_likes_gets_recommendations(client: TestClient, recommender: Recommender) -> None:
    assert client.get("/api/users/newcomer/recommendations").status_code == 404
    found = client.get("/api/items/search", params={"q": "star wars", "k": 3}).json()["items"]
    for item in found:
        post(client, "newcomer", item["item_id"], "like")
    mine = recs(client, "newcomer")
    assert len(mine) == 10 and not {i["item_id"] for i in found} & set(mine)
    assert mine == [r.item_id for r in recommender.recommend(history=[i["item_id"] for i in found])]
    explained = client.get("/api/users/newcomer/recommendations", params={"k": 2, "explain": True}).json()
    assert explained["recommendations"][0]["explanation"]["sentence"]["text"]


# -- retraining -----------------------------------------------------------------------------------
def test_fold_events_into_a_dataset() -> None:
    raw = pd.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "b", "c", "a"],
                        "timestamp": [1, 2, 3, 1]})  # fmt: skip
    frame, report = clean(raw)
    dataset = Dataset("toy", frame, ItemCatalog(titles={}), report)
    store = EventStore("sqlite://")
    store.add("u", "not_interested", "b", created_at=10)
    store.add("u", "like", "d-unknown", created_at=11)  # not in the data: ignored
    store.add("v", "like", "c", created_at=0)  # a clock behind the log still lands after it
    store.add("w", "like", "a", created_at=12)
    store.add("w", "rate", "b", value=4.0, created_at=13)
    store.add("w", "mute_interest", value="x", created_at=14)
    folded, summary = fold_events_into(dataset, store.events())
    assert folded.sequences() == {"u": ["a", "c"], "v": ["a", "c"], "w": ["a", "b"]}
    assert (summary.events_total, summary.events_used, summary.events_ignored) == (6, 4, 2)
    assert (summary.users, summary.new_users, summary.added, summary.dropped) == (3, 1, 3, 1)


def test_train_with_feedback_folds_the_stored_events(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    monkeypatch.setenv("WHYREC_CACHE", str(run_dir.parent / "cache"))
    rec = Recommender.load(run)
    store = EventStore(default_db_url(run))
    liked = list(rec.items.ids[:4])
    for item in liked:
        store.add("fresh-user", "like", item)
    some_user = next(iter(rec.histories))
    dropped = rec.histories[some_user][0]
    store.add(some_user, "not_interested", dropped)
    store.add(some_user, "mute_interest", value="whatever")
    store.close()

    assert main(["train", "--run", str(run), "--with-feedback", "--model", "itemknn"]) == 0
    out, err = capsys.readouterr()
    assert "with 5 feedback events" in out and "used 5 of 6 stored events" in err
    new_run = tmp_path / "run-feedback"
    histories = json.loads((new_run / "histories.json").read_text())
    assert histories["fresh-user"] == liked and dropped not in histories[some_user]
    assert json.loads((new_run / "feedback.json").read_text())["events_used"] == 5
    assert "fresh-user" not in json.loads((run / "histories.json").read_text())  # the original is untouched

    # never over an existing run without --overwrite, and never over the original by accident
    assert main(["train", "--run", str(run), "--with-feedback", "--model", "itemknn"]) == 2
    assert main(["train", "--run", str(run), "--with-feedback", "--out", str(run), "--model", "itemknn"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_train_with_feedback_needs_an_event_store(run_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = tmp_path / "bare-run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("events.db*"))
    assert main(["train", "--run", str(run), "--with-feedback", "--model", "itemknn"]) == 2
    assert "no event store" in capsys.readouterr().err
