"""Top-N neighbour lists of a shrunk cosine without an n × n matrix: the item-user matrix is
multiplied by its transpose a block of items at a time, and each block keeps only its rows'
strongest N entries, so memory stays linear in items × N (plus one block's products)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: products held at once (nonzeros of one block of rows of the co-occurrence matrix)
BLOCK_PRODUCTS = 5_000_000


def _blocks(bounds: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose summed upper bounds of nonzeros stay within BUDGET
    (a single row above it gets a block of its own)."""
    blocks, start, total = [], 0, 0
    for row, bound in enumerate(bounds.tolist()):
        if row > start and total + bound > budget:
            blocks.append((start, row))
            start, total = row, 0
        total += bound
    if start < len(bounds):
        blocks.append((start, len(bounds)))
    return blocks


def keep_top_per_row(block: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Each row's N largest entries; ties go to the lower column index."""
    block.sort_indices()
    counts = np.diff(block.indptr)
    if counts.max(initial=0) <= n:
        return block
    rows = np.repeat(np.arange(block.shape[0]), counts)
    # by row, then value down; lexsort is stable and columns ascend within a row: ties by column
    order = np.lexsort((-block.data, rows))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - block.indptr[rows[order]]
    keep = rank < n
    kept = sp.csr_matrix(
        (block.data[keep], block.indices[keep], np.r_[0, np.cumsum(np.minimum(counts, n))]), shape=block.shape
    )
    kept.sort_indices()
    return kept


def cosine_top_n(
    users: sp.csr_matrix, n_neighbours: int, shrinkage: float, budget: int = BLOCK_PRODUCTS
) -> sp.csr_matrix:
    """(n_items, n_items) sparse matrix: row i holds i's N most similar items by
    co(i, j) / (|i| |j| + shrinkage), where co counts users holding both; no self-similarity.

    USERS is the binary (n_users, n_items) history matrix."""
    users = sp.csr_matrix(users, dtype=np.float32)
    items = users.T.tocsr()  # (n_items, n_users)
    norms = np.sqrt(np.asarray(items.sum(axis=1)).ravel()).astype(np.float32)
    user_lengths = np.diff(users.indptr).astype(np.int64)
    bounds = items @ user_lengths  # co-occurrence nonzeros of each item's row are at most this
    parts = []
    for start, stop in _blocks(np.asarray(bounds, dtype=np.int64), budget):
        co = (items[start:stop] @ users).tocoo()  # (block, n_items)
        rows = co.row + start
        off_diagonal = (rows != co.col) & (co.data != 0)  # no item is its own neighbour
        rows, cols = rows[off_diagonal], co.col[off_diagonal]
        sim = co.data[off_diagonal] / (norms[rows] * norms[cols] + np.float32(shrinkage + 1e-9))
        block = sp.csr_matrix((sim.astype(np.float32), (rows - start, cols)), shape=co.shape)
        parts.append(keep_top_per_row(block, n_neighbours))
    n_items = users.shape[1]
    if not parts:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.vstack(parts, format="csr").astype(np.float32)
