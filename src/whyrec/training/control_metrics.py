"""What ranking controls cost and buy, measured on the test split: each model's top-10 under each
control setting, against its plain ranking (``whyrec evaluate --controls``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from whyrec.metrics import (
    attribute_distribution,
    attribute_matrix,
    average_popularity,
    calibration_kl,
    catalogue_coverage,
    check_finite,
    intra_list_diversity,
    list_ndcg,
    mask_seen,
    ndcg_per_user,
    target_ranks,
    top_indices,
)
from whyrec.metrics.ranking import Ranker, Ranks
from whyrec.training.controls import ItemFacts, RankingControls, rerank
from whyrec.training.pipeline import Prepared

log = logging.getLogger(__name__)


def control_metrics(
    prepared: Prepared,
    model: Ranker,
    settings: Mapping[str, RankingControls],
    k: int = 10,
    batch_size: int = 256,
) -> dict[str, dict[str, float | None]]:
    """For each control setting (by label): NDCG@k of the list under it and of the plain ranking
    beside it, intra-list diversity (mean pairwise 1 - cos of the LM vectors), catalogue coverage,
    average recommended popularity (training interactions per item) and calibration KL (the list's
    attribute mix against the history's, smoothed as the setting smooths; users whose history has
    no attributes are left out of it).

    Every list, the plain one included, is measured at the target's position in it (ties broken
    by item index, as served), so that ``NDCG@k`` and ``NDCG@k_plain`` differ only by what the
    controls did; ``NDCG@k_expected`` is the plain ranking at the target's expected position
    under random tie-breaks, as every other metric of whyrec."""
    split = prepared.split
    ids = list(split.items.ids)
    facts = ItemFacts(ids, [prepared.dataset.catalog.attrs(i) for i in ids], prepared.item_vectors)
    histories, targets = split.test()
    lists = {label: np.full((len(histories), k), -1, dtype=np.int64) for label in settings}
    plain_lists = np.full((len(histories), k), -1, dtype=np.int64)
    ranks = []
    for start in range(0, len(histories), batch_size):
        batch = list(histories[start : start + batch_size])
        scores = np.asarray(model.score(batch), dtype=np.float64)
        check_finite(scores, getattr(model, "name", "model"))
        mask_seen(scores, batch)
        ranks.append(target_ranks(scores, targets[start : start + batch_size]))
        plain = top_indices(scores, k)
        for row in range(len(batch)):
            served = plain[row][np.isfinite(scores[row, plain[row]])]
            plain_lists[start + row, : len(served)] = served
        for label, controls in settings.items():
            out = lists[label][start : start + len(batch)]
            for row, history in enumerate(batch):
                if controls.plain:
                    chosen = plain_lists[start + row]
                    chosen = chosen[chosen >= 0]
                else:
                    ranking = rerank(scores[row], k, controls, facts, history)
                    chosen = np.array([facts.index[p.item_id] for p in ranking.items], dtype=np.int64)
                out[row, : len(chosen)] = chosen
    expected_ndcg = float(ndcg_per_user(Ranks.concatenate(ranks), k).mean())
    plain_ndcg = float(list_ndcg(plain_lists, targets).mean())
    matrix, _ = attribute_matrix(facts.attributes)
    wanted = attribute_distribution(matrix, histories)
    has_mix = wanted.sum(axis=1) > 0
    popularity = split.train_item_counts()
    results: dict[str, dict[str, float]] = {}
    for label, controls in settings.items():
        chosen = lists[label]
        kl = calibration_kl(wanted[has_mix], attribute_distribution(matrix, chosen[has_mix]),
                            controls.calibration_smoothing)  # fmt: skip
        results[label] = {
            f"NDCG@{k}": float(list_ndcg(chosen, targets).mean()),
            f"NDCG@{k}_plain": plain_ndcg,
            f"NDCG@{k}_expected": expected_ndcg,
            f"ILD@{k}": intra_list_diversity(chosen, facts.vectors),
            f"coverage@{k}": catalogue_coverage(chosen, split.n_items),
            f"ARP@{k}": average_popularity(chosen, popularity),
            f"calibration_KL@{k}": float(kl.mean()) if len(kl) else float("nan"),
            "n_users": len(histories),
        }
        log.info(f"  controls {label}: NDCG@{k} {results[label][f'NDCG@{k}']:.4f} "
                 f"(plain {plain_ndcg:.4f}), ILD@{k} {results[label][f'ILD@{k}']:.4f}")  # fmt: skip
    return {label: {key: _json_number(v) for key, v in row.items()} for label, row in results.items()}


def _json_number(value: float) -> float | None:
    """Rounded as the metrics rows are; None (JSON null) for a measure with nothing to measure."""
    return None if np.isnan(value) else round(float(value), 5)
