"""The question parser (English and Chinese) and the title resolver."""

from __future__ import annotations

import pytest

from whyrec.data.dataset import ItemCatalog
from whyrec.service.intents import TitleIndex, normalise_title, parse


@pytest.mark.parametrize(
    ("question", "kind", "phrase"),
    [
        ("Why did you recommend The Matrix?", "why", "The Matrix"),
        ("why The Matrix", "why", "The Matrix"),
        ("Why is Frozen recommended to me?", "why", "Frozen"),
        ("Why not Titanic?", "why_not", "Titanic"),
        ("Why didn't you recommend Titanic (1997)?", "why_not", "Titanic (1997)"),
        ("why is Titanic not recommended", "why_not", "Titanic"),
        ('Why isn\'t "Up" in my list?', "why_not", "Up"),
        ("What if I remove Gravity?", "what_if", "Gravity"),
        ("what would happen if I hadn't watched Gravity", "what_if", "Gravity"),
        ("without Gravity?", "what_if", "Gravity"),
        ("What are my interests?", "interests", ""),
        ("what do I like", "interests", ""),
        ("Show me more like Inception", "more_like", "Inception"),
        ("something similar to Inception please", "more_like", "Inception"),
        ("为什么推荐《盗梦空间》？", "why", "盗梦空间"),
        ("为什么不推荐泰坦尼克号", "why_not", "泰坦尼克号"),
        ("为什么没有推荐《Titanic》", "why_not", "Titanic"),
        ("如果我删除《Gravity》会怎样？", "what_if", "Gravity"),
        ("我的兴趣是什么", "interests", ""),
        ("和《Inception》类似的电影", "more_like", "Inception"),
        ("hello there", "unknown", ""),
        ("why?", "unknown", ""),
        ("你好", "unknown", ""),
    ],
)
def test_parse(question: str, kind: str, phrase: str) -> None:
    intent = parse(question)
    assert (intent.kind, intent.phrase) == (kind, phrase)
    assert intent.lang == ("zh" if any("\u4e00" <= c <= "\u9fff" for c in question) else "en")


def test_normalise_title() -> None:
    assert normalise_title("The Matrix (1999)") == "matrix"
    assert normalise_title("Matrix, The") == "matrix"
    assert normalise_title("  Star Wars: Episode IV ") == "star wars episode iv"


@pytest.fixture
def titles() -> TitleIndex:
    catalog = ItemCatalog(titles={
        "m1": "The Matrix (1999)", "m2": "The Matrix Reloaded (2003)", "t1": "Titanic (1997)",
        "t2": "Titanic (1953)", "s1": "Star Wars: Episode IV - A New Hope (1977)",
        "x": "<script>alert(1)</script>",
    })  # fmt: skip
    return TitleIndex(catalog, list(catalog.titles))


def test_resolve_ids_exact_titles_and_longest_spelled_out_title(titles: TitleIndex) -> None:
    assert titles.resolve("m2") == "m2"
    assert titles.resolve("the matrix") == "m1"
    assert titles.resolve("The Matrix Reloaded") == "m2"
    assert titles.resolve("star wars") == "s1"  # the phrase inside a title
    assert titles.resolve("a new hope star wars episode iv") == "s1"  # most shared words
    assert titles.resolve("<script>alert(1)</script>") == "x"
    assert titles.resolve("casablanca") is None
    assert titles.resolve("") is None


def test_resolve_prefers_the_items_the_question_is_about(titles: TitleIndex) -> None:
    assert titles.resolve("Titanic") == "t1"
    assert titles.resolve("Titanic", prefer=["t2"]) == "t2"
