"""Counterfactuals (what removal takes an item out of the top-k) and why-not (what keeps an item
out of it), each re-scored on the real model."""

from __future__ import annotations

import numpy as np

from whyrec.explain.context import ScoringContext, ranks_under
from whyrec.explain.types import Counterfactual, Evidence, InterestProfile, Lift, WhyNot
from whyrec.training.recommender import Recommender


def find_counterfactual(
    rec: Recommender, ctx: ScoringContext, item_idx: int, k: int, limit: int
) -> Counterfactual:
    """Greedy: at each step try removing each remaining window item (one batched call) and keep
    the removal that lowers the item's rank most; stop when it leaves the top-k. Then prune the
    members that are not needed and check the result once more, independently."""
    items, exclude, avoid = ctx.items, ctx.exclude, ctx.avoid
    contributions = ctx.contributions(item_idx)
    removed: list[str] = []
    order = sorted(zip(-contributions, ctx.window, strict=True), key=lambda t: t[0])
    candidates = [w for _, w in order][: max(limit * 3, 10)]  # strongest supporters first
    rank = None
    for _ in range(limit):
        options = [c for c in candidates if c not in removed]
        if not options:
            break
        trial = [[h for h in items if h not in {*removed, c}] for c in options]
        ranks, scores = ranks_under(rec, trial, item_idx, exclude + removed, avoid)
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
            if ranks_under(rec, [kept], item_idx, exclude + smaller, avoid)[0][0] > k:
                removed = smaller
    verified_rank = None
    if found:  # the final, independent check
        kept = [h for h in items if h not in set(removed)]
        verified_rank = int(ranks_under(rec, [kept], item_idx, exclude + removed, avoid)[0][0])
    verified = verified_rank is not None and verified_rank > k
    return Counterfactual(
        found=bool(found and verified),
        removed=tuple(removed) if found else (),
        removed_titles=tuple(rec.catalog.title(r) for r in removed) if found else (),
        new_rank=verified_rank,
        verified=verified,
        max_size=limit,
    )


def explain_why_not(
    rec: Recommender, ctx: ScoringContext, item_idx: int, rank: int, k: int, top_evidence: int
) -> WhyNot:
    """What pulls the item down, how far below the k-th item it is, and what would lift it most:
    the history focused on one interest, or its strongest supporter taken last."""
    items, window, start = ctx.items, ctx.window, ctx.start
    contributions = ctx.contributions(item_idx)
    profile = ctx.profile or InterestProfile(None, ())
    against = tuple(
        Evidence(window[p], rec.catalog.title(window[p]), float(contributions[p]), start + int(p))
        for p in np.argsort(contributions, kind="stable")[:top_evidence]
        if contributions[p] < 0
    )
    final = ctx.final
    kth = np.sort(final[np.isfinite(final)])[::-1][min(k, int(np.isfinite(final).sum())) - 1]
    gap = float(kth - final[item_idx])
    trials: list[tuple[Lift, list[str]]] = []
    for interest in profile.interests:
        focus = [h for h in items if h in set(interest.item_ids)]
        trials.append((Lift("interest", interest.label, interest.label, 0), focus))
    if len(contributions) and contributions.max() > 0:
        supporter = window[int(np.argmax(contributions))]
        lift = Lift("item", supporter, rec.catalog.title(supporter), 0)
        trials.append((lift, [h for h in items if h != supporter] + [supporter]))
    best_lift = None
    if trials:
        ranks, _ = ranks_under(rec, [t[1] for t in trials], item_idx, ctx.exclude, ctx.avoid)
        best = int(np.argmin(ranks))
        if ranks[best] < rank:
            lift = trials[best][0]
            best_lift = Lift(lift.kind, lift.ref, lift.title, int(ranks[best]))
    return WhyNot(rank=rank, k=k, score_gap=gap, evidence_against=against, best_lift=best_lift)
