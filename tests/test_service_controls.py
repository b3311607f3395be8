"""Ranking controls through the HTTP API: request knobs, the deployment's blocklists (which a
request cannot lift), what the response says about moved items, and 4xx for bad values."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from whyrec.service import EventStore, ServiceSettings, create_app
from whyrec.training import RankingControls, Recommender

CJK = re.compile(r"[\u4e00-\u9fff]")


def make_client(
    recommender: Recommender, tmp_path: Path, controls: RankingControls | None = None
) -> TestClient:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    settings = ServiceSettings(run_dir="tiny-run", controls=controls or RankingControls())
    return TestClient(create_app(recommender, store, settings))


@pytest.fixture
def client(recommender: Recommender, tmp_path: Path) -> TestClient:
    return make_client(recommender, tmp_path)


def recommendations(client: TestClient, user: str, **params: object) -> dict:
    response = client.get(f"/api/users/{user}/recommendations", params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()


def test_no_controls_is_the_plain_list(client: TestClient, user: str) -> None:
    body = recommendations(client, user)
    assert body["controls"] is None and body["moved_out"] == []
    assert all(r["moved_by"] is None and r["plain_rank"] is None for r in body["recommendations"])
    same = recommendations(client, user, diversity=0)
    assert [r["item_id"] for r in same["recommendations"]] == [r["item_id"] for r in body["recommendations"]]


def test_diversity_moves_items_and_says_so(client: TestClient, user: str) -> None:
    plain = [r["item_id"] for r in recommendations(client, user)["recommendations"]]
    body = recommendations(client, user, diversity=0.6, explain="true")
    assert body["controls"]["diversity"] == 0.6
    moved = [r for r in body["recommendations"] if r["moved_by"] == "diversity"]
    assert moved, "a diversity of 0.6 changed nothing"
    for rec in moved:
        assert rec["explanation"]["sentence"]["text"].endswith("Moved up for variety.")
        assert rec["explanation"]["rank"] == rec["rank"] and rec["explanation"]["recommended"]
    for rec in body["recommendations"]:
        if rec["moved_by"] is None:
            assert "for variety" not in rec["explanation"]["sentence"]["text"]
    shown = {r["item_id"] for r in body["recommendations"]}
    out = body["moved_out"]
    assert out and {o["item_id"] for o in out} == set(plain) - shown
    assert all(o["reason"] == "diversity" and o["note"] == "Moved out of the list for variety." for o in out)
    assert all(o["plain_rank"] == plain.index(o["item_id"]) + 1 for o in out)
    zh = recommendations(client, user, diversity=0.6, explain="true", lang="zh")
    moved_zh = [r for r in zh["recommendations"] if r["moved_by"] == "diversity"]
    assert all("多样" in r["explanation"]["sentence"]["text"] for r in moved_zh)
    assert all(CJK.search(o["note"]) for o in zh["moved_out"])


def test_calibration_is_said_where_it_moved_an_item(
    client: TestClient, recommender: Recommender, user: str
) -> None:
    body = recommendations(client, user, calibrate="true", group="reason")
    assert body["controls"]["calibrate"] and body["groups"]
    for rec in body["recommendations"]:
        text = rec["explanation"]["sentence"]["text"]
        assert text.endswith("Shown to match your mix of interests.") == (rec["moved_by"] == "calibration")
    assert {o["reason"] for o in body["moved_out"]} <= {"calibration"}


def test_blocked_attributes_and_the_cap(client: TestClient, recommender: Recommender, user: str) -> None:
    plain = recommendations(client, user)["recommendations"]
    common = Counter(a for r in plain for a in r["attributes"]).most_common(1)[0][0]
    body = recommendations(client, user, block_attributes=common)
    assert len(body["recommendations"]) == 10
    assert all(common not in r["attributes"] for r in body["recommendations"])
    blocked = [o for o in body["moved_out"] if o["reason"] == "blocked_attribute"]
    assert {o["item_id"] for o in blocked} == {r["item_id"] for r in plain if common in r["attributes"]}
    assert all(o["attribute"] == common and o["note"] == f"Left out: {common} is blocked." for o in blocked)
    assert body["controls"]["blocked_attributes"] == [common]
    capped = recommendations(client, user, max_per_attribute=2, k=8)
    counts = Counter(a for r in capped["recommendations"] for a in r["attributes"])
    assert max(counts.values()) <= 2
    assert all(o["reason"] == "attribute_cap" for o in capped["moved_out"])
    assert any("already has 2" in o["note"] for o in capped["moved_out"])


def test_a_deployment_blocklist_holds_whatever_the_request_says(
    recommender: Recommender, user: str, tmp_path: Path
) -> None:
    plain = recommendations(make_client(recommender, tmp_path / "plain"), user)["recommendations"]
    first = plain[0]["item_id"]
    attribute = next(a for r in plain[1:] for a in r["attributes"] if a not in plain[0]["attributes"])
    deployment = RankingControls(block_items=(first,), block_attributes=(attribute,), diversity=0.3)
    client = make_client(recommender, tmp_path, deployment)
    for params in ({}, {"diversity": 0}, {"max_per_attribute": 0}, {"block_items": "someone-else"},
                   {"exclude_items": "", "calibrate": "false", "k": 30}):  # fmt: skip
        body = recommendations(client, user, **params)
        ids = [r["item_id"] for r in body["recommendations"]]
        assert first not in ids and all(attribute not in r["attributes"] for r in body["recommendations"])
        assert body["controls"]["blocked_attributes"] == [attribute]
        assert body["controls"]["diversity"] == params.get("diversity", 0.3)
    extra = recommendations(client, user, block_items=f"{plain[1]['item_id']},{plain[2]['item_id']}")
    assert extra["controls"]["blocked_items"] == 3
    assert not {plain[1]["item_id"], plain[2]["item_id"]} & {r["item_id"] for r in extra["recommendations"]}
    # every other list and answer keeps the block too
    seen = recommender.history(user)[-1]
    more = client.get(f"/api/users/{user}/more-like/{seen}", params={"k": 50}).json()["recommendations"]
    assert first not in {r["item_id"] for r in more}
    refused = client.get(f"/api/users/{user}/recommendations/{first}/explanation")
    assert refused.status_code == 409 and "blocked" in refused.json()["detail"]
    title = recommender.catalog.title(first)
    answer = client.post(f"/api/users/{user}/ask", json={"question": f"Why did you recommend {title}?"})
    assert answer.status_code == 200 and "blocked" in answer.json()["answer"], answer.text


def test_explanations_rank_an_item_in_the_list_the_deployment_serves(
    recommender: Recommender, user: str, tmp_path: Path
) -> None:
    """With the plain first item blocked, the item served first is explained as rank 1 (the
    blocked item is not ranked above it), and the k-th one as inside the top k."""
    plain = recommendations(make_client(recommender, tmp_path / "plain"), user, k=5)["recommendations"]
    client = make_client(recommender, tmp_path, RankingControls(block_items=(plain[0]["item_id"],)))
    served = recommendations(client, user, k=5)["recommendations"]
    assert served[0]["item_id"] == plain[1]["item_id"]
    for position in (0, 4):
        item = served[position]["item_id"]
        response = client.get(f"/api/users/{user}/recommendations/{item}/explanation", params={"k": 5})
        assert response.status_code == 200, response.text
        explained = response.json()
        assert explained["rank"] == position + 1 and explained["recommended"], explained


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"diversity": 1.5}, "diversity"),
        ({"diversity": -0.2}, "diversity"),
        ({"diversity": "lots"}, "diversity"),
        ({"diversity": "nan"}, "diversity"),
        ({"calibrate": "maybe"}, "calibrate"),
        ({"max_per_attribute": -1}, "max_per_attribute"),
        ({"block_items": ",".join(f"i{n}" for n in range(1001))}, "block_items: at most 1,000 names"),
        ({"block_attributes": "x" * 300}, "block_attributes: a name is longer than"),
    ],
)
def test_bad_control_values_are_a_422_with_one_line(
    client: TestClient, user: str, params: dict, message: str
) -> None:
    response = client.get(f"/api/users/{user}/recommendations", params=params)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and "Traceback" not in detail


def test_the_controls_are_in_the_openapi_document(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/users/{user_id}/recommendations"]["get"]
    described = {p["name"]: p.get("description", "") for p in operation["parameters"]}
    for name in ("diversity", "calibrate", "max_per_attribute", "block_items", "block_attributes",
                 "exclude_items", "exclude_attributes"):  # fmt: skip
        assert described.get(name), name
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    properties = client.get("/openapi.json").json()["components"]["schemas"][schema]["properties"]
    assert {"controls", "moved_out"} <= set(properties)


def test_serve_hands_its_controls_to_the_app(run_dir: Path, tmp_path: Path, user: str) -> None:
    """What `whyrec serve --block-attributes ... --diversity ...` passes on (also to every worker)."""
    from whyrec.service.server import build_app

    deployment = RankingControls(block_attributes=("Drama",), diversity=0.4)
    db = f"sqlite:///{tmp_path / 'events.db'}"
    config = {"run_dir": str(run_dir), "db": db, "controls": json.loads(json.dumps(deployment.to_dict()))}
    app, store = build_app(config, None)
    try:
        assert app.state.live.controls == deployment
        body = recommendations(TestClient(app), user)
        assert body["controls"]["diversity"] == 0.4 and body["controls"]["blocked_attributes"] == ["Drama"]
        assert all("Drama" not in r["attributes"] for r in body["recommendations"])
    finally:
        store.close()
