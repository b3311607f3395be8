"""Every English and Chinese phrase the product says, in one table, and the helpers that fill it.

Sentences (:mod:`whyrec.explain.sentences`) and the answers to questions (the service's ask)
both read this table; ``{item}``, ``{title}`` and the like are already quoted titles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: every fixed phrase, by language
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # explanation sentences
        "why_not": "{title} is ranked {rank}, outside your top {k}.",
        "why_not_against": " {item} in your history pulls it down.",
        "lift_interest": "your “{label}” interest",
        "why_not_lift": " More weight on {what} would lift it to rank {rank}.",
        "because": "Recommended {title} mainly because of {evidence} in your history",
        "because_shared": ", which share {attributes} with it.",
        "because_end": ".",
        "popular": "Recommended {title} because it is popular with people whose history resembles yours.",
        "fits_interest": " It fits your “{label}” interest.",
        "counterfactual": " Without {items}, it would leave your top {k}.",
        # ranking controls: what moved an item in, and why an item of the plain top k is not shown
        "moved_diversity": " Moved up for variety.",
        "moved_calibration": " Shown to match your mix of interests.",
        "out_blocked_item": "Left out: this item is blocked.",
        "out_blocked_attribute": "Left out: {attribute} is blocked.",
        "out_blocked_attribute_any": "Left out: one of its attributes is blocked.",
        "out_attribute_cap": "Left out: the list already has {cap} {attribute} items.",
        "out_attribute_cap_any": "Left out: the list already has {cap} items sharing one of its attributes.",
        "out_diversity": "Moved out of the list for variety.",
        "out_calibration": "Moved out of the list to match your mix of interests.",
        # list-level reasons
        "group_item": "Because of {item} in your history",
        "group_interest": "For your “{label}” interest",
        "group_popular": "Popular with people like you",
        "card_also": "Also because of {evidence}.",
        "card_attributes": "{attributes}.",
        "card_none": "Mostly the shared reason.",
        # answers to questions
        "not_found": "I could not find an item called {item}.",
        "help": "I can answer questions like these:",
        "not_in_history": "{item} is not in your history, so removing it changes nothing.",
        "what_if_same": "Without {item}, your top {k} would stay the same.",
        "what_if_change": "Without {item}, your top {k} would change: "
                          "{n_new} new ({new}) and {n_gone} gone ({gone}).",
        "more_like": "If you liked {item}, the model would next recommend {top}.",
        "no_interests": "I cannot see any interests in your history yet.",
        "interests": "Your interests: {parts}.",
        "interest_part": "{label} ({share:.0%} of your history, {horizon})",
        "separator": "; ",
        "in_history": "{item} is already in your history, so it is not recommended again.",
        "avoided": "You marked {item} as not interested, so it and similar items are pushed down.",
        "removed": "You removed {item}, so it is not shown again.",
        "blocked": "{item} is blocked on this service, so it is never recommended.",
        "recent": "recent",
        "long-term": "long-term",
    },
    "zh": {
        "why_not": "{title}排在第{rank}位，不在你的前{k}名。",
        "why_not_against": "你历史中的{item}拉低了它。",
        "lift_interest": "“{label}”兴趣",
        "why_not_lift": "更看重{what}会把它提到第{rank}位。",
        "because": "推荐{title}，主要因为你的历史中有{evidence}",
        "because_shared": "，它们都属于{attributes}。",
        "because_end": "。",
        "popular": "推荐{title}，因为与你历史相似的人喜欢它。",
        "fits_interest": "它符合你的“{label}”兴趣。",
        "counterfactual": "如果没有{items}，它会跌出你的前{k}名。",
        "moved_diversity": "为了让推荐更多样，它被排到了前面。",
        "moved_calibration": "展示它是为了贴合你的兴趣比例。",
        "out_blocked_item": "未显示：该条目已被屏蔽。",
        "out_blocked_attribute": "未显示：{attribute}类已被屏蔽。",
        "out_blocked_attribute_any": "未显示：它的一个属性已被屏蔽。",
        "out_attribute_cap": "未显示：列表中已有{cap}个{attribute}条目。",
        "out_attribute_cap_any": "未显示：列表中已有{cap}个与它属性相同的条目。",
        "out_diversity": "为了让推荐更多样，它被移出了列表。",
        "out_calibration": "为了贴合你的兴趣比例，它被移出了列表。",
        "group_item": "因为你历史中的{item}",
        "group_interest": "为你的“{label}”兴趣推荐",
        "group_popular": "与你相似的人喜欢",
        "card_also": "还因为{evidence}。",
        "card_attributes": "{attributes}。",
        "card_none": "主要是上面的共同理由。",
        "not_found": "我找不到名为{item}的条目。",
        "help": "我可以回答这些问题：",
        "not_in_history": "{item}不在你的历史记录里，去掉它不会改变任何推荐。",
        "what_if_same": "如果去掉{item}，你的前{k}名不会变化。",
        "what_if_change": "如果去掉{item}，你的前{k}名会变化：新出现{new}；不再出现{gone}。",
        "more_like": "如果你喜欢{item}，模型接下来会推荐：{top}。",
        "no_interests": "我还看不出你的兴趣。",
        "interests": "你的兴趣：{parts}。",
        "interest_part": "{label}（占{share:.0%}，{horizon}）",
        "separator": "；",
        "in_history": "{item}已经在你的历史记录里，所以不会再推荐。",
        "avoided": "你把{item}标记为不感兴趣，所以它和相似的条目会被压低。",
        "removed": "你移除了{item}，所以它不会再出现。",
        "blocked": "{item}在这里已被屏蔽，所以不会被推荐。",
        "recent": "近期",
        "long-term": "长期",
    },
}  # fmt: skip

#: Chinese names of the MovieLens and MovieTweetings (IMDb) genres
ZH_ATTRIBUTES: dict[str, str] = {
    "Action": "动作", "Adventure": "冒险", "Animation": "动画", "Children's": "儿童", "Children": "儿童",
    "Comedy": "喜剧", "Crime": "犯罪", "Documentary": "纪录片", "Drama": "剧情", "Fantasy": "奇幻",
    "Film-Noir": "黑色电影", "Horror": "恐怖", "Musical": "歌舞", "Mystery": "悬疑", "Romance": "爱情",
    "Sci-Fi": "科幻", "Thriller": "惊悚", "War": "战争", "Western": "西部", "Biography": "传记",
    "Family": "家庭", "History": "历史片", "Music": "音乐", "Sport": "体育", "News": "新闻",
    "Reality-TV": "真人秀", "Talk-Show": "脱口秀", "Game-Show": "游戏节目", "Short": "短片",
    "Adult": "成人", "unknown": "未分类",
}  # fmt: skip


def say(lang: str, key: str, **fields: Any) -> str:
    return MESSAGES[lang][key].format(**fields)


def quote(title: str, lang: str) -> str:
    return f"《{title}》" if lang == "zh" else f"“{title}”"


def join(parts: Sequence[str], lang: str) -> str:
    """``a, b and c`` in English, ``a、b、c`` in Chinese."""
    if lang == "zh":
        return "、".join(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def quoted_list(titles: Sequence[str], lang: str) -> str:
    """Quoted titles separated by commas (``、`` in Chinese)."""
    return ("、" if lang == "zh" else ", ").join(quote(t, lang) for t in titles)


def attribute_name(attribute: str, lang: str) -> str | None:
    """The attribute as said in ``lang``; None in Chinese when no translation is known."""
    if lang != "zh":
        return attribute
    return ZH_ATTRIBUTES.get(attribute)


def attribute_names(attributes: Sequence[str], lang: str) -> list[str]:
    """The attributes that can be said in ``lang`` (in Chinese: those with a known translation)."""
    return [n for n in (attribute_name(a, lang) for a in attributes) if n is not None]


def interest_label(label: str, lang: str) -> str | None:
    """An interest's label (its keywords joined by `` & ``) in ``lang``: in Chinese every keyword
    translated, or None when one has no known translation, so that the sentence names the evidence
    rather than a half-English interest."""
    if lang != "zh":
        return label
    names = [attribute_name(k, lang) for k in label.split(" & ")]
    if any(n is None for n in names):
        return None
    return "、".join(n for n in names if n)
