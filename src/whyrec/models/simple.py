"""Models without a neural network: popularity, item-kNN collaborative filtering, content."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from whyrec.models.base import FitData, FitInfo, recency_weights
from whyrec.models.config import Config, setting
from whyrec.models.neighbours import cosine_top_n


def _history_matrix(histories: Sequence[np.ndarray], n_items: int, weights: bool = False) -> sp.csr_matrix:
    lengths = [len(h) for h in histories]
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(histories), n_items)
    )


class Popularity:
    """Scores every item by its number of training interactions."""

    name = "pop"

    def __init__(self) -> None:
        self.n_items = 0
        self.counts = np.zeros(0, dtype=np.float32)
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {}

    def fit(self, data: FitData) -> Self:
        start = time.perf_counter()
        self.n_items = data.split.n_items
        self.counts = data.split.train_item_counts().astype(np.float32)
        self.fitted = True
        self.fit_info = FitInfo(train_seconds=time.perf_counter() - start)
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts, (len(histories), 1))

    def add_items(self, item_vectors: np.ndarray) -> None:
        """New items have no training interactions: a count of 0."""
        self.counts = np.concatenate([self.counts, np.zeros(len(item_vectors), np.float32)])
        self.n_items = len(self.counts)

    def save(self, directory: Path) -> None:
        np.save(directory / "pop_counts.npy", self.counts)

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        model = cls()
        model.counts = np.load(directory / "pop_counts.npy")
        model.n_items = len(model.counts)
        model.fitted = True
        return model


@dataclass(frozen=True)
class ItemKNNConfig(Config):
    neighbours: int = setting(100, ge=1)  # similar items kept per item
    shrinkage: float = setting(10.0, ge=0)  # damps similarities between rarely-seen items


class ItemKNN:
    """Item-item collaborative filtering: score(i) = sum over history items h of sim(h, i).

    ``sim`` is the shrunk cosine of the items' user vectors, kept for each item's ``neighbours``
    strongest neighbours (ties to the lower item index). Because the score is a plain sum,
    each history item's contribution is exactly sim(h, i) (see ``contributions``).
    """

    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()
        self.n_items = 0
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {"config": self.config}

    def fit(self, data: FitData) -> Self:
        return self.fit_histories(data.split.train(), data.split.n_items)

    def fit_histories(self, histories: Sequence[np.ndarray], n_items: int) -> Self:
        """Learn similarities from any set of histories (``fit`` uses the training split)."""
        start = time.perf_counter()
        users = _history_matrix(histories, n_items)
        users.data[:] = 1.0  # repeated items count once
        # sparse top-N lists, block by block: memory linear in items × neighbours
        self.similarity = cosine_top_n(users, self.config.neighbours, self.config.shrinkage)
        self.n_items = n_items
        self.fitted = True
        self.fit_info = FitInfo(train_seconds=time.perf_counter() - start)
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray((_history_matrix(histories, self.n_items) @ self.similarity).todense())

    def add_items(self, item_vectors: np.ndarray) -> None:
        """New items co-occur with nothing yet: similarity 0 to every item."""
        n = self.n_items + len(item_vectors)
        sim = self.similarity.tocoo()
        self.similarity = sp.csr_matrix((sim.data, (sim.row, sim.col)), shape=(n, n), dtype=np.float32)
        self.n_items = n

    def contributions(self, history: np.ndarray, item_idx: int) -> np.ndarray:
        """Exact contribution of each history position to ``item_idx``'s score."""
        column = np.asarray(self.similarity[:, item_idx].todense()).ravel()
        return column[history]

    def save(self, directory: Path) -> None:
        sp.save_npz(directory / "itemknn_similarity.npz", self.similarity)
        (directory / "itemknn_config.json").write_text(json.dumps(self.config.to_dict()))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        model = cls(ItemKNNConfig.from_dict(json.loads((directory / "itemknn_config.json").read_text())))
        model.similarity = sp.load_npz(directory / "itemknn_similarity.npz").tocsr()
        model.n_items = model.similarity.shape[0]
        model.fitted = True
        return model


@dataclass(frozen=True)
class ContentConfig(Config):
    # in items: the 10th most recent item weighs half as much as the newest
    half_life: float = setting(10.0, gt=0)


class ContentModel:
    """Language-model vectors only: the user is a recency-weighted mean of their items' vectors,
    and an item scores its cosine to that profile. Items unseen in training are scored as well."""

    name = "content"

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or ContentConfig()
        self.item_vectors = np.zeros((0, 1), np.float32)
        self.n_items = 0
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {"config": self.config}

    def fit(self, data: FitData) -> Self:
        return self.use_vectors(data.item_vectors)

    def use_vectors(self, item_vectors: np.ndarray) -> Self:
        """Score with these item vectors (all it learns; ``fit`` takes the split's)."""
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.n_items = len(self.item_vectors)
        self.fitted = True
        return self

    def add_items(self, item_vectors: np.ndarray) -> None:
        self.use_vectors(np.concatenate([self.item_vectors, np.asarray(item_vectors, np.float32)]))

    def profiles(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(histories), self.item_vectors.shape[1]), dtype=np.float32)
        for row, history in enumerate(histories):
            if len(history):
                weights = recency_weights(len(history), self.config.half_life)
                out[row] = weights @ self.item_vectors[history] / weights.sum()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.profiles(histories) @ self.item_vectors.T

    def save(self, directory: Path) -> None:
        (directory / "content_config.json").write_text(json.dumps(self.config.to_dict()))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        config = ContentConfig.from_dict(json.loads((directory / "content_config.json").read_text()))
        return cls(config).use_vectors(item_vectors)
