"""Classic peers for ``bench.compare``, fitted on whyrec's split, settings chosen on validation.

- ``als``: implicit's AlternatingLeastSquares; a user's history is folded in at scoring time
  (``recalculate_user``), so validation and test users are scored from the history they have.
- ``itemknn-cosine``, ``itemknn-bm25``: implicit's item-item neighbourhood models; a history is
  scored as the sum of its items' neighbour similarities (implicit's own rule).
- ``ease``: EASE (Steck, 2019), whose closed form is computed here in numpy: no installable
  library other than RecBole ships it. Its L2 weight λ is chosen on validation.

Every peer trains on the training part of each sequence only (as whyrec's models do), is tuned
on validation NDCG@10 over a small grid, and is tested once with the chosen settings. Ranks,
ties and seen-item masking are whyrec's (:mod:`whyrec.metrics`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from whyrec.data import SequenceSplit
from whyrec.metrics import evaluate, metrics_from_ranks, rank_targets

PEERS = ("ease", "als", "itemknn-cosine", "itemknn-bm25")
GRIDS: dict[str, dict[str, list[Any]]] = {
    "ease": {"l2": [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]},
    "als": {"factors": [64, 128], "regularization": [0.01, 0.1, 1.0], "alpha": [1.0, 10.0]},
    "itemknn-cosine": {"K": [20, 50, 100, 200]},
    "itemknn-bm25": {"K": [20, 50, 100, 200]},
}


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary (users, items) matrix: which items each history holds."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), n_items))
    matrix.data[:] = 1.0  # repeated items count once
    return matrix


class Peer:
    """A fitted classic model behind whyrec's ``score(histories)`` interface."""

    def __init__(self, name: str, n_items: int, score: Callable[[sp.csr_matrix], np.ndarray]) -> None:
        self.name = name
        self.n_items = n_items
        self._score = score

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self._score(history_matrix(histories, self.n_items)), dtype=np.float64)


def ease_eigen(train: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """X'X = V diag(values) V', computed once so that each l2 of the grid costs one product."""
    values, vectors = np.linalg.eigh((train.T @ train).toarray().astype(np.float64))
    return values, vectors


def fit_peer(kind: str, train: sp.csr_matrix, settings: dict[str, Any], seed: int = 0) -> Peer:
    n_items = train.shape[1]
    if kind == "ease":
        values, vectors = settings["_eigen"] if "_eigen" in settings else ease_eigen(train)
        inverse = (vectors / (values + settings["l2"])[None, :]) @ vectors.T  # (X'X + l2 I)^-1
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices(n_items)] = 0.0
        return Peer("bench:EASE", n_items, lambda x: x @ weights)
    if kind == "als":
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's inside them oversubscribe
            als = AlternatingLeastSquares(**settings, iterations=15, random_state=seed, num_threads=2)
            als.fit(train, show_progress=False)

        def als_score(x: sp.csr_matrix) -> np.ndarray:
            users = als.recalculate_user(np.arange(x.shape[0]), x)
            return np.asarray(users @ als.item_factors.T)

        return Peer("implicit:ALS", n_items, als_score)
    if kind in ("itemknn-cosine", "itemknn-bm25"):
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        knn = (CosineRecommender if kind == "itemknn-cosine" else BM25Recommender)(
            K=settings["K"], num_threads=2
        )
        knn.fit(train, show_progress=False)
        similarity = knn.similarity.tocsr()
        label = "implicit:ItemKNN-cosine" if kind == "itemknn-cosine" else "implicit:ItemKNN-BM25"
        return Peer(label, n_items, lambda x: (x @ similarity).toarray())
    raise ValueError(f"unknown peer {kind!r}: choose from {', '.join(PEERS)}")


def run_peer(kind: str, split: SequenceSplit, dataset: str, seed: int = 0) -> dict[str, Any]:
    """Tune KIND on validation NDCG@10, then test it once: one metrics row with its grid."""
    train = history_matrix(list(split.train()), split.n_items)
    valid_histories, valid_targets = split.valid()
    grid = GRIDS[kind]
    tried = []
    best: tuple[float, dict[str, Any], float] | None = None
    shared = {"_eigen": ease_eigen(train)} if kind == "ease" else {}
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        start = time.perf_counter()
        peer = fit_peer(kind, train, {**settings, **shared}, seed)
        seconds = time.perf_counter() - start
        ranks, _ = rank_targets(peer, valid_histories, valid_targets)
        valid = metrics_from_ranks(ranks)["NDCG@10"]
        tried.append({**settings, "valid_NDCG@10": round(valid, 5)})
        if best is None or valid > best[0]:
            best = (valid, settings, seconds)
    assert best is not None
    valid, settings, _ = best
    start = time.perf_counter()
    peer = fit_peer(kind, train, settings, seed)
    train_seconds = time.perf_counter() - start
    histories, targets = split.test()
    test = evaluate(peer, histories, targets, split.n_items)
    return {
        "dataset": dataset,
        "model": peer.name,
        "n_users": split.n_users,
        "n_items": split.n_items,
        **{k: round(v, 5) for k, v in test.items()},
        "train_seconds": round(train_seconds, 2),
        "valid_NDCG@10": round(valid, 5),
        "kind": "classic",
        "settings": settings,
        "grid": tried,
    }


#: peers that are single neural networks (compared with whyrec's single networks)
PEER_NETWORKS = ("reference:sasrec", "recbole:SASRec", "recbole:GRU4Rec", "recbole:BERT4Rec")
#: whyrec's single networks
NETWORKS = ("sasrec", "gru4rec", "bert4rec")


def valid_ndcg(row: dict[str, Any]) -> float | None:
    """A row's validation NDCG@10 (the reference reports it as a curve: its best epoch)."""
    if "valid_NDCG@10" in row:
        return float(row["valid_NDCG@10"])
    curve = [float(p["NDCG@10"]) for p in row.get("valid_curve", [])]
    return max(curve) if curve else None


def test_ndcg(row: dict[str, Any]) -> float:
    """Test NDCG@10; a RecBole row is scored several ways (as RecBole ranks, seen items masked,
    Pop from exact counts) and a peer is credited with its best showing."""
    variants = [row, row.get("seen_masked", {}), row.get("exact_counts", {})]
    return max(float(v["NDCG@10"]) for v in variants if "NDCG@10" in v)


def is_peer(row: dict[str, Any]) -> bool:
    return ":" in str(row["model"])


def peer_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Two test NDCG@10 ratios: the best whyrec model of any kind against the best peer of any
    kind, and the best single whyrec network against the best single peer network. whyrec's side
    is chosen on validation NDCG@10; the peer's side is its best test showing (peers report
    validation under different protocols, and this choice can only lower the ratio). Peers that
    stopped before converging are left out."""
    usable = [r for r in rows if r.get("converged", True) and (is_peer(r) or valid_ndcg(r) is not None)]
    pairs = {
        "any_model": (
            [r for r in usable if not is_peer(r)],
            [r for r in usable if is_peer(r)],
        ),
        "single_network": (
            [r for r in usable if r["model"] in NETWORKS],
            [r for r in usable if r["model"] in PEER_NETWORKS],
        ),
    }
    out: dict[str, Any] = {}
    for name, (ours, theirs) in pairs.items():
        if not ours or not theirs:
            out[name] = None
            continue
        a = max(ours, key=lambda r: valid_ndcg(r) or 0.0)
        b = max(theirs, key=test_ndcg)  # the peer's best test showing: it can only lower the ratio
        out[name] = {
            "whyrec": a["model"],
            "whyrec_valid_NDCG@10": valid_ndcg(a),
            "whyrec_test_NDCG@10": a["NDCG@10"],
            "peer": b["model"],
            "peer_valid_NDCG@10": valid_ndcg(b),
            "peer_test_NDCG@10": test_ndcg(b),
            "ratio": round(a["NDCG@10"] / test_ndcg(b), 3) if test_ndcg(b) > 0 else None,
        }
    return out
