"""Measures of recommended lists beyond accuracy: intra-list diversity, catalogue coverage,
average recommended popularity and calibration (Steck 2018, "Calibrated Recommendations").

A batch of lists is a 2-D array of item indices, one row per user; ``-1`` marks an empty slot
(a list shorter than the cutoff). Every function is plain numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the smoothing of a list's attribute distribution in calibration KL (Steck 2018 uses 0.01)
CALIBRATION_SMOOTHING = 0.01


def _filled(lists: np.ndarray) -> np.ndarray:
    lists = np.asarray(lists, dtype=np.int64)
    if lists.ndim != 2:
        raise ValueError(f"lists must be a 2-D array of item indices, not shape {lists.shape}")
    return lists


def intra_list_diversity(lists: np.ndarray, vectors: np.ndarray) -> float:
    """Mean over lists of the mean pairwise ``1 - cos`` between the items' vectors (rows of
    VECTORS, normalised here). Lists with fewer than two items are left out; NaN if none is left."""
    lists = _filled(lists)
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    values = []
    for row in lists:
        items = row[row >= 0]
        n = len(items)
        if n < 2:
            continue
        cos = unit[items] @ unit[items].T
        pairs = (cos.sum() - np.trace(cos)) / (n * (n - 1))  # the mean over ordered pairs i != j
        values.append(1.0 - pairs)
    return float(np.mean(values)) if values else float("nan")


def catalogue_coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of the catalogue's N_ITEMS that appear in at least one list."""
    lists = _filled(lists)
    return float(len(np.unique(lists[lists >= 0])) / n_items) if n_items else 0.0


def average_popularity(lists: np.ndarray, popularity: np.ndarray) -> float:
    """ARP: mean over lists of the mean POPULARITY (e.g. training interactions per item) of the
    list's items. Empty lists are left out; NaN if all are empty."""
    lists = _filled(lists)
    popularity = np.asarray(popularity, dtype=np.float64)
    values = [popularity[row[row >= 0]].mean() for row in lists if (row >= 0).any()]
    return float(np.mean(values)) if values else float("nan")


def attribute_matrix(attributes: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    """Each item's attribute distribution ``p(g|i)``: row i spreads 1 evenly over the attributes of
    item i (a zero row for an item without attributes). Returns the (n_items, n_attributes) matrix
    and the attribute names of its columns, sorted."""
    names = sorted({a for attrs in attributes for a in attrs})
    column = {a: c for c, a in enumerate(names)}
    matrix = np.zeros((len(attributes), len(names)))
    for row, attrs in enumerate(attributes):
        distinct = set(attrs)
        for a in distinct:
            matrix[row, column[a]] = 1.0 / len(distinct)
    return matrix, names


def attribute_distribution(item_attributes: np.ndarray, item_lists: Sequence[np.ndarray]) -> np.ndarray:
    """The attribute distribution of each list of items (a history or a recommended list): the
    mean of its items' rows of ITEM_ATTRIBUTES (see :func:`attribute_matrix`) over the items that
    have attributes. A row of zeros where no item has any. ``-1`` entries are skipped."""
    item_attributes = np.asarray(item_attributes, dtype=np.float64)
    out = np.zeros((len(item_lists), item_attributes.shape[1]))
    for row, items in enumerate(item_lists):
        items = np.asarray(items, dtype=np.int64)
        mass = item_attributes[items[items >= 0]].sum(axis=0)
        total = mass.sum()
        if total > 0:
            out[row] = mass / total
    return out


def calibration_kl(p: np.ndarray, q: np.ndarray, smoothing: float = CALIBRATION_SMOOTHING) -> np.ndarray:
    """``KL(p || q~)`` with ``q~ = (1 - smoothing) q + smoothing p``, over the last axis: how far a
    list's attribute distribution Q is from the user's P (0 when they match). Attributes with
    ``p = 0`` add nothing; the smoothing keeps the divergence finite when Q lacks one of P's."""
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing must be in (0, 1], not {smoothing}")
    p, q = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))
    q_smooth = (1.0 - smoothing) * q + smoothing * p
    positive = p > 0
    ratio = np.where(positive, p, 1.0) / np.where(positive, q_smooth, 1.0)  # 1 (log 0) where p = 0
    return (np.where(positive, p, 0.0) * np.log(ratio)).sum(axis=-1)


def list_ndcg(lists: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each user's NDCG for one relevant item (their target) at its position in their list:
    ``1 / log2(position + 2)`` (0-based position), 0 when the list does not hold it."""
    lists = _filled(lists)
    targets = np.asarray(targets, dtype=np.int64)
    hits = lists == targets[:, None]
    found = hits.any(axis=1)
    position = hits.argmax(axis=1)
    return np.where(found, 1.0 / np.log2(position + 2.0), 0.0)
