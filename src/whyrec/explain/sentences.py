"""Template sentences, filled only from an explanation's own fields, and the grounding check."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from whyrec.data.dataset import ItemCatalog


def _quote(title: str, lang: str) -> str:
    return f"《{title}》" if lang == "zh" else f"“{title}”"


def _join(parts: Sequence[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def template_sentence(facts: dict[str, Any], lang: str = "en") -> str:
    """One or two sentences in English (``en``) or Chinese (``zh``) from the explanation's facts."""
    title = _quote(facts["title"], lang)
    evidence = [_quote(t, lang) for t in facts.get("evidence") or []]
    attrs = list(facts.get("attributes") or [])
    interest = facts.get("interest")
    why_not = facts.get("why_not")
    cf = facts.get("counterfactual")
    if lang == "zh":
        return _zh(title, evidence, attrs, interest, why_not, cf, facts)
    if why_not is not None:
        out = f"{title} is ranked {facts['rank']}, outside your top {facts['k']}."
        if why_not.evidence_against:
            out += f" {_quote(why_not.evidence_against[0].title, lang)} in your history pulls it down."
        if why_not.best_lift is not None:
            lift = why_not.best_lift
            what = f"your “{lift.title}” interest" if lift.kind == "interest" else _quote(lift.title, lang)
            out += f" More weight on {what} would lift it to rank {lift.new_rank}."
        return out
    if evidence:
        out = f"Recommended {title} mainly because of {_join(evidence, lang)} in your history"
        out += f", which share {_join(attrs, lang)} with it." if attrs else "."
    else:
        out = f"Recommended {title} because it is popular with people whose history resembles yours."
    if interest:
        out += f" It fits your “{interest}” interest."
    if cf:
        out += f" Without {_join([_quote(t, lang) for t in cf], lang)}, it would leave your top {facts['k']}."
    return out


def _zh(
    title: str,
    evidence: list[str],
    attrs: list[str],
    interest: str | None,
    why_not: Any,
    cf: list[str] | None,
    facts: dict[str, Any],
) -> str:
    if why_not is not None:
        out = f"{title}排在第{facts['rank']}位，不在你的前{facts['k']}名。"
        if why_not.evidence_against:
            out += f"你历史中的{_quote(why_not.evidence_against[0].title, 'zh')}拉低了它。"
        if why_not.best_lift is not None:
            lift = why_not.best_lift
            what = f"“{lift.title}”兴趣" if lift.kind == "interest" else _quote(lift.title, "zh")
            out += f"更看重{what}会把它提到第{lift.new_rank}位。"
        return out
    if evidence:
        out = f"推荐{title}，主要因为你的历史中有{_join(evidence, 'zh')}"
        out += f"，它们都属于{_join(attrs, 'zh')}。" if attrs else "。"
    else:
        out = f"推荐{title}，因为与你历史相似的人喜欢它。"
    if interest:
        out += f"它符合你的“{interest}”兴趣。"
    if cf:
        out += f"如果没有{_join([_quote(t, 'zh') for t in cf], 'zh')}，它会跌出你的前{facts['k']}名。"
    return out


class GroundingChecker:
    """Finds catalogue titles and attributes that a sentence names but the evidence does not.

    Titles match case-insensitively; attributes (genres, categories) match with their own
    capitalisation, so "your history" is not taken for the genre "History".
    """

    def __init__(self, catalog: ItemCatalog, item_ids: Iterable[str], min_length: int = 4) -> None:
        item_ids = list(item_ids)
        titles = {catalog.title(i).lower() for i in item_ids}
        attrs = {a for i in item_ids for a in catalog.attrs(i)}
        self.titles = sorted((t for t in titles if len(t) >= min_length), key=len, reverse=True)
        self.attributes = sorted((a for a in attrs if len(a) >= min_length), key=len, reverse=True)

    def ungrounded(self, sentence: str, allowed: Iterable[str]) -> list[str]:
        allowed = sorted({a for a in allowed if a}, key=len, reverse=True)
        found = []
        text = sentence.lower()
        for name in allowed:
            text = text.replace(name.lower(), " ")  # allowed mentions are blanked out first
        for title in self.titles:
            if title in text and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", text):
                found.append(title)
                text = text.replace(title, " ")
        text = sentence
        for name in allowed:
            text = re.sub(re.escape(name), " ", text, flags=re.I)
        for attr in self.attributes:
            if attr in text and re.search(rf"(?<!\w){re.escape(attr)}(?!\w)", text):
                found.append(attr)
        return found
