"""Leave-one-out split by time: last item test, second-to-last validation, the rest train."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    """Users with at least MIN_SEQUENCE interactions, items indexed in sorted id order.

    Vectorised over the frame, so ten million rows split in seconds; a user's items keep their
    row order (cleaning sorts them by time)."""
    frame = dataset.interactions
    user_codes, user_ids = pd.factorize(frame["user_id"], sort=False)  # users in order of first row
    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)  # ids in sorted order
    if len(user_codes) > 1 and (np.diff(user_codes) < 0).any():  # not grouped by user: group, stably
        order = np.argsort(user_codes, kind="stable")
        user_codes, item_codes = user_codes[order], item_codes[order]
    lengths = np.bincount(user_codes, minlength=len(user_ids))
    kept_users = lengths >= MIN_SEQUENCE
    if not kept_users.any():
        raise DataError(
            f"{dataset.name}: no user has {MIN_SEQUENCE} or more interactions, so nothing can be split"
        )
    rows = kept_users[user_codes]
    # items of kept users only, renumbered densely; np.unique keeps the sorted order of the ids
    present, item_codes = np.unique(item_codes[rows], return_inverse=True)
    items = Vocabulary(np.asarray(item_ids, dtype=object)[present].tolist(), kind="item")
    users = Vocabulary(np.asarray(user_ids, dtype=object)[kept_users].tolist(), kind="user")
    cuts = np.cumsum(lengths[kept_users])[:-1]
    arrays = tuple(np.split(item_codes.astype(np.int64), cuts))
    return SequenceSplit(
        name=dataset.name,
        users=users,
        items=items,
        sequences=arrays,
        dropped_short_users=int((~kept_users).sum()),
    )
