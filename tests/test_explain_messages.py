"""Sentence wording: one message table for both languages; English sentences and the untouched
Chinese ones are byte-identical to the wording before the table; Chinese says genres in Chinese."""

from __future__ import annotations

import re

import pytest

from whyrec.explain.messages import MESSAGES, attribute_names, interest_label, say
from whyrec.explain.sentences import template_sentence
from whyrec.explain.types import Evidence, Lift, SentenceFacts, WhyNot

AGAINST = Evidence("i1", "Before Sunset (2004)", -0.5, 3)
EVIDENCE = ("Monsters University (2013)", "Before Sunset (2004)", "Alien (1979)")
CASES = {
    "full": SentenceFacts("Pacific Rim (2013)", 2, 10, EVIDENCE, ("Action", "Sci-Fi"), "Action & Comedy",
                          ("Alien (1979)", "Heat (1995)")),
    "one": SentenceFacts("Heat (1995)", 1, 5, ("Alien (1979)",)),
    "none": SentenceFacts("Heat (1995)", 3, 10, interest="Drama"),
    "whynot_interest": SentenceFacts("Heat (1995)", 14, 10, why_not=WhyNot(
        14, 10, 0.3, (AGAINST,), Lift("interest", "Crime & Drama", "Crime & Drama", 4))),
    "whynot_item": SentenceFacts("Heat (1995)", 40, 10, why_not=WhyNot(
        40, 10, 0.3, (), Lift("item", "i2", "Alien (1979)", 7))),
    "whynot_bare": SentenceFacts("Heat (1995)", 40, 10, why_not=WhyNot(40, 10, 0.3, (), None)),
}  # fmt: skip

#: the sentences as the f-string templates wrote them, before the message table
BEFORE = {
    (
        "full",
        "en",
    ): "Recommended “Pacific Rim (2013)” mainly because of “Monsters University (2013)”, “Before "
    "Sunset (2004)” and “Alien (1979)” in your history, which share Action and Sci-Fi with it. It fits your "
    "“Action & Comedy” interest. Without “Alien (1979)” and “Heat (1995)”, it would leave your top 10.",
    ("one", "en"): "Recommended “Heat (1995)” mainly because of “Alien (1979)” in your history.",
    ("one", "zh"): "推荐《Heat (1995)》，主要因为你的历史中有《Alien (1979)》。",
    ("none", "en"): "Recommended “Heat (1995)” because it is popular with people whose history resembles "
    "yours. It fits your “Drama” interest.",
    (
        "whynot_interest",
        "en",
    ): "“Heat (1995)” is ranked 14, outside your top 10. “Before Sunset (2004)” in your "
    "history pulls it down. More weight on your “Crime & Drama” interest would lift it to rank 4.",
    ("whynot_item", "en"): "“Heat (1995)” is ranked 40, outside your top 10. More weight on “Alien (1979)” "
    "would lift it to rank 7.",
    (
        "whynot_item",
        "zh",
    ): "《Heat (1995)》排在第40位，不在你的前10名。更看重《Alien (1979)》会把它提到第7位。",
    ("whynot_bare", "en"): "“Heat (1995)” is ranked 40, outside your top 10.",
    ("whynot_bare", "zh"): "《Heat (1995)》排在第40位，不在你的前10名。",
}

#: Chinese sentences that deliberately changed: genre and interest names now in Chinese
CHANGED = {
    ("full", "zh"): "推荐《Pacific Rim (2013)》，主要因为你的历史中有《Monsters University (2013)》、"
    "《Before Sunset (2004)》、《Alien (1979)》，它们都属于动作、科幻。它符合你的“动作、喜剧”兴趣。"
    "如果没有《Alien (1979)》、《Heat (1995)》，它会跌出你的前10名。",
    ("none", "zh"): "推荐《Heat (1995)》，因为与你历史相似的人喜欢它。它符合你的“剧情”兴趣。",
    ("whynot_interest", "zh"): "《Heat (1995)》排在第14位，不在你的前10名。你历史中的《Before Sunset (2004)》"
    "拉低了它。更看重“犯罪、剧情”兴趣会把它提到第4位。",
}


@pytest.mark.parametrize("case,lang", sorted({**BEFORE, **CHANGED}))
def test_sentences_keep_their_wording(case: str, lang: str) -> None:
    expected = BEFORE.get((case, lang)) or CHANGED[(case, lang)]
    assert template_sentence(CASES[case], lang) == expected


def _outside_titles(text: str) -> str:
    return re.sub(r"《[^》]*》", "", text)


def test_chinese_sentence_leaves_untranslatable_names_out_instead_of_mixing_languages() -> None:
    facts = SentenceFacts("Heat (1995)", 2, 10, ("Alien (1979)",), ("Lab Supplies",), "lab & pipette")
    zh = template_sentence(facts, "zh")
    assert not re.search(r"[A-Za-z]", _outside_titles(zh)), zh
    assert zh == "推荐《Heat (1995)》，主要因为你的历史中有《Alien (1979)》。"
    en = template_sentence(facts, "en")
    assert "Lab Supplies" in en and "“lab & pipette” interest" in en


def test_every_movielens_genre_has_a_chinese_name() -> None:
    genres = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
              "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
              "War", "Western"]  # fmt: skip
    names = attribute_names(genres, "zh")
    assert len(names) == len(genres) and len(set(names)) == len(genres)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]+", n) for n in names)
    assert interest_label("Animation & Children's", "zh") == "动画、儿童"
    assert interest_label("Animation & pipette", "zh") is None


def test_both_languages_have_the_same_messages_and_fields() -> None:
    assert MESSAGES["en"].keys() == MESSAGES["zh"].keys()
    for key, text in MESSAGES["en"].items():
        fields = set(re.findall(r"{(\w+)", text))
        assert set(re.findall(r"{(\w+)", MESSAGES["zh"][key])) <= fields, key  # the same facts, or fewer


def test_answers_to_questions_read_the_same_table() -> None:
    # wording of ask's answers is unchanged by the move into the table
    assert (
        say("en", "what_if_same", item="“Heat”", k=10) == "Without “Heat”, your top 10 would stay the same."
    )
    assert say("zh", "interest_part", label="科幻", share=0.25, horizon="近期") == "科幻（占25%，近期）"
