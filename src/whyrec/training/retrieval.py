"""Top-K retrieval for models whose score is an inner product (user vector · item vector).

Below ``min_items`` the model scores every item as usual. Above it, a FAISS index proposes
candidates: an exact inner-product index (``IndexFlatIP``) up to ``ann_threshold`` items, an
approximate one (IVF or HNSW) beyond, always over-fetched and re-scored exactly, so a served
score is the model's score and only an item the index missed can be absent. Without FAISS the
same interface scores every item with numpy and keeps the best with a partial sort.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from whyrec.models import ContentModel, Scorer, SequenceModel
from whyrec.models.config import Config, setting

try:  # optional (the `scale` extra)
    import faiss
except ImportError:  # pragma: no cover - depends on the installation
    faiss = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

UserVectors = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class RetrievalConfig(Config):
    min_items: int = setting(50_000, ge=1)  # smaller catalogues: every item scored, no index
    ann_threshold: int = setting(200_000, ge=1)  # from here on an approximate index
    index: Literal["ivf", "hnsw"] = "ivf"
    n_lists: int = setting(0, ge=0)  # IVF cells; 0: sqrt(n_items)
    n_probe: int = setting(32, ge=1)  # IVF cells searched per query
    hnsw_neighbours: int = setting(32, ge=4)  # HNSW graph degree (M)
    hnsw_ef_search: int = setting(128, ge=1)
    overfetch: int = setting(4, ge=1)  # candidates = overfetch × (k + blocked items)
    train_sample: int = setting(200_000, ge=1000)  # vectors the IVF quantiser is trained on
    # OpenMP threads per search; one query on a busy machine is far faster on one (0: FAISS's own)
    search_threads: int = setting(1, ge=0)
    seed: int = 0


def inner_product_parts(model: Scorer) -> tuple[UserVectors, np.ndarray] | None:
    """(user vectors of histories, item matrix) such that ``model.score`` is their product, or
    None for a model whose score is not an inner product (item-kNN, popularity, the hybrid, a
    sequence model with a wide item-to-item part)."""
    if isinstance(model, SequenceModel) and model.net is not None and model.net.wide is None:
        net = model.net

        def sequence_users(histories: Sequence[np.ndarray]) -> np.ndarray:
            was_training = net.training
            net.eval()
            try:
                return np.asarray(model.user_vectors(histories), dtype=np.float32)
            finally:
                net.train(was_training)

        with torch.inference_mode():
            table = net.items.table()[1 : model.n_items + 1].numpy()
        return sequence_users, np.ascontiguousarray(table, dtype=np.float32)
    if isinstance(model, ContentModel):
        return model.profiles, np.ascontiguousarray(model.item_vectors, dtype=np.float32)
    return None


class Retriever:
    """The best items by inner product with a user vector, ties by item index."""

    def __init__(
        self, items: np.ndarray, config: RetrievalConfig | None = None, use_faiss: bool = True
    ) -> None:
        self.config = config or RetrievalConfig()
        self.items = np.ascontiguousarray(items, dtype=np.float32)  # (n_items, dim)
        self.kind = "numpy"
        self.build_seconds = 0.0
        self._index = None
        if faiss is not None and use_faiss:
            start = time.perf_counter()
            self._index, self.kind = self._build()
            self.build_seconds = time.perf_counter() - start
            log.info(
                f"retrieval: {self.kind} index over {len(self.items):,} items in {self.build_seconds:.1f}s"
            )

    @property
    def exact(self) -> bool:
        return self.kind in ("numpy", "flat")

    def _build(self):  # type: ignore[no-untyped-def]
        n_items, dim = self.items.shape
        config = self.config
        if n_items < config.ann_threshold:
            flat = faiss.IndexFlatIP(dim)
            flat.add(self.items)
            return flat, "flat"
        if config.index == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efSearch = config.hnsw_ef_search
            hnsw.add(self.items)
            return hnsw, "hnsw"
        n_lists = config.n_lists or int(np.sqrt(n_items))
        quantiser = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantiser, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(config.seed)
        sample = self.items[rng.choice(n_items, min(n_items, config.train_sample), replace=False)]
        index.cp.seed = config.seed
        index.train(sample)
        index.add(self.items)
        index.nprobe = min(config.n_probe, n_lists)
        return index, "ivf"

    def candidates(self, users: np.ndarray, n: int) -> np.ndarray:
        """(batch, <= n) item indices the index proposes for each user vector (-1: none)."""
        users = np.ascontiguousarray(users, dtype=np.float32)
        n = min(n, len(self.items))
        if self._index is None:
            scores = users @ self.items.T
            return np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < len(self.items) else (
                np.tile(np.arange(len(self.items)), (len(users), 1)))  # fmt: skip
        threads = faiss.omp_get_max_threads()
        if self.config.search_threads:
            faiss.omp_set_num_threads(self.config.search_threads)
        try:
            _, found = self._index.search(users, n)
        finally:
            faiss.omp_set_num_threads(threads)
        return found

    def top_k(
        self, user: np.ndarray, k: int, blocked: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The K best (items, exact scores) for one user vector, BLOCKED items left out; ties by
        item index, as the full ranking breaks them."""
        blocked = np.zeros(0, dtype=np.int64) if blocked is None else np.asarray(blocked, dtype=np.int64)
        wanted = k + len(blocked)
        found = self.candidates(user[None, :], self.config.overfetch * wanted if not self.exact else wanted)[
            0
        ]
        found = found[found >= 0]
        found = found[~np.isin(found, blocked)]
        scores = self.items[found] @ np.asarray(user, dtype=np.float32)  # exact re-scoring
        finite = np.isfinite(scores)
        found, scores = found[finite], scores[finite]
        order = np.lexsort((found, -scores))[:k]
        return found[order], scores[order].astype(np.float64)


def recall_at_k(retriever: Retriever, users: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-K (by inner product) that the retriever returns, over USERS."""
    exact = Retriever(retriever.items, retriever.config, use_faiss=False)
    hits = 0
    for user in users:
        truth = set(exact.top_k(user, k)[0].tolist())
        hits += len(truth & set(retriever.top_k(user, k)[0].tolist()))
    return hits / (k * len(users))
