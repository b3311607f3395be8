"""Explanations computed from the model that made the ranking, and checked against it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from whyrec.explain.interests import STOPWORDS, TermIndex, build_interests
from whyrec.explain.phrasing import Phraser, guarded_phrase
from whyrec.explain.sentences import GroundingChecker, template_sentence
from whyrec.explain.types import (
    Counterfactual,
    Evidence,
    Explanation,
    Interest,
    InterestProfile,
    Lang,
    Lift,
    Sentence,
    WhyNot,
)
from whyrec.training.recommender import Recommendation, Recommender, rank_of


@dataclass
class _Context:
    """One history scored once: the base ranking and every occluded variant, shared by all the
    items explained for it."""

    items: list[str]
    exclude: list[str]
    avoid: list[str]
    raw: np.ndarray  # (n_items,) model scores for the full history
    final: np.ndarray  # (n_items,) what the user sees (seen/excluded at -inf)
    start: int  # the occlusion window is items[start:]
    drops: np.ndarray  # (window, n_items): score with full history - score with that item removed
    profile: InterestProfile | None = None

    @property
    def window(self) -> list[str]:
        return self.items[self.start :]


@dataclass(frozen=True)
class ExplainConfig:
    window: int = 50  # occlude the most recent ``window`` history items
    top_evidence: int = 5
    counterfactual_max: int = 5
    interest_half_life: float = 20.0
    seed: int = 0


class Explainer:
    """Why, why-not, what-if and interests for a :class:`Recommender`.

    Every number comes from re-scoring the real model: evidence by occlusion (all variants of a
    history in one batched call), counterfactuals by greedy removal verified by a final
    re-scoring, why-not ranks from the same ranking the user sees.
    """

    def __init__(
        self, recommender: Recommender, config: ExplainConfig | None = None, phraser: Phraser | None = None
    ) -> None:
        self.rec = recommender
        self.config = config or ExplainConfig()
        self.phraser = phraser
        self.terms = TermIndex(recommender.catalog, recommender.items.ids)
        self._checker: GroundingChecker | None = None

    def refresh_catalog(self) -> None:  # after items were added to the recommender's catalogue
        self.terms, self._checker = TermIndex(self.rec.catalog, self.rec.items.ids), None

    @property
    def grounding(self) -> GroundingChecker:
        if self._checker is None:
            self._checker = GroundingChecker(self.rec.catalog, self.rec.items.ids)
        return self._checker

    # -- the building blocks ------------------------------------------------------------------
    def _history(self, user_id: str | None, history: Sequence[str] | None) -> list[str]:
        if history is not None:
            return [h for h in history if h in self.rec.items]
        if user_id is None:
            raise ValueError("give a user_id or a history")
        return self.rec.history(user_id)

    def _ranks(
        self,
        histories: list[list[str]],
        item_idx: int,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank (1-based) and raw score of ``item_idx`` under each history, as the user would see it."""
        exclude, avoid = list(exclude), list(avoid)
        ranks, scores = np.zeros(len(histories), dtype=np.int64), np.zeros(len(histories))
        raw = self.rec.score_indices([self.rec.to_indices(h) for h in histories])
        for row, history in enumerate(histories):
            final = self.rec.adjust(raw[row], history, exclude=exclude, avoid=avoid)
            scores[row] = raw[row, item_idx]
            ranks[row] = rank_of(final, item_idx)
        return ranks, scores

    def _context(self, items: list[str], exclude: Iterable[str] = (), avoid: Iterable[str] = ()) -> _Context:
        """Score the history and all its one-item-removed variants in one batched call."""
        indices = self.rec.to_indices(items)
        start = max(0, len(indices) - self.config.window)
        variants = [indices] + [np.delete(indices, p) for p in range(start, len(indices))]
        raw = self.rec.score_indices(variants)
        exclude, avoid = list(exclude), list(avoid)
        final = self.rec.adjust(raw[0], items, exclude=exclude, avoid=avoid)
        return _Context(items, exclude, avoid, raw[0], final, start, raw[0][None, :] - raw[1:])

    def contributions(self, history: Sequence[str], item_id: str) -> tuple[np.ndarray, int]:
        """Occlusion: score drop of ``item_id`` when each of the last ``window`` items is removed.

        Returns the contributions (aligned with the window) and where the window starts.
        """
        ctx = self._context(list(history))
        return ctx.drops[:, self.rec.item_index(item_id)], ctx.start

    def interests(
        self, user_id: str | None = None, history: Sequence[str] | None = None, muted: Iterable[str] = ()
    ) -> InterestProfile:
        items = self._history(user_id, history)
        vectors = self.rec.item_vectors[self.rec.to_indices(items)] if items else np.zeros((0, 1))
        found = build_interests(items, vectors, self.terms, self.config.interest_half_life, self.config.seed)
        muted = set(muted)
        found = [_replace_muted(i, i.label in muted) for i in found]
        return InterestProfile(user_id, tuple(found))

    def what_if(
        self,
        user_id: str | None = None,
        *,
        remove: Iterable[str],
        history: Sequence[str] | None = None,
        k: int = 10,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
    ) -> list[Recommendation]:
        removed = set(remove)
        kept = [h for h in self._history(user_id, history) if h not in removed]
        return self.rec.recommend(history=kept, k=k, exclude=list(exclude) + list(removed), avoid=avoid)

    # -- the full explanation ------------------------------------------------------------------
    def explain(
        self,
        item_id: str,
        *,
        user_id: str | None = None,
        history: Sequence[str] | None = None,
        k: int = 10,
        lang: Lang = "en",
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        counterfactual: bool = True,
        use_llm: bool = False,
        profile: InterestProfile | None = None,
    ) -> Explanation:
        self.rec.item_index(item_id)  # unknown item: a clear error before any work
        ctx = self._context(self._history(user_id, history), exclude, avoid)
        ctx.profile = profile
        return self._explain_in(ctx, item_id, user_id, k, lang, counterfactual, use_llm)

    def _explain_in(
        self,
        ctx: _Context,
        item_id: str,
        user_id: str | None,
        k: int,
        lang: Lang,
        counterfactual: bool,
        use_llm: bool,
    ) -> Explanation:
        item_idx = self.rec.item_index(item_id)
        items, exclude, avoid, start, window = ctx.items, ctx.exclude, ctx.avoid, ctx.start, ctx.window
        rank, score = rank_of(ctx.final, item_idx), float(ctx.raw[item_idx])
        contributions = ctx.drops[:, item_idx]
        order = np.argsort(-contributions, kind="stable")
        evidence = tuple(
            Evidence(window[p], self.rec.catalog.title(window[p]), float(contributions[p]), start + int(p))
            for p in order[: self.config.top_evidence]
            if contributions[p] > 0
        )
        if ctx.profile is None:
            ctx.profile = self.interests(user_id, history=items)
        profile = ctx.profile
        served = self._interest_served(profile, window, contributions, item_idx)
        shared_attrs, shared_words = self._shared(item_id, [e.item_id for e in evidence[:3]])
        recommended = rank <= k
        cf = (
            self._counterfactual(items, item_idx, k, exclude, avoid, window, contributions)
            if counterfactual and recommended
            else None
        )
        why_not = None if recommended else self._why_not(ctx, item_idx, rank, k, contributions)
        title = self.rec.catalog.title(item_id)
        facts: dict[str, Any] = {
            "title": title,
            "evidence": [e.title for e in evidence[:3]],
            "attributes": list(shared_attrs[:3]),
            "interest": served.label if served and not served.muted else None,
            "rank": rank,
            "k": k,
            "counterfactual": list(cf.removed_titles) if cf and cf.found else None,
            "why_not": why_not,
        }
        template = template_sentence(facts, lang)
        allowed = [title, *facts["evidence"], *shared_attrs, *(served.keywords if served else ())]
        if cf and cf.found:
            allowed += list(cf.removed_titles)
        if why_not:
            allowed += [e.title for e in why_not.evidence_against[:1]]
            if why_not.best_lift:
                allowed.append(why_not.best_lift.title)
        sentence = (
            guarded_phrase(self.phraser, template, facts, lang, allowed, self.grounding)
            if use_llm and self.phraser is not None
            else Sentence(template, lang, "template", "template" if not use_llm else "no LLM configured")
        )
        allowed_check = self.grounding.ungrounded(sentence.text, allowed)
        if allowed_check:  # never show an ungrounded sentence, whatever produced it
            sentence = Sentence(
                template, lang, "template", f"ungrounded: {allowed_check[0]!r}", grounded=False
            )
        return Explanation(
            user_id=user_id,
            item_id=item_id,
            title=title,
            model=self.rec.model.name,
            score=score,
            rank=rank,
            k=k,
            recommended=recommended,
            evidence=evidence,
            interest=served,
            shared_attributes=shared_attrs,
            shared_words=shared_words,
            counterfactual=cf,
            why_not=why_not,
            sentence=sentence,
            template_sentence=template,
            evidence_window=len(window),
            grounded_on=tuple(dict.fromkeys(allowed)),
        )

    def explain_recommendations(
        self,
        user_id: str | None = None,
        *,
        history: Sequence[str] | None = None,
        k: int = 10,
        lang: Lang = "en",
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        counterfactual: bool = False,
        profile: InterestProfile | None = None,
    ) -> list[tuple[Recommendation, Explanation]]:
        ctx = self._context(self._history(user_id, history), exclude, avoid)
        ctx.profile = profile  # None: computed once, on first use
        return [
            (r, self._explain_in(ctx, r.item_id, user_id, k, lang, counterfactual, use_llm=False))
            for r in self.rec.top_k(ctx.final, k)
        ]

    # -- parts -----------------------------------------------------------------------------------
    def _interest_served(
        self, profile: InterestProfile, window: list[str], contributions: np.ndarray, item_idx: int
    ) -> Interest | None:
        if not profile.interests:
            return None
        support = {}
        position = {item: p for p, item in enumerate(window)}
        for interest in profile.interests:
            support[interest.interest_id] = sum(
                max(float(contributions[position[i]]), 0.0) for i in interest.item_ids if i in position
            )
        best = max(profile.interests, key=lambda i: support[i.interest_id])
        if support[best.interest_id] > 0:
            return best
        # nothing in the window pushed it up: fall back to the nearest interest in LM space
        item_vector = self.rec.item_vectors[item_idx]

        def closeness(interest: Interest) -> float:
            vectors = self.rec.item_vectors[self.rec.to_indices(interest.item_ids)]
            return float((vectors @ item_vector).mean())

        return max(profile.interests, key=closeness)

    def _shared(self, item_id: str, evidence_ids: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        catalog = self.rec.catalog
        attrs = catalog.attrs(item_id)
        # an attribute counts as shared when most of the evidence items have it, so that
        # "A, B and C ... share Drama with it" is true of them, not of one of them
        needed = (len(evidence_ids) + 1) // 2
        shared_attrs = tuple(a for a in attrs if sum(a in catalog.attrs(e) for e in evidence_ids) >= needed)

        def words(i: str) -> set[str]:
            return {w for w in re.findall(r"[^\W\d_]{4,}", catalog.title(i).lower()) if w not in STOPWORDS}

        mine = words(item_id)
        shared_words = (
            tuple(sorted(mine & set().union(*(words(e) for e in evidence_ids)))) if evidence_ids else ()
        )
        return shared_attrs, shared_words

    def _counterfactual(
        self,
        items: list[str],
        item_idx: int,
        k: int,
        exclude: list[str],
        avoid: list[str],
        window: list[str],
        contributions: np.ndarray,
    ) -> Counterfactual:
        """Greedy: at each step try removing each remaining window item (one batched call) and
        keep the removal that lowers the item's rank most; stop when it leaves the top-k."""
        limit = self.config.counterfactual_max
        removed: list[str] = []
        candidates = [w for _, w in sorted(zip(-contributions, window, strict=True), key=lambda t: t[0])]
        candidates = candidates[: max(limit * 3, 10)]  # strongest supporters first
        rank = None
        for _ in range(limit):
            options = [c for c in candidates if c not in removed]
            if not options:
                break
            trial = [[h for h in items if h not in {*removed, c}] for c in options]
            ranks, scores = self._ranks(trial, item_idx, exclude + removed, avoid)
            best = int(np.lexsort((scores, -ranks))[0])  # highest rank number, then lowest score
            removed.append(options[best])
            rank = int(ranks[best])
            if rank > k:
                break
        found = rank is not None and rank > k
        if found and len(removed) > 1:  # prune members that are not needed
            for member in list(removed):
                smaller = [r for r in removed if r != member]
                kept = [h for h in items if h not in smaller]
                r, _ = self._ranks([kept], item_idx, exclude + smaller, avoid)
                if r[0] > k:
                    removed = smaller
        verified_rank = None
        if found:  # the final, independent check
            kept = [h for h in items if h not in set(removed)]
            verified_rank = int(self._ranks([kept], item_idx, exclude + removed, avoid)[0][0])
        titles = tuple(self.rec.catalog.title(r) for r in removed) if found else ()
        return Counterfactual(
            found=bool(found and verified_rank is not None and verified_rank > k),
            removed=tuple(removed) if found else (),
            removed_titles=titles,
            new_rank=verified_rank,
            verified=verified_rank is not None and verified_rank > k,
            max_size=limit,
        )

    def _why_not(self, ctx: _Context, item_idx: int, rank: int, k: int, contributions: np.ndarray) -> WhyNot:
        items, exclude, avoid, window, start = ctx.items, ctx.exclude, ctx.avoid, ctx.window, ctx.start
        profile = ctx.profile or InterestProfile(None, ())
        against = tuple(
            Evidence(window[p], self.rec.catalog.title(window[p]), float(contributions[p]), start + int(p))
            for p in np.argsort(contributions, kind="stable")[: self.config.top_evidence]
            if contributions[p] < 0
        )
        final = ctx.final
        kth = np.sort(final[np.isfinite(final)])[::-1][min(k, int(np.isfinite(final).sum())) - 1]
        gap = float(kth - final[item_idx])
        # lifts: focus the history on one interest (its items only), or on one supporting item
        trials: list[tuple[Lift, list[str]]] = []
        for interest in profile.interests:
            focus = [h for h in items if h in set(interest.item_ids)]
            trials.append((Lift("interest", interest.label, interest.label, 0), focus))
        if len(contributions) and contributions.max() > 0:
            supporter = window[int(np.argmax(contributions))]
            trials.append(
                (
                    Lift("item", supporter, self.rec.catalog.title(supporter), 0),
                    [h for h in items if h != supporter] + [supporter],
                )
            )
        best_lift = None
        if trials:
            ranks, _ = self._ranks([t[1] for t in trials], item_idx, exclude, avoid)
            best = int(np.argmin(ranks))
            if ranks[best] < rank:
                lift = trials[best][0]
                best_lift = Lift(lift.kind, lift.ref, lift.title, int(ranks[best]))
        return WhyNot(rank=rank, k=k, score_gap=gap, evidence_against=against, best_lift=best_lift)


def _replace_muted(interest: Interest, muted: bool) -> Interest:
    from dataclasses import replace

    return replace(interest, muted=muted) if muted else interest
