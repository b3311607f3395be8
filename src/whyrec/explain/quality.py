"""Explanation quality measured against the model: deletion fidelity, counterfactual validity,
grounding, coverage, diversity and speed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from whyrec.explain.explainer import Explainer
from whyrec.explain.types import Explanation
from whyrec.explain.usefulness import usefulness_metrics
from whyrec.training.recommender import Recommender, rank_of

if TYPE_CHECKING:
    from whyrec.models.base import Scorer
    from whyrec.training.pipeline import Prepared

MIN_HISTORY = 6
RANDOM_DRAWS = 5


def explanation_metrics(
    prepared: Prepared, model: Scorer, n_users: int = 200, k: int = 10, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Explain the top-``k`` of up to ``n_users`` test users (history >= 6 items, seeded sample).

    A rank drop is the item's new rank minus its old rank after removing items from the history
    (removed items stay out of the candidates, so only the model's change of mind counts).
    """
    split = prepared.split
    histories, _ = split.test()
    rec = Recommender(model, split.items, prepared.dataset.catalog, prepared.item_vectors, {})
    explainer = Explainer(rec)
    rng = np.random.default_rng(seed)
    eligible = [u for u, h in enumerate(histories) if len(h) >= MIN_HISTORY]
    users = sorted(rng.choice(eligible, size=min(n_users, len(eligible)), replace=False).tolist())
    top_drops: list[int] = []
    random_drops: list[int] = []
    sentences: list[str] = []
    cf_valid = cf_total = grounded = covered = 0
    explain_seconds = []
    per_user: list[list[Explanation]] = []
    for u in tqdm(users, desc=f"explaining {model.name}", unit="user", disable=not progress, leave=False):
        history = split.items.lookup_ids(histories[u])
        start = time.perf_counter()
        pairs = explainer.explain_recommendations(history=history, k=k, counterfactual=False)
        explain_seconds.append(time.perf_counter() - start)
        per_user.append([e for _, e in pairs])
        trials: list[list[str]] = []
        excluded: list[list[str]] = []
        meta: list[tuple[int, int, str]] = []  # (item_idx, old rank, kind)
        for recommendation, explanation in pairs:
            item_idx = rec.item_index(recommendation.item_id)
            top3 = [e.item_id for e in explanation.evidence[:3]]
            if len(top3) < 3:  # fewer than 3 supporters: fill with the next strongest items
                contributions, start_pos = explainer.contributions(history, recommendation.item_id)
                window = history[start_pos:]
                for p in np.argsort(-contributions, kind="stable"):
                    if window[p] not in top3 and len(top3) < 3:
                        top3.append(window[p])
            trials.append([h for h in history if h not in set(top3)])
            excluded.append(top3)
            meta.append((item_idx, recommendation.rank, "top3"))
            for _ in range(RANDOM_DRAWS):
                drop = set(rng.choice(len(history), size=3, replace=False).tolist())
                trials.append([h for p, h in enumerate(history) if p not in drop])
                excluded.append([history[p] for p in drop])
                meta.append((item_idx, recommendation.rank, "random"))
            covered += bool(explanation.evidence)
            sentences.append(explanation.sentence.text)
            grounded += explanation.sentence.grounded and not explainer.grounding.ungrounded(
                explanation.sentence.text, explanation.grounded_on
            )
        raw = rec.score_indices([rec.to_indices(t) for t in trials])
        for row, (item_idx, old_rank, kind) in enumerate(meta):
            final = rec.adjust(raw[row], trials[row], exclude=excluded[row])
            (top_drops if kind == "top3" else random_drops).append(rank_of(final, item_idx) - old_rank)
        # counterfactuals (one shared scoring context for the k items), re-scored here
        # independently of the explainer's own check
        profile = explainer.interests(history=history)
        with_cf = explainer.explain_recommendations(
            history=history, k=k, counterfactual=True, profile=profile
        )
        for recommendation, explanation in with_cf:
            cf = explanation.counterfactual
            if cf is None or not cf.found:
                continue
            cf_total += 1
            kept = [h for h in history if h not in set(cf.removed)]
            final = rec.ranked_scores(kept, exclude=cf.removed)
            cf_valid += rank_of(final, rec.item_index(recommendation.item_id)) > k
    top, rand = float(np.mean(top_drops)), float(np.mean(random_drops))
    n = max(len(sentences), 1)
    return {
        "explained_users": len(users),
        "fidelity_top3_rank_drop": round(top, 3),
        "fidelity_random3_rank_drop": round(rand, 3),
        "fidelity_ratio": round(top / rand, 3) if rand > 0 else None,  # None: nothing moved
        "counterfactual_validity": round(cf_valid / cf_total, 4) if cf_total else None,
        "counterfactual_found_rate": round(cf_total / n, 4),
        "grounding_rate": round(grounded / n, 4),
        "explanation_coverage": round(covered / n, 4),
        "unique_sentence_ratio": round(len(set(sentences)) / n, 4),
        "explain_ms_per_user": round(1000 * float(np.mean(explain_seconds)), 2),
        "explain_ms_per_user_p95": round(1000 * float(np.percentile(explain_seconds, 95)), 2),
        **usefulness_metrics(rec, per_user),
    }
