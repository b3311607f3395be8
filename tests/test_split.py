"""Leave-one-out by time, and exact reproduction of the Amazon files' own split."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from whyrec.data import leave_one_out, load_dataset

from .conftest import shared, write_csv


def test_leave_one_out_takes_last_for_test_and_second_last_for_valid(tmp_path: Path) -> None:
    log, _ = write_csv(tmp_path / "log.csv", [[0, 1, 2, 3], [4, 5, 6], [7, 8]], items=False)
    split = leave_one_out(load_dataset(f"csv:{log}"))
    assert split.n_users == 2 and split.dropped_short_users == 1  # a 2-item user cannot be split
    ids = split.items
    histories, targets = split.test()
    assert [ids.lookup_ids(h) for h in histories] == [["i0", "i1", "i2"], ["i4", "i5"]]
    assert ids.lookup_ids(targets) == ["i3", "i6"]
    valid_h, valid_t = split.valid()
    assert [ids.lookup_ids(h) for h in valid_h] == [["i0", "i1"], ["i4"]]
    assert ids.lookup_ids(valid_t) == ["i2", "i5"]
    assert [ids.lookup_ids(h) for h in split.train()] == [["i0", "i1"], ["i4"]]
    assert split.train_item_counts().sum() == 3


def _read_map(path: Path) -> list[tuple[str, str]]:
    with open(path) as handle:
        return [(a, b.strip()) for a, b in (line.split("\t") for line in handle)]


def _rows(path: Path) -> list[tuple[str, tuple[str, ...], str]]:
    with open(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(u, tuple(h.split()), t) for u, h, t in reader]


@pytest.mark.realdata
def test_amazon_split_reproduces_the_files_exactly() -> None:
    path = shared("amazon-scientific-unisrec")
    split = leave_one_out(load_dataset(f"amazon:{path}"))
    users = dict(_read_map(path / "Scientific.user2index"))
    items = dict(_read_map(path / "Scientific.item2index"))
    internal_item = np.array([items[i] for i in split.items.ids])

    def to_file_view(history: np.ndarray) -> tuple[str, ...]:
        return tuple(internal_item[history[-50:]])  # the files truncate histories to 50

    for name, (histories, targets) in (("test", split.test()), ("valid", split.valid())):
        ours = {
            (users[u], to_file_view(h), internal_item[t])
            for u, h, t in zip(split.users.ids, histories, targets, strict=True)
        }
        assert ours == set(_rows(path / f"Scientific.{name}.inter")), name
    train_rows = []
    for u, seq in zip(split.users.ids, split.train(), strict=True):
        train_rows += [
            (users[u], to_file_view(seq[:end]), internal_item[seq[end]]) for end in range(1, len(seq))
        ]
    file_rows = _rows(path / "Scientific.train.inter")
    assert len(train_rows) == len(file_rows)
    assert sorted(train_rows) == sorted(file_rows)
