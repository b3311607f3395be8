"""Explanations computed from the model that made the ranking, and checked against it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from whyrec.explain.context import Occlusion, ScoringContext, build_context
from whyrec.explain.counterfactual import explain_why_not, find_counterfactual
from whyrec.explain.interests import STOPWORDS, TermIndex, build_interests, label_fits
from whyrec.explain.messages import say
from whyrec.explain.phrasing import Phraser, PromptStyle, guarded_phrase
from whyrec.explain.sentences import GroundingChecker, template_sentence
from whyrec.explain.types import (
    Evidence,
    Explanation,
    Interest,
    InterestProfile,
    Lang,
    Sentence,
    SentenceFacts,
)
from whyrec.models.config import Config, setting
from whyrec.training.controls import MovedOut, RankingControls
from whyrec.training.recommender import Recommendation, Recommender, rank_of


@dataclass(frozen=True)
class ExplainConfig(Config):
    window: int = setting(50, ge=1)  # occlude the most recent ``window`` history items
    top_evidence: int = setting(5, ge=1)
    counterfactual_max: int = setting(5, ge=1)
    interest_half_life: float = setting(20.0, gt=0)
    seed: int = setting(0, ge=0)
    llm_prompt: PromptStyle = "turns"  # how LLM phrasing is asked for (see phrasing.build_prompt)
    # how an item is occluded: "remove" deletes it (later items move up a position), "mask" hides
    # it in place (positions kept); the same for models that ignore order. Chosen by measurement:
    # docs/explanations.md
    occlusion: Occlusion = "remove"


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

    def _context(
        self, items: list[str], exclude: Iterable[str] = (), avoid: Iterable[str] = ()
    ) -> ScoringContext:
        return build_context(self.rec, items, self.config.window, exclude, avoid, self.config.occlusion)

    def contributions(self, history: Sequence[str], item_id: str) -> tuple[np.ndarray, int]:
        """Occlusion: score drop of ``item_id`` when each of the last ``window`` items is occluded.

        Returns the contributions (aligned with the window) and where the window starts.
        """
        ctx = self._context(list(history))
        return ctx.contributions(self.rec.item_index(item_id)), ctx.start

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
        controls: RankingControls | None = None,
    ) -> list[Recommendation]:
        removed = set(remove)
        kept = [h for h in self._history(user_id, history) if h not in removed]
        return self.rec.recommend(history=kept, k=k, exclude=list(exclude) + list(removed), avoid=avoid,
                                  controls=controls)  # fmt: skip

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
        ctx: ScoringContext,
        item_id: str,
        user_id: str | None,
        k: int,
        lang: Lang,
        counterfactual: bool,
        use_llm: bool,
        shown: Recommendation | None = None,
    ) -> Explanation:
        """SHOWN: the item as a list shows it (its rank there and, under ranking controls, the
        control that moved it in); None: as the plain ranking places it."""
        item_idx = self.rec.item_index(item_id)
        rank, contributions = rank_of(ctx.final, item_idx), ctx.contributions(item_idx)
        if shown is not None:
            rank = shown.rank
        evidence = self._evidence(ctx, contributions)
        if ctx.profile is None:
            ctx.profile = self.interests(user_id, history=ctx.items)
        served = self._interest_served(ctx.profile, ctx.window, contributions, item_idx)
        shared_attrs, shared_words = self._shared(item_id, [e.item_id for e in evidence[:3]])
        recommended = rank <= k
        cf = (
            find_counterfactual(self.rec, ctx, item_idx, k, self.config.counterfactual_max)
            if counterfactual and recommended
            else None
        )
        top = self.config.top_evidence
        why_not = None if recommended else explain_why_not(self.rec, ctx, item_idx, rank, k, top)
        fits = served is not None and not served.muted and label_fits(served, self.rec.catalog, item_id)
        named = served if fits else None
        facts = SentenceFacts(
            title=self.rec.catalog.title(item_id),
            rank=rank,
            k=k,
            evidence=tuple(e.title for e in evidence[:3]),
            attributes=shared_attrs[:3],
            interest=named.label if named else None,
            counterfactual=cf.removed_titles if cf and cf.found else None,
            why_not=why_not,
            moved_by=shown.moved_by if shown is not None else None,
        )
        allowed = self._allowed(facts, shared_attrs, served)
        if facts.moved_by:  # a fixed phrase, never a title ("Shown to match ..." is not the film "Match")
            allowed.append(say(lang, f"moved_{facts.moved_by}").strip())
        template = template_sentence(facts, lang)
        sentence = self._sentence(template, facts, lang, allowed, use_llm)
        return Explanation(
            user_id=user_id,
            item_id=item_id,
            title=facts.title,
            model=self.rec.model.name,
            score=float(ctx.raw[item_idx]),
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
            evidence_window=len(ctx.window),
            grounded_on=tuple(dict.fromkeys(allowed)),
            interest_named=named is not None,
        )

    def _evidence(self, ctx: ScoringContext, contributions: np.ndarray) -> tuple[Evidence, ...]:
        """The window items that pushed the score up, strongest first."""
        window, start = ctx.window, ctx.start
        order = np.argsort(-contributions, kind="stable")
        return tuple(
            Evidence(window[p], self.rec.catalog.title(window[p]), float(contributions[p]), start + int(p))
            for p in order[: self.config.top_evidence]
            if contributions[p] > 0
        )

    @staticmethod
    def _allowed(facts: SentenceFacts, shared_attrs: tuple[str, ...], served: Interest | None) -> list[str]:
        """Every name a sentence about these facts may mention."""
        allowed = [facts.title, *facts.evidence, *shared_attrs, *(served.keywords if served else ())]
        allowed += list(facts.counterfactual or ())
        if facts.why_not:
            allowed += [e.title for e in facts.why_not.evidence_against[:1]]
            if facts.why_not.best_lift:
                allowed.append(facts.why_not.best_lift.title)
        return allowed

    def _sentence(
        self, template: str, facts: SentenceFacts, lang: Lang, allowed: list[str], use_llm: bool
    ) -> Sentence:
        """The LLM's phrasing when it passes the guard, else the template; never an ungrounded one."""
        sentence = (
            guarded_phrase(
                self.phraser, template, facts, lang, allowed, self.grounding, self.config.llm_prompt
            )
            if use_llm and self.phraser is not None
            else Sentence(template, lang, "template", "template" if not use_llm else "no LLM configured")
        )
        outside = self.grounding.ungrounded(sentence.text, allowed)
        if outside:  # never show an ungrounded sentence, whatever produced it
            sentence = Sentence(template, lang, "template", f"ungrounded: {outside[0]!r}", grounded=False)
        return sentence

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
        controls: RankingControls | None = None,
    ) -> list[tuple[Recommendation, Explanation]]:
        """The top-k, each with its explanation (under ranking CONTROLS if given)."""
        return self.explain_list(
            user_id, history=history, k=k, lang=lang, exclude=exclude, avoid=avoid,
            counterfactual=counterfactual, profile=profile, controls=controls,
        )[0]  # fmt: skip

    def explain_list(
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
        controls: RankingControls | None = None,
    ) -> tuple[list[tuple[Recommendation, Explanation]], tuple[MovedOut, ...]]:
        """The top-k explained, and the items of the plain top-k that ranking CONTROLS left out.

        Under controls each explanation gives the item's rank in the list shown, and its sentence
        says when a control moved it in. A counterfactual is verified against the plain ranking,
        so a list under controls carries none."""
        ctx = self._context(self._history(user_id, history), exclude, avoid)
        ctx.profile = profile  # None: computed once, on first use
        if controls is None or controls.plain:
            shown = self.rec.top_k(ctx.final, k)
            ctx.prefetch(self.rec.item_index(r.item_id) for r in shown)
            return [  # each item's rank is its place in the list (no need to count the catalogue)
                (r, self._explain_in(ctx, r.item_id, user_id, k, lang, counterfactual, False, shown=r))
                for r in shown
            ], ()
        ranking = self.rec.rerank(ctx.final, k, controls, ctx.items)
        placed = self.rec.placed(ranking)
        ctx.prefetch(self.rec.item_index(r.item_id) for r in placed)
        return [
            (r, self._explain_in(ctx, r.item_id, user_id, k, lang, False, use_llm=False, shown=r))
            for r in placed
        ], ranking.moved_out

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


def _replace_muted(interest: Interest, muted: bool) -> Interest:
    return replace(interest, muted=muted) if muted else interest
