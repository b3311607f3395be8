"""Template sentences, filled only from an explanation's own facts, and the grounding check."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from whyrec.data.dataset import ItemCatalog
from whyrec.explain.messages import (
    ZH_ATTRIBUTES,
    attribute_name,
    attribute_names,
    interest_label,
    join,
    quote,
    say,
)
from whyrec.explain.types import SentenceFacts, WhyNot
from whyrec.training.controls import MovedOut


def template_sentence(facts: SentenceFacts, lang: str = "en") -> str:
    """One or two sentences in English (``en``) or Chinese (``zh``) from the explanation's facts.

    In Chinese, attributes are given by their Chinese names; those without a known translation are
    left out rather than mixed in as English."""
    title = quote(facts.title, lang)
    if facts.why_not is not None:
        return _why_not(title, facts.why_not, facts, lang)
    evidence = [quote(t, lang) for t in facts.evidence]
    attributes = attribute_names(facts.attributes, lang)
    if evidence:
        out = say(lang, "because", title=title, evidence=join(evidence, lang))
        shared = say(lang, "because_shared", attributes=join(attributes, lang))
        out += shared if attributes else say(lang, "because_end")
    else:
        out = say(lang, "popular", title=title)
    label = interest_label(facts.interest, lang) if facts.interest else None
    if label:
        out += say(lang, "fits_interest", label=label)
    if facts.counterfactual:
        items = join([quote(t, lang) for t in facts.counterfactual], lang)
        out += say(lang, "counterfactual", items=items, k=facts.k)
    if facts.moved_by:
        out += say(lang, f"moved_{facts.moved_by}")
    return out


def moved_out_note(moved: MovedOut, lang: str, cap: int | None = None) -> str:
    """Why a ranking control left an item of the plain top k out of the list, in ``lang``; an
    attribute without a name in ``lang`` is not named. CAP is the list's limit per attribute."""
    name = attribute_name(moved.attribute, lang) if moved.attribute else None
    if moved.reason in ("blocked_attribute", "attribute_cap"):
        return say(lang, f"out_{moved.reason}" + ("" if name else "_any"), attribute=name, cap=cap)
    return say(lang, f"out_{moved.reason}")


def _why_not(title: str, why_not: WhyNot, facts: SentenceFacts, lang: str) -> str:
    out = say(lang, "why_not", title=title, rank=facts.rank, k=facts.k)
    if why_not.evidence_against:
        out += say(lang, "why_not_against", item=quote(why_not.evidence_against[0].title, lang))
    lift = why_not.best_lift
    if lift is not None:
        what: str | None = quote(lift.title, lang)
        if lift.kind == "interest":
            label = interest_label(lift.title, lang)
            what = say(lang, "lift_interest", label=label) if label else None
        if what:  # an interest with no name in this language is not named
            out += say(lang, "why_not_lift", what=what, rank=lift.new_rank)
    return out


_NON_WORD = re.compile(r"\W")


class GroundingChecker:
    """Finds catalogue titles and attributes that a sentence names but the evidence does not.

    Titles match case-insensitively; attributes (genres, categories) match with their own
    capitalisation, so "your history" is not taken for the genre "History". The Chinese names of
    attributes count as the attributes themselves.
    """

    def __init__(self, catalog: ItemCatalog, item_ids: Iterable[str], min_length: int = 4) -> None:
        item_ids = list(item_ids)
        titles = {catalog.title(i).lower() for i in item_ids}
        attrs = {a for i in item_ids for a in catalog.attrs(i)}
        self.titles = frozenset(t for t in titles if len(t) >= min_length)
        # each title's text up to its first non-word character ("" when it starts with one), and
        # the lengths of the titles that begin with it
        lengths: dict[str, set[int]] = {}
        for t in self.titles:
            lengths.setdefault(_NON_WORD.split(t, maxsplit=1)[0], set()).add(len(t))
        self.lengths = {word: tuple(sorted(n)) for word, n in lengths.items()}
        self.attributes = sorted((a for a in attrs if len(a) >= min_length), key=len, reverse=True)
        self.zh_attributes = {a: ZH_ATTRIBUTES[a] for a in attrs if a in ZH_ATTRIBUTES}

    def titles_in(self, text: str) -> list[str]:
        """The catalogue titles that TEXT (lower case) holds as whole words, longest first: at
        each word edge whose first word begins a title, only the lengths of the titles that begin
        with it are looked up, so the cost grows with the sentence, not the catalogue."""
        breaks = [m.start() for m in _NON_WORD.finditer(text)]
        starts = [0, *(i + 1 for i in breaks)]  # a title starts at the beginning or after a break
        edges = [*breaks, len(text)]  # and ends before a break or at the end
        ends = set(edges)
        found = set()
        for i in starts:
            first = bisect.bisect_left(edges, i)  # the first edge at or after i ends i's first word
            for length in self.lengths.get(text[i : edges[first]], ()):
                if i + length in ends and text[i : i + length] in self.titles:
                    found.add(text[i : i + length])
        return sorted(found, key=lambda t: (-len(t), t))

    def ungrounded(self, sentence: str, allowed: Iterable[str]) -> list[str]:
        allowed = sorted({a for a in allowed if a}, key=len, reverse=True)
        found = []
        text = sentence.lower()
        for name in allowed:
            text = text.replace(name.lower(), " ")  # allowed mentions are blanked out first
        for title in self.titles_in(text):
            if title in text and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", text):
                found.append(title)
                text = text.replace(title, " ")
        text = sentence
        for name in allowed:
            text = re.sub(re.escape(name), " ", text, flags=re.I)
            if name in self.zh_attributes:
                text = text.replace(self.zh_attributes[name], " ")
        for attr in self.attributes:
            if attr in text and re.search(rf"(?<!\w){re.escape(attr)}(?!\w)", text):
                found.append(attr)
        found += [zh for attr, zh in self.zh_attributes.items() if zh in text]  # Chinese has no word edges
        return found
