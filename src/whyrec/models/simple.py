"""Models without a neural network: popularity, item-kNN collaborative filtering, content."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from whyrec.models import itemitem
from whyrec.models.base import FitData, FitInfo, recency_weights
from whyrec.models.config import Config, setting
from whyrec.models.itemitem import DECAYS, SEARCH_USERS, Validation, binary_matrix, search_sample
from whyrec.models.neighbours import cosine_top_n

log = logging.getLogger(__name__)


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
    # candidate weights of a history item per item after it (the newest weighs 1; 1 = every item
    # the same), the one with the best validation NDCG@10 is kept
    decays: tuple[float, ...] = setting(DECAYS, gt=0, le=1)
    decay: float | None = setting(None, gt=0, le=1)  # a fixed decay instead of the search over decays
    # the search scores a seeded sample of this many validation users at most (None: all of them)
    valid_users: int | None = setting(SEARCH_USERS, ge=1)

    def check(self) -> None:
        if not self.decays:
            raise ValueError("decays needs at least one candidate (1 weighs every item the same)")


class ItemKNN:
    """Item-item collaborative filtering: score(i) = Σ over history slots p of w_p·sim(h_p, i).

    ``sim`` is the shrunk cosine of the items' user vectors, kept for each item's ``neighbours``
    strongest neighbours (ties to the lower item index). w_p = decay^age weighs recent slots
    more (see :mod:`whyrec.models.itemitem`), the decay chosen on validation. Because the score
    is a plain sum, each history item's contribution is exact (see ``contributions``); with a
    decay below 1 the model reads positions, as EASE does.
    """

    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()
        self.n_items = 0
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.decay = 1.0  # the recency decay in use
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {"config": self.config}

    def fit(self, data: FitData) -> Self:
        return self.fit_histories(data.split.train(), data.split.n_items, data.split.valid())

    def fit_histories(
        self, histories: Sequence[np.ndarray], n_items: int, valid: Validation | None = None
    ) -> Self:
        """Learn similarities from any set of histories (``fit`` uses the training split); the
        decay is ``decay`` if set, else the candidate of ``decays`` with the best NDCG@10 on VALID
        (histories, targets: at most ``valid_users`` of them), which a search then needs."""
        decays = (self.config.decay,) if self.config.decay is not None else self.config.decays
        if len(decays) > 1 and valid is None:
            raise ValueError("choosing the decay needs validation histories (or set decay)")
        start = time.perf_counter()
        users = binary_matrix(histories, n_items)  # each (user, item) pair once
        # sparse top-N lists, block by block: memory linear in items × neighbours
        self.similarity = cosine_top_n(users, self.config.neighbours, self.config.shrinkage)
        self.n_items = n_items
        grid: list[dict[str, float]] = []
        best = (float("nan"), decays[0])
        if len(decays) > 1 and valid is not None:
            best = (-1.0, decays[0])
            valid = search_sample(valid, self.config.valid_users)
            for decay in decays:
                ndcg = itemitem.validation_ndcg(self.similarity, decay, valid)
                grid.append({"decay": decay, "valid_NDCG@10": round(ndcg, 5)})
                log.info("itemknn: decay %g, validation NDCG@10 %.4f", decay, ndcg)
                if ndcg > best[0]:  # ties keep the earlier candidate
                    best = (ndcg, decay)
        self.decay = best[1]
        self.fitted = True
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start,
            best_valid_ndcg10=best[0] if grid else None,
            extra={"decay": self.decay, "grid": grid},
        )
        return self

    @property
    def reads_positions(self) -> bool:
        """With a decay below 1 an item's weight depends on where it stands."""
        return self.decay < 1.0

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return itemitem.scores(histories, self.similarity, self.decay)

    def add_items(self, item_vectors: np.ndarray) -> None:
        """New items co-occur with nothing yet: similarity 0 to every item."""
        n = self.n_items + len(item_vectors)
        sim = self.similarity.tocoo()
        self.similarity = sp.csr_matrix((sim.data, (sim.row, sim.col)), shape=(n, n), dtype=np.float32)
        self.n_items = n

    def contributions(self, history: np.ndarray, item_idx: int) -> np.ndarray:
        """Exact contribution of each history position to ``item_idx``'s score (a :data:`HIDDEN`
        slot contributes 0; see :func:`whyrec.models.itemitem.contributions`)."""
        column = np.asarray(self.similarity[:, item_idx].todense()).ravel()
        return itemitem.contributions(history, self.decay, column)

    def save(self, directory: Path) -> None:
        sp.save_npz(directory / "itemknn_similarity.npz", self.similarity)
        meta = {"config": self.config.to_dict(), "decay": self.decay}
        (directory / "itemknn_config.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        meta = json.loads((directory / "itemknn_config.json").read_text())
        if "config" not in meta:  # runs saved before the decay: the config alone, every item weighing 1
            meta = {"config": meta, "decay": 1.0}
        model = cls(ItemKNNConfig.from_dict(meta["config"]))
        model.similarity = sp.load_npz(directory / "itemknn_similarity.npz").tocsr()
        model.decay = meta["decay"]
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
