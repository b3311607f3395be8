"""The list-level reasons (group=reason) and the interest timeline endpoints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from whyrec.service import EventStore, ServiceSettings, create_app
from whyrec.training.recommender import Recommender


@pytest.fixture
def client(recommender: Recommender, tmp_path: Path) -> TestClient:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    return TestClient(create_app(recommender, store, ServiceSettings(run_dir="tiny-run")))


def _outside_titles(text: str) -> str:
    return re.sub(r"《[^》]*》", "", text)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_grouped_recommendations_cover_the_list_once(client: TestClient, user: str, lang: str) -> None:
    response = client.get(f"/api/users/{user}/recommendations", params={"group": "reason", "lang": lang})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [r["item_id"] for r in body["recommendations"]]
    grouped = [i["item_id"] for g in body["groups"] for i in g["items"]]
    assert sorted(grouped) == sorted(ids) and len(ids) == 10
    for group in body["groups"]:
        if group["kind"] != "own":
            assert group["reason"] and len(group["items"]) >= 2
        if group["kind"] == "item":  # the shared evidence is every member's strongest evidence
            for item in group["items"]:
                rec = next(r for r in body["recommendations"] if r["item_id"] == item["item_id"])
                assert rec["explanation"]["evidence"][0]["item_id"] == group["ref"]
        for item in group["items"]:
            assert item["specific"]
            if lang == "zh":  # genre names in Chinese, never a half-English sentence
                text = _outside_titles(group["reason"] + item["specific"])
                assert not re.search(r"[A-Za-z]{2,}", text), text
    plain = client.get(f"/api/users/{user}/recommendations").json()
    assert plain["groups"] is None and [r["item_id"] for r in plain["recommendations"]] == ids


def test_grouping_rejects_an_unknown_mode(client: TestClient, user: str) -> None:
    assert client.get(f"/api/users/{user}/recommendations", params={"group": "colour"}).status_code == 422


def test_interest_timeline(client: TestClient, user: str) -> None:
    response = client.get(f"/api/users/{user}/interests/timeline", params={"windows": 4, "lang": "zh"})
    assert response.status_code == 200, response.text
    body = response.json()
    visible = client.get(f"/api/users/{user}/interests").json()["interests"]
    assert [i["label"] for i in body["interests"]] == [i["label"] for i in visible]
    assert 1 <= len(body["windows"]) <= 4
    for window in body["windows"]:
        assert len(window["shares"]) == len(body["interests"])
        assert sum(window["shares"]) == pytest.approx(1.0, abs=1e-3)
        assert 0 <= window["start"] < window["end"] <= body["history_length"]
    starts = [w["start"] for w in body["windows"]]
    assert starts == sorted(starts)
    assert client.get("/api/users/nobody-at-all/interests/timeline").status_code == 404
    assert client.get(f"/api/users/{user}/interests/timeline", params={"windows": 0}).status_code == 422
