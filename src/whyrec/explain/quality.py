"""Explanation quality measured against the model, each metric able to fail.

- Deletion fidelity: the rank drop of a recommended item when its top-3 evidence is removed from
  the history, against two baselines drawn from the same window the explanation can draw on:
  3 random items of that window, and the 3 most recent items (the obvious heuristic for a
  sequence model). A ratio near 1 means the evidence is no better than the baseline. For models
  that read positions, the same with the items hidden in place (``_in_place``: every other item
  keeps its position), so either occlusion's evidence can be judged by either test.
- Counterfactuals: the share of recommended items for which a set of at most
  ``counterfactual_max`` items was found, its mean size, and its validity checked through the
  public recommendation path (:meth:`Recommender.recommend` with the history minus the set, the
  set kept out of the list as the what-if API does), not through the explainer's own scoring.
- Grounding: on the sentence actually shown (LLM phrasing when requested, in the requested
  language). A sentence is grounded when every catalogue title or attribute it names belongs to
  the explanation's facts, and every history item it names as a reason really supports the item:
  removing it from the history lowers the item's score (re-scored here).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from whyrec.explain.context import occluded
from whyrec.explain.explainer import Explainer
from whyrec.explain.phrasing import Phraser
from whyrec.explain.types import Explanation, Lang
from whyrec.explain.usefulness import usefulness_metrics
from whyrec.models.base import reads_positions
from whyrec.training.recommender import Recommender, rank_of

if TYPE_CHECKING:
    from whyrec.models.base import Scorer
    from whyrec.training.pipeline import Prepared

MIN_HISTORY = 6
RANDOM_DRAWS = 5


def model_window(model: Scorer, explainer: Explainer, history_length: int) -> int:
    """Where the window starts that both the explanation and the model read: the explainer's
    occlusion window, cut to the model's own ``max_len`` when it reads only that many items."""
    reads = getattr(getattr(model, "config", None), "max_len", None)
    size = min(explainer.config.window, int(reads) if reads else history_length)
    return max(0, history_length - size)


def facts_of(explanation: Explanation) -> list[str]:
    """The names a sentence about EXPLANATION may use, built from its structured facts."""
    names = [explanation.title, *(e.title for e in explanation.evidence), *explanation.shared_attributes]
    if explanation.interest is not None and not explanation.interest.muted:
        names += [explanation.interest.label, *explanation.interest.keywords]
    if explanation.counterfactual is not None and explanation.counterfactual.found:
        names += list(explanation.counterfactual.removed_titles)
    return names


def named_reasons(explanation: Explanation, text: str) -> list[str]:
    """The evidence items whose title the sentence names (the reasons it gives)."""
    lowered = text.lower()
    return [e.item_id for e in explanation.evidence if e.title.lower() in lowered]


def hidden_in_place(indices: np.ndarray, history: list[str], removed: list[str]) -> np.ndarray:
    """INDICES (of HISTORY) with every occurrence of the REMOVED items hidden where it stands."""
    gone = set(removed)
    return occluded(indices, [p for p, h in enumerate(history) if h in gone], "mask", positional=True)


def explanation_metrics(
    prepared: Prepared,
    model: Scorer,
    n_users: int = 200,
    k: int = 10,
    seed: int = 0,
    progress: bool = True,
    *,
    lang: Lang = "en",
    phraser: Phraser | None = None,
    llm_users: int = 50,
    llm_per_user: int | None = None,
    explainer: Explainer | None = None,
) -> dict[str, Any]:
    """Explain the top-``k`` of up to ``n_users`` test users (history >= 6 items, seeded sample).

    A rank drop is the item's new rank minus its old rank after removing items from the history
    (removed items stay out of the candidates, so only the model's change of mind counts). With
    a ``phraser``, the first ``llm_users`` users' sentences are phrased by it (and checked, as
    when served): all ``k`` of them, or each user's top ``llm_per_user``. ``explainer`` replaces
    the standard one (to measure another explainer).
    """
    split = prepared.split
    histories, _ = split.test()
    if explainer is None:
        rec = Recommender(model, split.items, prepared.dataset.catalog, prepared.item_vectors, {})
        explainer = Explainer(rec, phraser=phraser)
    rec = explainer.rec
    rng = np.random.default_rng(seed)
    eligible = [u for u, h in enumerate(histories) if len(h) >= MIN_HISTORY]
    users = sorted(rng.choice(eligible, size=min(n_users, len(eligible)), replace=False).tolist())
    drops: dict[str, list[int]] = {
        kind: [] for kind in ("top3", "random", "recent", "top3_in_place", "random_in_place")
    }
    positional = reads_positions(model)
    sentences: list[str] = []
    cf_found = cf_valid = covered = grounded = 0
    cf_sizes: list[int] = []
    llm_outcomes: Counter[str] = Counter()
    explain_seconds = []
    per_user: list[list[Explanation]] = []
    for n, u in enumerate(
        tqdm(users, desc=f"explaining {model.name}", unit="user", disable=not progress, leave=False)
    ):
        history = split.items.lookup_ids(histories[u])
        start = time.perf_counter()
        pairs = explainer.explain_recommendations(history=history, k=k, lang=lang, counterfactual=True)
        explain_seconds.append(time.perf_counter() - start)
        per_user.append([e for _, e in pairs])
        use_llm = phraser is not None and n < llm_users
        window_start = min(model_window(model, explainer, len(history)), len(history) - 3)
        plan: list[tuple[int, int, str, list[str]]] = []  # (item_idx, old rank, kind, items removed)
        checks: list[tuple[int, list[str]]] = []  # (item_idx, reasons named) per shown sentence
        for recommendation, explanation in pairs:
            item_idx = rec.item_index(recommendation.item_id)
            top3 = [e.item_id for e in explanation.evidence[:3]]
            if len(top3) < 3:  # fewer than 3 supporters: fill with the next strongest items
                contributions, start_pos = explainer.contributions(history, recommendation.item_id)
                window = history[start_pos:]
                for p in np.argsort(-contributions, kind="stable"):
                    if window[p] not in top3 and len(top3) < 3:
                        top3.append(window[p])
            plan.append((item_idx, recommendation.rank, "top3", top3))
            if positional:
                plan.append((item_idx, recommendation.rank, "top3_in_place", top3))
            for _ in range(RANDOM_DRAWS):
                drawn = rng.choice(np.arange(window_start, len(history)), size=3, replace=False)
                randoms = [history[p] for p in drawn]
                plan.append((item_idx, recommendation.rank, "random", randoms))
                if positional:
                    plan.append((item_idx, recommendation.rank, "random_in_place", randoms))
            plan.append((item_idx, recommendation.rank, "recent", history[-3:]))
            covered += bool(explanation.evidence)
            cf = explanation.counterfactual
            if cf is not None and cf.found:
                cf_found += 1
                cf_sizes.append(len(cf.removed))
                kept = [h for h in history if h not in set(cf.removed)]
                shown = rec.recommend(history=kept, k=k, exclude=cf.removed)
                cf_valid += recommendation.item_id not in {r.item_id for r in shown}
            if use_llm and (llm_per_user is None or recommendation.rank <= llm_per_user):
                explanation = explainer.explain(
                    recommendation.item_id,
                    history=history,
                    k=k,
                    lang=lang,
                    counterfactual=False,
                    use_llm=True,
                )
                note = explanation.sentence.note
                llm_outcomes[
                    "accepted" if explanation.sentence.source == "llm" else note or "not phrased"
                ] += 1
            text = explanation.sentence.text
            sentences.append(text)
            named = named_reasons(explanation, text)
            if explainer.grounding.ungrounded(text, facts_of(explanation)):
                named = ["<outside the facts>"]
            checks.append((item_idx, named))
            for reason in named:
                if reason in rec.items:
                    plan.append((item_idx, 0, "reason", [reason]))
        trials = [[h for h in history if h not in set(removed)] for *_, removed in plan]
        indices = rec.to_indices(history)
        inputs = [indices] + [
            hidden_in_place(indices, history, gone) if kind.endswith("_in_place") else rec.to_indices(trial)
            for (_, _, kind, gone), trial in zip(plan, trials, strict=True)
        ]
        raw = rec.score_indices(inputs)
        reason_drop: dict[tuple[int, str], float] = {}
        for row, (item_idx, old_rank, kind, removed) in enumerate(plan):
            if kind == "reason":
                reason_drop[(item_idx, removed[0])] = raw[0, item_idx] - raw[row + 1, item_idx]
                continue
            final = rec.adjust(raw[row + 1], trials[row], exclude=removed)
            drops[kind].append(rank_of(final, item_idx) - old_rank)
        for item_idx, named in checks:
            grounded += all(reason_drop.get((item_idx, r), -1.0) > 0 for r in named)
    n = max(len(sentences), 1)
    top, rand, recent = (float(np.mean(drops[key])) for key in ("top3", "random", "recent"))
    in_place: dict[str, Any] = {}
    if positional:
        top_in, rand_in = (float(np.mean(drops[key])) for key in ("top3_in_place", "random_in_place"))
        in_place = {
            "fidelity_top3_rank_drop_in_place": round(top_in, 3),
            "fidelity_random3_rank_drop_in_place": round(rand_in, 3),
            "fidelity_ratio_in_place": round(top_in / rand_in, 3) if rand_in > 0 else None,
        }
    llm_total = sum(llm_outcomes.values())
    return {
        "explained_users": len(users),
        "explained_items": len(sentences),
        "lang": lang,
        "fidelity_top3_rank_drop": round(top, 3),
        "fidelity_random3_rank_drop": round(rand, 3),
        "fidelity_recent3_rank_drop": round(recent, 3),
        "fidelity_ratio": round(top / rand, 3) if rand > 0 else None,  # None: nothing moved
        "fidelity_ratio_recent": round(top / recent, 3) if recent > 0 else None,
        **in_place,
        "occlusion": explainer.config.occlusion,
        "counterfactual_found_rate": round(cf_found / n, 4),
        "counterfactual_mean_size": round(float(np.mean(cf_sizes)), 3) if cf_sizes else None,
        "counterfactual_validity": round(cf_valid / cf_found, 4) if cf_found else None,
        "grounding_rate": round(grounded / n, 4),
        "llm_phrased": llm_total,
        "llm_rejected_rate": round(1 - llm_outcomes["accepted"] / llm_total, 4) if llm_total else None,
        "llm_outcomes": dict(llm_outcomes.most_common()),
        "explanation_coverage": round(covered / n, 4),
        "unique_sentence_ratio": round(len(set(sentences)) / n, 4),
        "explain_ms_per_user": round(1000 * float(np.mean(explain_seconds)), 2),
        "explain_ms_per_user_p95": round(1000 * float(np.percentile(explain_seconds, 95)), 2),
        **usefulness_metrics(rec, per_user),
    }
