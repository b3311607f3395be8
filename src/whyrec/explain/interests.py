"""Interest profiles: a history clustered in LM space, each cluster named by what sets it apart."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from whyrec.data.dataset import ItemCatalog
from whyrec.explain.types import Interest
from whyrec.models.base import recency_weights

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "for",
        "to",
        "with",
        "by",
        "from",
        "at",
        "or",
        "as",
        "is",
        "it",
        "its",
        "this",
        "that",
        "be",
        "are",
        "was",
        "were",
        "de",
        "la",
        "le",
        "les",
        "el",
        "los",
        "das",
        "der",
        "die",
        "und",
        "du",
        "des",
        "di",
        "il",
        "en",
        "et",
        "vs",
        "part",
        "ii",
        "iii",
        "x",
        "pack",
        "pcs",
        "inch",
    ]
)
RECENT_WINDOW = 10  # "recent" = the last 10 items
MAX_PROFILE_ITEMS = 200  # interests are read from at most the 200 most recent items
MAX_CLUSTERS = 6


def kmeans(vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 30) -> np.ndarray:
    """Spherical k-means with k-means++ seeding; returns one label per row."""
    rng = np.random.default_rng(seed)
    n = len(vectors)
    centres = [vectors[rng.integers(n)]]
    for _ in range(1, k):
        distance = np.min([1.0 - vectors @ c for c in centres], axis=0).clip(min=0)
        total = distance.sum()
        pick = rng.choice(n, p=distance / total) if total > 0 else rng.integers(n)
        centres.append(vectors[pick])
    centre_matrix = np.stack(centres)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        new_labels = np.argmax(vectors @ centre_matrix.T, axis=1)
        if _ and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(k):
            members = vectors[labels == c]
            if len(members):
                mean = members.mean(axis=0)
                centre_matrix[c] = mean / max(np.linalg.norm(mean), 1e-9)
    return labels


def silhouette(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance, vectorised over points and clusters."""
    distance = 1.0 - vectors @ vectors.T  # (n, n)
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    member = labels[:, None] == clusters[None, :]  # (n, k)
    sizes = member.sum(axis=0).astype(np.float64)  # (k,)
    sums = distance @ member  # (n, k): summed distance from each point to each cluster
    own = np.searchsorted(clusters, labels)
    rows = np.arange(len(labels))
    own_size = sizes[own]
    a = sums[rows, own] / np.maximum(own_size - 1, 1)
    mean_other = sums / sizes[None, :]
    mean_other[rows, own] = np.inf
    b = mean_other.min(axis=1)
    score = (b - a) / np.maximum(np.maximum(a, b), 1e-9)
    score[own_size <= 1] = 0.0  # a singleton's silhouette is 0 by convention
    return float(score.mean())


def choose_clusters(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pick k in 1..MAX_CLUSTERS by silhouette; one cluster when no split is clearly better."""
    n = len(vectors)
    best_labels, best_score = np.zeros(n, dtype=np.int64), 0.08  # a split must beat this to count
    for k in range(2, min(MAX_CLUSTERS, n // 3) + 1):
        labels = kmeans(vectors, k, seed)
        if len(set(labels.tolist())) < k:
            continue
        score = silhouette(vectors, labels)
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels


def item_terms(catalog: ItemCatalog, item_id: str) -> list[str]:
    attrs = list(catalog.attrs(item_id))
    if attrs:
        return attrs
    words = re.findall(r"[^\W\d_]{3,}", catalog.title(item_id).lower())
    return [w for w in words if w not in STOPWORDS]


class TermIndex:
    """Document frequencies of catalogue terms, for c-TF-IDF naming."""

    def __init__(self, catalog: ItemCatalog, item_ids: Sequence[str]) -> None:
        self.catalog = catalog
        self.df: Counter[str] = Counter()
        for item_id in item_ids:
            self.df.update(set(item_terms(catalog, item_id)))
        self.n_docs = max(len(item_ids), 1)

    def distinguishing(self, item_ids: Sequence[str], top: int = 3) -> list[str]:
        tf: Counter[str] = Counter()
        for item_id in item_ids:
            tf.update(item_terms(self.catalog, item_id))
        scored = {t: c * math.log(1 + self.n_docs / (1 + self.df.get(t, 0))) for t, c in tf.items()}
        return [t for t, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def build_interests(
    history: Sequence[str],
    vectors: np.ndarray,
    terms: TermIndex,
    half_life: float = 20.0,
    seed: int = 0,
) -> list[Interest]:
    """Cluster ``history`` (oldest first; ``vectors`` row-aligned with it)."""
    if not len(history):
        return []
    history, vectors = list(history)[-MAX_PROFILE_ITEMS:], vectors[-MAX_PROFILE_ITEMS:]
    labels = choose_clusters(vectors, seed) if len(history) >= 6 else np.zeros(len(history), np.int64)
    weights = recency_weights(len(history), half_life)
    recent = np.zeros(len(history), dtype=bool)
    recent[-RECENT_WINDOW:] = True
    interests = []
    for cluster in sorted(set(labels.tolist())):
        members = labels == cluster
        ids = [history[i] for i in np.flatnonzero(members)]
        keywords = tuple(terms.distinguishing(ids))
        long_term = float(members.mean())
        recent_share = float(members[recent].mean())
        interests.append(
            Interest(
                interest_id=int(cluster),
                label=" & ".join(keywords[:2]) if keywords else f"interest {cluster + 1}",
                keywords=keywords,
                share=float(weights[members].sum() / weights.sum()),
                long_term_share=long_term,
                recent_share=recent_share,
                horizon="recent" if recent_share >= long_term else "long-term",
                item_ids=tuple(ids),
            )
        )
    interests.sort(key=lambda i: -i.share)
    return interests


def label_fits(interest: Interest, catalog: ItemCatalog, item_id: str) -> bool:
    """Whether the item shares a term (an attribute, or a title word for items without
    attributes) with the words of the interest's label."""
    label_terms = {t.lower() for t in interest.label.split(" & ")}
    return any(t.lower() in label_terms for t in item_terms(catalog, item_id))
