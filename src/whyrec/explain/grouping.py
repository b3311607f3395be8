"""Reasons at the level of the list: the top-k grouped by what drives it, a shared reason said
once per group, and what is specific to each item beside it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from whyrec.data.dataset import ItemCatalog
from whyrec.explain.messages import attribute_names, interest_label, join, quote, say
from whyrec.explain.types import Explanation, Lang

MIN_GROUP = 2  # a reason shared by fewer items is no shared reason


@dataclass(frozen=True)
class GroupedItem:
    item_id: str
    title: str
    rank: int
    specific: str  # what is specific to this item beside the group's reason


@dataclass(frozen=True)
class ReasonGroup:
    kind: Literal["item", "interest", "own"]  # own: items whose main reason no other item shares
    ref: str | None  # the evidence item's id or the interest's label
    reason: str  # said once for the group ("" for "own": each item says its own)
    items: tuple[GroupedItem, ...]


def group_by_reason(
    explanations: Sequence[Explanation], catalog: ItemCatalog, lang: Lang
) -> list[ReasonGroup]:
    """Group explained recommendations (in rank order) by their strongest evidence item when at
    least :data:`MIN_GROUP` items share it, else by the interest their sentence names, and keep the
    rest apart with their own sentence. Groups come in the order of their best-ranked item."""
    top1 = Counter(e.evidence[0].item_id for e in explanations if e.evidence)
    by_item = {i for i, n in top1.items() if n >= MIN_GROUP}
    interests = Counter(
        e.interest.label for e in explanations if e.interest and e.interest_named and _top1(e) not in by_item
    )
    by_interest = {label for label, n in interests.items() if n >= MIN_GROUP and interest_label(label, lang)}
    members: dict[tuple[str, str | None], list[Explanation]] = {}
    for e in explanations:
        if _top1(e) in by_item:
            key: tuple[str, str | None] = ("item", _top1(e))
        elif e.interest and e.interest_named and e.interest.label in by_interest:
            key = ("interest", e.interest.label)
        else:
            key = ("own", None)
        members.setdefault(key, []).append(e)
    groups = [_group(kind, ref, group, catalog, lang) for (kind, ref), group in members.items()]
    return sorted(groups, key=lambda g: min(i.rank for i in g.items))


def _top1(e: Explanation) -> str | None:
    return e.evidence[0].item_id if e.evidence else None


def _group(
    kind: str, ref: str | None, explanations: list[Explanation], catalog: ItemCatalog, lang: Lang
) -> ReasonGroup:
    if kind == "item" and ref is not None:
        reason = say(lang, "group_item", item=quote(catalog.title(ref), lang))
        items = tuple(_item(e, catalog, lang, skip=ref) for e in explanations)
        return ReasonGroup("item", ref, reason, items)
    if kind == "interest" and ref is not None:
        reason = say(lang, "group_interest", label=interest_label(ref, lang))
        return ReasonGroup("interest", ref, reason, tuple(_item(e, catalog, lang) for e in explanations))
    own = tuple(GroupedItem(e.item_id, e.title, e.rank, e.template_sentence) for e in explanations)
    return ReasonGroup("own", None, "", own)


def _item(e: Explanation, catalog: ItemCatalog, lang: Lang, skip: str | None = None) -> GroupedItem:
    """Its own strongest evidence beyond the shared item, then its attributes."""
    others = [quote(ev.title, lang) for ev in e.evidence if ev.item_id != skip][:2]
    parts = [say(lang, "card_also", evidence=join(others, lang))] if others else []
    attributes = attribute_names(catalog.attrs(e.item_id), lang)
    if attributes:
        parts.append(say(lang, "card_attributes", attributes=join(attributes, lang)))
    text = ("" if lang == "zh" else " ").join(parts) or say(lang, "card_none")
    return GroupedItem(e.item_id, e.title, e.rank, text)
