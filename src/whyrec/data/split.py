"""Leave-one-out split by time: last item test, second-to-last validation, the rest train."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whyrec.data.dataset import Dataset
from whyrec.data.vocab import Vocabulary
from whyrec.errors import DataError

MIN_SEQUENCE = 3  # one train item, one validation item, one test item


@dataclass(frozen=True)
class SequenceSplit:
    """Users' full time-ordered sequences (item indices) and the leave-one-out views of them."""

    name: str
    users: Vocabulary
    items: Vocabulary
    sequences: tuple[np.ndarray, ...]  # one int64 array per user, in time order
    dropped_short_users: int = 0

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def train(self) -> list[np.ndarray]:
        return [s[:-2] for s in self.sequences]

    def valid(self) -> tuple[list[np.ndarray], np.ndarray]:
        return [s[:-2] for s in self.sequences], np.array([s[-2] for s in self.sequences])

    def test(self) -> tuple[list[np.ndarray], np.ndarray]:
        return [s[:-1] for s in self.sequences], np.array([s[-1] for s in self.sequences])

    def full(self) -> list[np.ndarray]:
        return list(self.sequences)

    def train_item_counts(self) -> np.ndarray:
        counts = np.zeros(self.n_items, dtype=np.int64)
        for s in self.train():
            np.add.at(counts, s, 1)
        return counts


def leave_one_out(dataset: Dataset) -> SequenceSplit:
    sequences = dataset.sequences()
    kept = {u: s for u, s in sequences.items() if len(s) >= MIN_SEQUENCE}
    if not kept:
        raise DataError(
            f"{dataset.name}: no user has {MIN_SEQUENCE} or more interactions, so nothing can be split"
        )
    item_ids = sorted({i for s in kept.values() for i in s})
    items = Vocabulary(item_ids, kind="item")
    users = Vocabulary(kept.keys(), kind="user")
    arrays = tuple(items.indices(s) for s in kept.values())
    return SequenceSplit(
        name=dataset.name,
        users=users,
        items=items,
        sequences=arrays,
        dropped_short_users=len(sequences) - len(kept),
    )
