"""Map external string IDs to contiguous indices and back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from whyrec.errors import UnknownIdError


class Vocabulary:
    """An immutable, ordered set of external IDs.

    External IDs (strings) are what users, files and the API see; indices are what arrays use.
    """

    __slots__ = ("_ids", "_index", "kind")

    def __init__(self, ids: Iterable[str], kind: str = "item") -> None:
        self._ids: tuple[str, ...] = tuple(str(i) for i in ids)
        self._index = {item_id: idx for idx, item_id in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError(f"duplicate {kind} ids in vocabulary")
        self.kind = kind

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._ids)

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    def index(self, item_id: str) -> int:
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise UnknownIdError(f"unknown {self.kind} id {item_id!r}") from None

    def indices(self, ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.index(i) for i in ids), dtype=np.int64, count=len(ids))

    def id(self, idx: int) -> str:
        return self._ids[int(idx)]

    def lookup_ids(self, indices: Iterable[int]) -> list[str]:
        return [self._ids[int(i)] for i in indices]

    def get(self, item_id: str) -> int | None:
        return self._index.get(str(item_id))
