"""Sentence wording: one message table for both languages; English sentences and the untouched
Chinese ones are byte-identical to the wording before the table; Chinese says genres in Chinese."""

from __future__ import annotations

import re

import pytest

from whyrec.explain.messages import MESSAGES, attribute_names, interest_label, say
from whyrec.explain.sentences import moved_out_note, template_sentence
from whyrec.explain.types import Evidence, Lift, SentenceFacts, WhyNot
from whyrec.training.controls import MovedOut

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


def test_a_sentence_says_when_a_ranking_control_moved_the_item() -> None:
    base = CASES["one"]
    said = [
        ("diversity", " Moved up for variety.", "为了让推荐更多样，它被排到了前面。"),
        ("calibration", " Shown to match your mix of interests.", "展示它是为了贴合你的兴趣比例。"),
    ]
    for moved_by, en, zh in said:
        facts = SentenceFacts(base.title, base.rank, base.k, base.evidence, moved_by=moved_by)  # type: ignore[arg-type]
        assert template_sentence(facts, "en") == template_sentence(base, "en") + en
        assert template_sentence(facts, "zh") == template_sentence(base, "zh") + zh


def test_notes_on_items_the_controls_left_out() -> None:
    def note(reason: str, attribute: str | None, lang: str) -> str:
        return moved_out_note(MovedOut("i1", 1.0, 3, reason, attribute), lang, cap=2)  # type: ignore[arg-type]

    assert note("blocked_item", None, "en") == "Left out: this item is blocked."
    assert note("blocked_attribute", "Horror", "en") == "Left out: Horror is blocked."
    assert note("blocked_attribute", "Horror", "zh") == "未显示：恐怖类已被屏蔽。"
    assert note("attribute_cap", "Comedy", "en") == "Left out: the list already has 2 Comedy items."
    assert note("attribute_cap", "Comedy", "zh") == "未显示：列表中已有2个喜剧条目。"
    # an attribute without a Chinese name is not named, rather than said in English
    assert note("attribute_cap", "Lab Supplies", "zh") == "未显示：列表中已有2个与它属性相同的条目。"
    assert note("blocked_attribute", "Lab Supplies", "zh") == "未显示：它的一个属性已被屏蔽。"
    assert note("diversity", None, "en") == "Moved out of the list for variety."
    assert note("calibration", None, "zh") == "为了贴合你的兴趣比例，它被移出了列表。"
