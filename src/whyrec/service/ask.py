"""Answers to free-text questions, in the question's language, computed by the explainer."""

from __future__ import annotations

from typing import Any

from whyrec.events import LiveState
from whyrec.explain.messages import quote, quoted_list, say
from whyrec.service.intents import Intent, Lang, TitleIndex, parse
from whyrec.service.live import LiveRecommender
from whyrec.service.schemas import (
    AskOut,
    ItemOut,
    RecommendationOut,
    explanation_out,
    interest_out,
    recommendation_out,
)
from whyrec.training.recommender import Recommendation

EXAMPLES = {
    "en": ("Why did you recommend {rec}?", "Why not {other}?", "What if I remove {seen}?",
           "What are my interests?", "More like {seen}"),
    "zh": ("为什么推荐《{rec}》？", "为什么不推荐《{other}》？", "如果我删除《{seen}》会怎样？",
           "我的兴趣是什么？", "和《{seen}》类似的"),
}  # fmt: skip


def _say(lang: Lang, key: str, **fields: Any) -> str:
    return say(lang, key, **fields)


def _q(title: str, lang: Lang) -> str:
    return quote(title, lang)


def _list(titles: list[str], lang: Lang) -> str:
    return quoted_list(titles, lang)


class Answerer:
    """Parses a question, finds the item it names and answers it from the user's live state."""

    def __init__(self, live: LiveRecommender) -> None:
        self.live = live
        self.titles = TitleIndex(live.rec.catalog, live.rec.items.ids)

    def ask(self, state: LiveState, question: str, k: int) -> AskOut:
        intent = parse(question)
        lang = intent.lang
        base: dict[str, Any] = {"question": question, "lang": lang, "intent": intent.kind}
        if intent.kind == "unknown":
            return AskOut(**base, answer=_say(lang, "help"), can_ask=self.can_ask(state, lang))
        if intent.kind == "interests":
            return self._interests(state, lang, base)
        item_id = self.titles.resolve(intent.phrase, self._preferred(state, intent, k))
        if item_id is None:
            text = _say(lang, "not_found", item=_q(intent.phrase, lang)) + " " + _say(lang, "help")
            return AskOut(**base, answer=text, can_ask=self.can_ask(state, lang))
        item = ItemOut(item_id=item_id, title=self.live.rec.catalog.title(item_id))
        if intent.kind == "what_if":
            return self._what_if(state, lang, item, k, base)
        if intent.kind == "more_like":
            return self._more_like(state, lang, item, k, base)
        return self._why(state, lang, item, k, base)

    def can_ask(self, state: LiveState, lang: Lang) -> list[str]:
        """Examples of every kind of question, filled with this user's own items."""
        recs = self.live.recommend(state, 15)  # the last one is an example outside the top 10
        catalog = self.live.rec.catalog
        rec = catalog.title(recs[0].item_id) if recs else "…"
        other = catalog.title(recs[-1].item_id) if recs else "…"
        seen = catalog.title(state.history[-1]) if state.history else "…"
        return [example.format(rec=rec, other=other, seen=seen) for example in EXAMPLES[lang]]

    # -- one answer per intent --------------------------------------------------------------------
    def _why(self, state: LiveState, lang: Lang, item: ItemOut, k: int, base: dict[str, Any]) -> AskOut:
        """Why and why-not share one answer: the explanation says which of the two it is."""
        hidden = {"in_history": state.history, "avoided": state.avoid, "removed": state.removed}
        for key, items in hidden.items():
            if item.item_id in items:
                return AskOut(**base, item=item, answer=_say(lang, key, item=_q(item.title, lang)))
        if self.live.blocked(item.item_id):
            return AskOut(**base, item=item, answer=_say(lang, "blocked", item=_q(item.title, lang)))
        explanation = self.live.explain(state, item.item_id, k, lang)
        return AskOut(**base, item=item, answer=explanation.sentence.text,
                      explanation=explanation_out(explanation))  # fmt: skip

    def _what_if(self, state: LiveState, lang: Lang, item: ItemOut, k: int, base: dict[str, Any]) -> AskOut:
        quoted = _q(item.title, lang)
        if item.item_id not in state.history:
            return AskOut(**base, item=item, answer=_say(lang, "not_in_history", item=quoted))
        change = self.live.what_if(state, [item.item_id], k)
        entered = [r.title for r in change.entered]
        left = [r.title for r in change.left]
        if not entered and not left:
            text = _say(lang, "what_if_same", item=quoted, k=k)
        else:
            text = _say(lang, "what_if_change", item=quoted, k=k, n_new=len(entered),
                        new=_list(entered, lang), n_gone=len(left), gone=_list(left, lang))  # fmt: skip
        return AskOut(**base, item=item, answer=text, recommendations=self._recs(change.after))

    def _more_like(self, state: LiveState, lang: Lang, item: ItemOut, k: int, base: dict[str, Any]) -> AskOut:
        recs = self.live.more_like(state, item.item_id, k)
        top = _list([r.title for r in recs[:3]], lang)
        text = _say(lang, "more_like", item=_q(item.title, lang), top=top)
        return AskOut(**base, item=item, answer=text, recommendations=self._recs(recs))

    def _interests(self, state: LiveState, lang: Lang, base: dict[str, Any]) -> AskOut:
        visible = [i for i in self.live.interests(state).interests if not i.muted]
        parts = [_say(lang, "interest_part", label=i.label, share=i.share, horizon=_say(lang, i.horizon))
                 for i in visible]  # fmt: skip
        text = _say(lang, "interests", parts=_say(lang, "separator").join(parts))
        if not visible:
            text = _say(lang, "no_interests")
        titles = self.live.rec.catalog.titles
        return AskOut(**base, answer=text, interests=[interest_out(i, titles) for i in visible])

    # -- helpers ----------------------------------------------------------------------------------
    def _preferred(self, state: LiveState, intent: Intent, k: int) -> list[str]:
        """Where the named item most likely is, so that duplicate titles resolve to the right one."""
        if intent.kind == "what_if":
            return list(reversed(state.history))
        recs = [r.item_id for r in self.live.recommend(state, k)]
        if intent.kind == "more_like":
            return [*reversed(state.history), *recs]
        return recs

    def _recs(self, recs: list[Recommendation]) -> list[RecommendationOut]:
        return [recommendation_out(r, self.live.rec.catalog.attrs(r.item_id)) for r in recs]
