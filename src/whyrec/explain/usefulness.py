"""Whether explanations are plausible to a person, beside faithful: measured on the explanations
of each user's top-k.

- ``evidence_relatedness``: share of top-3 evidence items that share an attribute with the
  recommended item or are among its nearest neighbours in LM space;
- ``evidence_distinct_ratio``: distinct top-1 evidence items across a user's top-k, over the
  number of recommendations with evidence (1.0: every item has its own main reason);
- ``interest_label_agreement``: share of items (those with attributes) whose served interest's
  label shares a term with the item; ``interest_named_rate``: share of sentences naming an interest
  (a sentence names one only when it fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from whyrec.explain.interests import label_fits
from whyrec.explain.types import Explanation
from whyrec.training.recommender import Recommender

NEIGHBOURS = 50  # "among its nearest neighbours in LM space": the item's 50 nearest items


def nearest_items(rec: Recommender, item_id: str, n: int = NEIGHBOURS) -> set[str]:
    """The ``n`` items nearest to ``item_id`` by cosine in LM space (itself excluded)."""
    idx = rec.item_index(item_id)
    similarity = rec.item_vectors @ rec.item_vectors[idx]
    similarity[idx] = -np.inf
    top = np.argpartition(-similarity, min(n, len(similarity) - 1))[:n]
    return {rec.items.id(int(i)) for i in top}


def evidence_relatedness(
    rec: Recommender, explanations: Sequence[Explanation], n: int = NEIGHBOURS
) -> float | None:
    related = total = 0
    for e in explanations:
        attrs = set(rec.catalog.attrs(e.item_id))
        near: set[str] | None = None
        for ev in e.evidence[:3]:
            total += 1
            if attrs & set(rec.catalog.attrs(ev.item_id)):
                related += 1
                continue
            near = nearest_items(rec, e.item_id, n) if near is None else near
            related += ev.item_id in near
    return related / total if total else None


def evidence_distinct_ratio(per_user: Sequence[Sequence[Explanation]]) -> float | None:
    ratios = []
    for explanations in per_user:
        top1 = [e.evidence[0].item_id for e in explanations if e.evidence]
        if top1:
            ratios.append(len(set(top1)) / len(top1))
    return float(np.mean(ratios)) if ratios else None


def interest_label_agreement(rec: Recommender, explanations: Sequence[Explanation]) -> float | None:
    judged = [e for e in explanations if e.interest is not None and rec.catalog.attrs(e.item_id)]
    if not judged:
        return None
    return sum(label_fits(e.interest, rec.catalog, e.item_id) for e in judged if e.interest) / len(judged)


def usefulness_metrics(rec: Recommender, per_user: Sequence[Sequence[Explanation]]) -> dict[str, Any]:
    """All of the above, rounded, for the explanations of each user's top-k (one list per user)."""
    flat = [e for explanations in per_user for e in explanations]

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "evidence_relatedness": rounded(evidence_relatedness(rec, flat)),
        "evidence_distinct_ratio": rounded(evidence_distinct_ratio(per_user)),
        "interest_label_agreement": rounded(interest_label_agreement(rec, flat)),
        "interest_named_rate": rounded(sum(e.interest_named for e in flat) / len(flat)) if flat else None,
    }
