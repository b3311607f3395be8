"""EASE: a closed-form item-item model (Steck, "Embarrassingly Shallow Autoencoders", 2019).

With X the binary user-item matrix of the training histories and G = XᵀX, EASE solves
min ‖X − XB‖² + λ‖B‖² subject to diag(B) = 0 in closed form:

    P = (G + λI)⁻¹,   B = I − P·diag(1/diag(P))   (so B[j, i] = −P[j, i] / P[i, i], B[i, i] = 0)

and scores item i for a history as the sum of w_p·B[h_p, i] over its slots p (h_p the item at
slot p), with w_p = decay^age the recency weight of :mod:`whyrec.models.itemitem`; decay 1 is
Steck's EASE on histories without repeats, every slot weighing 1. λ and the decay are chosen
together among ``lambdas`` and ``decays`` by validation NDCG@10 (or fixed by ``l2`` and
``decay``). B is a dense n×n matrix and inverting G costs n³: catalogues above ``max_items``
are refused rather than run out of memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from scipy.linalg import lapack

from whyrec.errors import WhyrecError
from whyrec.metrics import mask_seen, metrics_from_ranks, target_ranks
from whyrec.models import itemitem
from whyrec.models.base import FitData, FitInfo
from whyrec.models.config import Config, setting
from whyrec.models.itemitem import (
    DECAYS,
    SEARCH_USERS,
    Validation,
    binary_matrix,
    recency_matrix,
    search_sample,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EASEConfig(Config):
    # candidate L2 strengths, the one with the best validation NDCG@10 is kept
    lambdas: tuple[float, ...] = setting((10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0), gt=0)
    l2: float | None = setting(None, gt=0)  # a fixed strength instead of the search over lambdas
    # candidate weights of a history item per item after it (the newest weighs 1; 1 = plain EASE)
    decays: tuple[float, ...] = setting(DECAYS, gt=0, le=1)
    decay: float | None = setting(None, gt=0, le=1)  # a fixed decay instead of the search over decays
    # B and the Gram matrix are dense n×n float64 (8·n² bytes each, 800 MB for 10,000 items)
    max_items: int = setting(12_000, ge=1)
    # the search scores a seeded sample of this many validation users at most (None: all of them)
    valid_users: int | None = setting(SEARCH_USERS, ge=1)

    def check(self) -> None:
        if not self.lambdas and self.l2 is None:
            raise ValueError("lambdas needs at least one candidate (or set l2)")
        if not self.decays:
            raise ValueError("decays needs at least one candidate (1 for plain EASE)")


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """B from the Gram matrix XᵀX and the L2 strength (float32, zero diagonal).

    G + λI is symmetric positive definite, so it is inverted through its Cholesky factor (LAPACK
    potrf, then potri: about n³ flops, half of a general inverse's)."""
    regularised = np.array(gram, dtype=np.float64, order="F")
    regularised[np.diag_indices_from(regularised)] += l2
    factor, info = lapack.dpotrf(regularised, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=True, overwrite_c=True)  # its lower triangle
    if info != 0:
        raise WhyrecError(f"ease: G + λI is not positive definite at λ={l2:g} (LAPACK info {info})")
    inverse = np.tril(inverse)
    inverse += np.tril(inverse, -1).T
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


class EASE:
    """Closed-form item-item regression: score(i) = Σ over history slots p of w_p·B[h_p, i].

    The score is a plain sum, so each history item's contribution is exact (``contributions``):
    hiding an item in place lowers every score by exactly its contribution. With the chosen decay
    below 1 the weights read positions, so removing an item (which makes every older item one
    newer) differs from hiding it, as for the sequence networks.
    """

    name = "ease"

    def __init__(self, config: EASEConfig | None = None) -> None:
        self.config = config or EASEConfig()
        self.n_items = 0
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.l2: float | None = None  # the strength in use
        self.decay = 1.0  # the recency decay in use
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {"config": self.config}

    def fit(self, data: FitData) -> Self:
        valid = data.split.valid()
        return self.fit_histories(data.split.train(), data.split.n_items, valid)

    def fit_histories(
        self, histories: Sequence[np.ndarray], n_items: int, valid: Validation | None = None
    ) -> Self:
        """Learn B from these histories; λ is ``l2`` if set, else the candidate with the best NDCG@10
        on VALID (histories, targets), chosen with the decay (``decay`` if set, else among
        ``decays``); without VALID the search needs ``l2`` and ``decay``."""
        if n_items > self.config.max_items:
            gigabytes = 3 * 8 * n_items**2 / 1e9
            raise WhyrecError(
                f"ease: {n_items:,} items is above max_items={self.config.max_items:,} (it needs about "
                f"{gigabytes:.0f} GB of memory); raise it with --set max_items=N or use itemknn"
            )
        candidates = (self.config.l2,) if self.config.l2 is not None else self.config.lambdas
        decays = (self.config.decay,) if self.config.decay is not None else self.config.decays
        if (len(candidates) > 1 or len(decays) > 1) and valid is None:
            raise ValueError("choosing λ and the decay needs validation histories (or set l2 and decay)")
        start = time.perf_counter()
        users = binary_matrix(histories, n_items)
        gram = (users.T @ users).toarray()
        self.n_items = n_items
        grid: list[dict[str, float]] = []
        best = (-1.0, candidates[0], decays[0], np.zeros((0, 0), dtype=np.float32))
        # what the choice is made on: at most valid_users users, so the scores held stay bounded
        search = None
        if valid is not None and (len(candidates) > 1 or len(decays) > 1):
            search = search_sample(valid, self.config.valid_users)
        # its weighted histories, built once per decay and scored under every λ
        users_by_decay = {} if search is None else {d: recency_matrix(search[0], n_items, d) for d in decays}
        for l2 in candidates:
            weights = ease_weights(gram, l2)
            if search is None:
                best = (float("nan"), l2, decays[0], weights)
                break
            for decay in decays:
                scores = mask_seen(np.asarray(users_by_decay[decay] @ weights, dtype=np.float64), search[0])
                ndcg = metrics_from_ranks(target_ranks(scores, search[1]))["NDCG@10"]
                grid.append({"l2": l2, "decay": decay, "valid_NDCG@10": round(ndcg, 5)})
                log.info("ease: λ=%g, decay %g, validation NDCG@10 %.4f", l2, decay, ndcg)
                if ndcg > best[0]:  # ties keep the earlier candidate
                    best = (ndcg, l2, decay, weights)
        _, self.l2, self.decay, self.weights = best
        self.fitted = True
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start,
            best_valid_ndcg10=best[0] if grid else None,
            extra={"l2": self.l2, "decay": self.decay, "grid": grid},
        )
        return self

    @property
    def reads_positions(self) -> bool:
        """With a decay below 1 an item's weight depends on where it stands."""
        return self.decay < 1.0

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return itemitem.scores(histories, self.weights, self.decay)

    def contributions(self, history: np.ndarray, item_idx: int) -> np.ndarray:
        """Exact contribution of each history position to ``item_idx``'s score (a :data:`HIDDEN`
        slot contributes 0; see :func:`whyrec.models.itemitem.contributions`)."""
        return itemitem.contributions(history, self.decay, self.weights[:, item_idx])

    def save(self, directory: Path) -> None:
        np.save(directory / "ease_weights.npy", self.weights)
        meta = {"config": self.config.to_dict(), "l2": self.l2, "decay": self.decay}
        (directory / "ease_config.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        meta = json.loads((directory / "ease_config.json").read_text())
        model = cls(EASEConfig.from_dict(meta["config"]))
        model.weights = np.load(directory / "ease_weights.npy")
        model.l2 = meta["l2"]
        model.decay = meta.get("decay", 1.0)  # runs saved before the decay was chosen: plain EASE
        model.n_items = len(model.weights)
        model.fitted = True
        return model
