"""How a sequence model reads histories: fixed-length, left-padded windows of 1-based item ids
(0 is padding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from whyrec.models.base import HIDDEN


def left_pad(history: np.ndarray, length: int) -> np.ndarray:
    """Last ``length`` items of a history (0-based indices) as 1-based ids, zero-padded on the left;
    a :data:`HIDDEN` slot becomes padding in place."""
    out = np.zeros(length, dtype=np.int64)
    tail = history[-length:] if length else history[:0]
    if len(tail):
        out[-len(tail) :] = np.where(tail == HIDDEN, -1, tail) + 1
    return out


def training_windows(histories: Sequence[np.ndarray], max_len: int, stride: int | None = None) -> np.ndarray:
    """Windows of ``max_len + 1`` items covering every history of two items or more, the last
    window ending at the history's end and each earlier one ``stride`` (default ``max_len``)
    items before it."""
    size = max_len + 1
    stride = stride or max_len
    rows = []
    for history in histories:
        if len(history) < 2:
            continue
        end = len(history)
        while True:
            rows.append(left_pad(history[max(0, end - size) : end], size))
            if end - size <= 0:
                break
            end -= stride
    return np.stack(rows)
