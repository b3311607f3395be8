"""Place a free-text question (English or Chinese) into one of the questions the explainer answers,
and find the item it names.

Parsing is a handful of ordered patterns, not a language model: every answer must come from the
explainer, so a question that fits no pattern is answered with the list of what can be asked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from whyrec.data.dataset import ItemCatalog

IntentKind = Literal["why", "why_not", "what_if", "interests", "more_like", "unknown"]
Lang = Literal["en", "zh"]

_CJK = re.compile(r"[\u3400-\u9fff]")

# pieces of the patterns below
_VERB = r"(?:recommend(?:ed|ing)?|suggest(?:ed|ing)?|show(?:n|ing)?|see(?:ing)?|get(?:ting)?|" \
        r"rank(?:ed|ing)?|includ(?:e|ed)|list(?:ed)?|pick(?:ed)?)"  # fmt: skip
_PASSIVE = r"(?:recommended|suggested|shown|ranked|included|listed)"
_BE = r"(?:is|was|are|were|does|did|has|have)"
_NEG = r"(?:not|no|isn'?t|aren'?t|didn'?t|don'?t|doesn'?t|won'?t|never)"
_DROP = r"(?:remove|removed|delete|deleted|drop|dropped|forget|forgot|take out|took out|exclude|excluded|" \
        r"hadn'?t (?:seen|watched|read|bought)|never (?:saw|watched|read|bought))"  # fmt: skip
_KIND = r"(?:more|others?|something|anything|items?|movies?|films?|books?|products?)"
_ZH_DROP = r"(?:删除|删掉|去掉|移除|去除|没看过|没有看过|没买过|没读过|忘掉)"
_ZH_SHOW = r"(?:推荐|推|显示|出现|列出|会有)"

# (kind, pattern); the first match wins, so narrower questions come first. The named group
# ``item`` holds the phrase that names an item.
_EN: tuple[tuple[IntentKind, re.Pattern[str]], ...] = tuple(
    (cast(IntentKind, kind), re.compile(pattern, re.I))
    for kind, pattern in (
        ("why_not", rf"\bwhy\s+{_BE}\s+(?P<item>.+?)\s+(?:not|never)\s+(?:{_PASSIVE}|in my)\b"),
        ("why_not", rf"\bwhy\b.*?\b{_NEG}\b(?:\s+(?:you|it|they|i|there))?"
                    rf"(?:\s+(?:{_VERB}|in my (?:list|top))\b)?(?:\s+(?:me|for me))?\s*(?P<item>.*)"),
        ("what_if", rf"\bwhat\s+(?:if|happens if|would (?:happen|change) if)\b.*?\b{_DROP}\s+(?P<item>.*)"),
        ("what_if", r"^\s*(?:and\s+)?without\s+(?P<item>.+)"),
        ("more_like", rf"\b{_KIND}\s+(?:like|similar to|resembling)\s+(?P<item>.+)"),
        ("more_like", r"\b(?:similar to|like)\s+(?P<item>.+?)\s*(?:please)?\s*\??$"),
        ("interests", r"\b(?:my|your idea of my)\s+(?:interests?|tastes?|profile|preferences?)\b|"
                      r"\bwhat (?:do|am) i (?:like|into|interested in)\b|\bwhat are my\b"),
        ("why", rf"\bwhy\s+{_BE}\s+(?P<item>.+?)\s+(?:being\s+)?(?:{_PASSIVE}|here|there|in my (?:list|top)|"
                r"on my list)\b"),
        ("why", rf"\bwhy\b(?:.*?\b{_VERB}\b)?(?:\s+(?:me|for me|to me))?\s*(?P<item>.*)"),
    )
)  # fmt: skip

_ZH: tuple[tuple[IntentKind, re.Pattern[str]], ...] = tuple(
    (cast(IntentKind, kind), re.compile(pattern))
    for kind, pattern in (
        ("why_not", rf"为(?:什么|何)\s*(?:不|没有?|没)(?:给我)?{_ZH_SHOW}?(?:给我)?\s*(?P<item>.*)"),
        ("what_if", rf"(?:如果|假如|要是|假设)(?:我)?{_ZH_DROP}(?:了)?\s*(?P<item>.*?)\s*(?:的话)?\s*(?:会)?"
                    r"(?:怎么样|怎样|会怎样|呢|，.*|,.*)?[？?]?$"),
        ("what_if", r"(?:删除|删掉|去掉|移除|去除)(?:了)?\s*(?P<item>.+?)\s*(?:会|的话|之后|以后).*$"),
        ("more_like", r"(?:更多|多推荐|再推荐|推荐一些|推荐点|来点|还有)?(?:和|跟|与|像)\s*(?P<item>.+?)\s*"
                      r"(?:类似|相似|差不多|一样)(?:的)?(?:东西|电影|作品|书|商品)?[？?。]?$"),
        ("interests", r"我的(?:兴趣|爱好|口味|偏好|画像)|我(?:喜欢|对)什么|我(?:都)?有(?:哪些|什么)兴趣"),
        ("why", rf"为(?:什么|何)\s*(?:给我)?{_ZH_SHOW}?(?:了)?(?:给我)?\s*(?P<item>.*)"),
    )
)  # fmt: skip

_TRAILING = re.compile(r"[\s?？!！。.,，:：;；]+$")
_LEADING_WORDS = re.compile(r"^(?:the item|the movie|the film|the book|item|movie|film|book|it was|is|was|"
                            r"me|for me|to me|you|that|this)\s+", re.I)  # fmt: skip
_TRAILING_WORDS = re.compile(rf"\s+(?:{_PASSIVE}|to me|for me|please|instead|then|again|from my history|"
                             r"from my list|in my top(?: \d+)?|in my list|here)$", re.I)  # fmt: skip


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    lang: Lang
    phrase: str  # the words that name an item ("" when there are none)


def detect_lang(text: str) -> Lang:
    return "zh" if _CJK.search(text) else "en"


def parse(question: str) -> Intent:
    text = unicodedata.normalize("NFKC", question).strip()
    lang = detect_lang(text)
    for kind, pattern in _ZH if lang == "zh" else _EN:
        match = pattern.search(text)
        if match:
            phrase = _clean_phrase(match.groupdict().get("item") or "")
            if kind in ("why", "why_not", "what_if", "more_like") and not phrase:
                continue
            return Intent(kind, lang, phrase)
    return Intent("unknown", lang, "")


def _clean_phrase(phrase: str) -> str:
    quoted = re.search(r"《(.+?)》|“(.+?)”|\"(.+?)\"|'(.+?)'|「(.+?)」", phrase)
    if quoted:
        return next(g for g in quoted.groups() if g).strip()
    phrase = _TRAILING.sub("", phrase.strip())
    for _ in range(3):
        phrase = _TRAILING.sub("", _TRAILING_WORDS.sub("", _LEADING_WORDS.sub("", phrase)))
    return phrase.strip()


# -- naming items ---------------------------------------------------------------------------------
def normalise_title(title: str) -> str:
    """Lowercase words without punctuation, a trailing ``(year)`` or a moved article."""
    text = unicodedata.normalize("NFKC", title).lower()
    text = re.sub(r"\(\s*\d{4}\s*\)\s*$", "", text).strip()
    text = re.sub(r",\s*(the|a|an)$", "", text)  # "Matrix, The" -> "matrix"
    text = re.sub(r"^(the|a|an)\s+", "", text)
    return " ".join(re.findall(r"\w+", text))


class TitleIndex:
    """Finds the item a phrase names: an id, an exact title, a title inside the phrase, the phrase
    inside a title, then most shared words. Items in ``prefer`` (the user's recommendations or
    history, by the question) win ties."""

    def __init__(self, catalog: ItemCatalog, item_ids: Sequence[str]) -> None:
        self.catalog = catalog
        self.ids = set(item_ids)
        self.order = {item: n for n, item in enumerate(item_ids)}
        self.by_norm: dict[str, list[str]] = {}
        for item in item_ids:
            self.by_norm.setdefault(normalise_title(catalog.title(item)), []).append(item)
        self.norms = [(norm, items) for norm, items in self.by_norm.items() if norm]

    def resolve(self, phrase: str, prefer: Iterable[str] = ()) -> str | None:
        phrase = phrase.strip()
        if not phrase:
            return None
        if phrase in self.ids:
            return phrase
        preferred = list(dict.fromkeys(prefer))
        rank = {item: n for n, item in enumerate(preferred)}
        norm = normalise_title(phrase)
        if not norm:
            return None

        def best(candidates: Iterable[str]) -> str | None:
            pool = list(candidates)
            if not pool:
                return None
            return min(pool, key=lambda i: (i not in rank, rank.get(i, 0), self.order.get(i, 0)))

        if norm in self.by_norm:
            return best(self.by_norm[norm])
        padded = f" {norm} "
        inside = [(len(n), i) for n, items in self.norms if f" {n} " in padded for i in items]
        if inside:  # the longest title the question spells out in full
            longest = max(length for length, _ in inside)
            return best(i for length, i in inside if length == longest)
        containing = [i for n, items in self.norms if padded in f" {n} " for i in items]
        if containing:
            return best(containing)
        words = set(norm.split())
        scored: list[tuple[float, str]] = []
        for n, items in self.norms:
            title_words = set(n.split())
            overlap = len(words & title_words) / len(words | title_words)
            if overlap >= 0.5:
                scored.extend((overlap, i) for i in items)
        if scored:
            top = max(s for s, _ in scored)
            return best(i for s, i in scored if s == top)
        return None
