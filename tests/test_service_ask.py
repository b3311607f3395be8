"""POST /api/users/{user_id}/ask: every kind of question, in English and Chinese."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from whyrec.service import EventStore, create_app
from whyrec.training.recommender import Recommender

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def client(recommender: Recommender, tmp_path: Path) -> Iterator[TestClient]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield TestClient(create_app(recommender, store))
    store.close()


def ask(client: TestClient, user: str, question: str) -> dict:
    response = client.post(f"/api/users/{user}/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def ranked(client: TestClient, user: str, k: int) -> list[dict]:
    return client.get(f"/api/users/{user}/recommendations", params={"k": k}).json()["recommendations"]


def test_why(client: TestClient, user: str) -> None:
    first = ranked(client, user, 1)[0]
    answer = ask(client, user, f"Why did you recommend {first['title']}?")
    assert answer["intent"] == "why" and answer["lang"] == "en"
    assert answer["item"]["item_id"] == first["item_id"]
    assert (
        answer["explanation"]["recommended"] and answer["answer"] == answer["explanation"]["sentence"]["text"]
    )


def test_why_not_in_chinese(client: TestClient, user: str) -> None:
    far = ranked(client, user, 40)[-1]
    answer = ask(client, user, f"为什么不推荐《{far['title']}》？")
    assert answer["intent"] == "why_not" and answer["lang"] == "zh"
    assert answer["item"]["item_id"] == far["item_id"] and not answer["explanation"]["recommended"]
    assert CJK.search(answer["answer"]) and answer["explanation"]["why_not"]["rank"] == 40


def test_why_about_a_seen_item_says_so(client: TestClient, recommender: Recommender, user: str) -> None:
    seen = recommender.catalog.title(recommender.histories[user][-1])
    answer = ask(client, user, f"why {seen}")
    assert "already in your history" in answer["answer"] and answer["explanation"] is None


def test_what_if_i_remove(client: TestClient, recommender: Recommender, user: str) -> None:
    last = recommender.histories[user][-1]
    answer = ask(client, user, f"What if I remove {recommender.catalog.title(last)}?")
    assert answer["intent"] == "what_if" and answer["item"]["item_id"] == last
    after = [r["item_id"] for r in answer["recommendations"]]
    assert len(after) == 10 and last not in after
    expected = recommender.recommend(history=[h for h in recommender.histories[user] if h != last],
                                     k=10, exclude=[last])  # fmt: skip
    assert after == [r.item_id for r in expected]
    assert recommender.catalog.title(last) in answer["answer"]
    # asking changes nothing: the removal is hypothetical
    assert client.get(f"/api/users/{user}").json()["history"][-1]["item_id"] == last


def test_what_if_for_an_item_not_in_the_history(client: TestClient, user: str) -> None:
    stranger = ranked(client, user, 1)[0]["title"]
    assert "not in your history" in ask(client, user, f"what if I remove {stranger}")["answer"]


def test_interests_in_both_languages(client: TestClient, user: str) -> None:
    english = ask(client, user, "What are my interests?")
    assert english["intent"] == "interests" and english["interests"]
    assert (
        english["answer"].startswith("Your interests:")
        and english["interests"][0]["label"] in english["answer"]
    )
    chinese = ask(client, user, "我的兴趣是什么？")
    assert chinese["answer"].startswith("你的兴趣") and chinese["lang"] == "zh"


def test_more_like(client: TestClient, recommender: Recommender, user: str) -> None:
    first = recommender.histories[user][0]
    answer = ask(client, user, f"more like {recommender.catalog.title(first)}")
    assert answer["intent"] == "more_like" and answer["item"]["item_id"] == first
    assert answer["recommendations"] and first not in [r["item_id"] for r in answer["recommendations"]]


def test_unplaceable_question_lists_what_can_be_asked(client: TestClient, user: str) -> None:
    answer = ask(client, user, "tell me a joke")
    assert answer["intent"] == "unknown" and answer["answer"].startswith("I can answer")
    assert len(answer["can_ask"]) == 5
    for suggestion in answer["can_ask"]:  # every suggestion is itself answerable
        assert ask(client, user, suggestion)["intent"] != "unknown", suggestion
    assert ask(client, user, "你好")["answer"].startswith("我可以回答")


def test_unknown_item_names_are_answered_not_errors(client: TestClient, user: str) -> None:
    answer = ask(client, user, "why not Qwxyzzy Plonk?")
    assert answer["intent"] == "why_not" and answer["item"] is None
    assert "could not find" in answer["answer"] and answer["can_ask"]


@pytest.mark.parametrize(
    "body", [{"question": ""}, {"question": "x" * 1001}, {}, {"question": "why", "k": 0}]
)
def test_bad_questions_are_422(client: TestClient, user: str, body: dict) -> None:
    assert client.post(f"/api/users/{user}/ask", json=body).status_code == 422
