"""Sparse top-N item-kNN against the dense n × n computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from whyrec.models.neighbours import cosine_top_n, keep_top_per_row
from whyrec.models.simple import ItemKNN, ItemKNNConfig


def _dense_reference(
    histories: list[np.ndarray], n_items: int, neighbours: int, shrinkage: float
) -> np.ndarray:
    """The n × n definition: shrunk cosine, no self-similarity, each row's top N (ties: lower index)."""
    users = np.zeros((len(histories), n_items), dtype=np.float32)
    for row, history in enumerate(histories):
        users[row, history] = 1.0
    co = users.T @ users
    norms = np.sqrt(np.diag(co)).copy()
    np.fill_diagonal(co, 0.0)
    sim = co / (np.outer(norms, norms) + shrinkage + 1e-9)
    keep = min(neighbours, n_items - 1)
    order = np.argsort(-sim, axis=1, kind="stable")
    np.put_along_axis(sim, order[:, keep:], 0.0, axis=1)
    return sim


def _histories(seed: int, n_users: int, n_items: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1)  # power law: popular items co-occur a lot
    popularity /= popularity.sum()
    return [rng.choice(n_items, size=rng.integers(1, 12), p=popularity) for _ in range(n_users)]


@pytest.mark.parametrize(("neighbours", "budget"), [(5, 50), (20, 10_000_000), (500, 300)])
def test_sparse_top_n_matches_the_dense_reference(neighbours: int, budget: int) -> None:
    n_items = 120
    histories = _histories(neighbours, 400, n_items)
    users = sp.csr_matrix(
        (np.ones(sum(map(len, histories))), (np.repeat(np.arange(400), [len(h) for h in histories]),
                                             np.concatenate(histories))),
        shape=(400, n_items),
    )  # fmt: skip
    users.data[:] = 1.0
    sparse = cosine_top_n(users, neighbours, 10.0, budget=budget)  # small budgets: many blocks
    dense = _dense_reference(histories, n_items, neighbours, 10.0)
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-6, atol=0)
    assert np.diff(sparse.indptr).max() <= neighbours
    assert sparse.diagonal().max() == 0.0


def test_itemknn_scores_and_contributions_match_the_dense_reference() -> None:
    n_items = 90
    histories = _histories(7, 300, n_items)
    model = ItemKNN(ItemKNNConfig(neighbours=8, shrinkage=5.0, decay=1.0)).fit_histories(histories, n_items)
    dense = _dense_reference(histories, n_items, 8, 5.0)
    queries = histories[:20]
    expected = np.stack([dense[h].sum(axis=0) for h in queries])  # each slot a term, repeats too
    np.testing.assert_allclose(model.score(queries), expected, rtol=1e-5, atol=1e-7)
    query = next(h for h in queries if len(np.unique(h)) < len(h))  # a repeat's slots each count
    np.testing.assert_allclose(model.contributions(query, 3), dense[query, 3], rtol=1e-6)
    # the similarity matrix holds at most items × N entries: linear in the catalogue
    assert model.similarity.nnz <= n_items * 8


def test_keep_top_per_row_breaks_ties_by_lower_column() -> None:
    block = sp.csr_matrix(np.array([[0.5, 0.5, 0.9, 0.5], [0.0, 0.1, 0.0, 0.2]], dtype=np.float32))
    kept = keep_top_per_row(block, 2).toarray()
    np.testing.assert_array_equal(
        kept, np.array([[0.5, 0.0, 0.9, 0.0], [0.0, 0.1, 0.0, 0.2]], dtype=np.float32)
    )
