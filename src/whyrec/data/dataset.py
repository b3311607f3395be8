"""In-memory datasets: a cleaned, time-ordered interaction log plus an item catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from whyrec.errors import DataError

#: columns every cleaned interaction frame has; optional ones follow when the source has them
CORE_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_COLUMNS = ("rating", "event", "dwell")


@dataclass(frozen=True)
class ItemCatalog:
    """Item text and attributes, keyed by external item id."""

    titles: dict[str, str]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)

    def title(self, item_id: str) -> str:
        return self.titles.get(item_id, item_id)

    def attrs(self, item_id: str) -> tuple[str, ...]:
        return self.attributes.get(item_id, ())

    def text(self, item_id: str) -> str:
        """The text the language model reads: title, attributes, description."""
        parts = [self.title(item_id)]
        if attrs := self.attrs(item_id):
            parts.append(", ".join(attrs))
        if desc := self.descriptions.get(item_id):
            parts.append(desc)
        return ". ".join(p.strip().rstrip(".") for p in parts if p.strip())

    def to_records(self, item_ids: list[str]) -> list[dict[str, object]]:
        return [
            {
                "item_id": i,
                "title": self.title(i),
                "attributes": list(self.attrs(i)),
                "description": self.descriptions.get(i, ""),
            }
            for i in item_ids
        ]

    @classmethod
    def from_records(cls, records: list[dict]) -> ItemCatalog:
        return cls(
            titles={str(r["item_id"]): str(r["title"]) for r in records},
            attributes={str(r["item_id"]): tuple(r.get("attributes") or ()) for r in records},
            descriptions={str(r["item_id"]): str(r["description"]) for r in records if r.get("description")},
        )


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning read and dropped, so nothing disappears silently."""

    rows_read: int
    duplicates_dropped: int
    missing_ids_dropped: int
    bad_timestamps_dropped: int
    kcore_dropped: int
    n_users: int
    n_items: int
    n_interactions: int

    def lines(self) -> list[str]:
        return [
            f"rows read               {self.rows_read:>10,}",
            f"duplicates dropped      {self.duplicates_dropped:>10,}",
            f"missing ids dropped     {self.missing_ids_dropped:>10,}",
            f"bad timestamps dropped  {self.bad_timestamps_dropped:>10,}",
            f"k-core removals         {self.kcore_dropped:>10,}",
            f"users / items / rows    {self.n_users:,} / {self.n_items:,} / {self.n_interactions:,}",
        ]


@dataclass(frozen=True)
class Dataset:
    """A cleaned interaction log (time-ordered within each user) and its catalogue."""

    name: str
    interactions: pd.DataFrame
    catalog: ItemCatalog
    report: CleaningReport

    def sequences(self) -> dict[str, list[str]]:
        """Each user's items in time order (ties in file order)."""
        grouped = self.interactions.groupby("user_id", sort=False)["item_id"]
        return {str(u): items.tolist() for u, items in grouped}


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Unix seconds (int/float or numeric strings) or ISO 8601; unparseable values become NaN."""
    numeric = pd.to_numeric(values, errors="coerce")
    if values.dtype.kind in "iuf":
        return numeric.astype(float)
    needs_parsing = numeric.isna() & values.notna()
    if needs_parsing.any():
        parsed = pd.to_datetime(values[needs_parsing], errors="coerce", utc=True, format="ISO8601")
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        numeric = numeric.astype(float)
        numeric[needs_parsing] = seconds
    return numeric.astype(float)


def _ids(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Stripped ids as integer codes (-1: missing or empty) and the distinct ids they index."""
    text = values.astype("string").str.strip()
    codes, uniques = pd.factorize(text.mask(text == ""), use_na_sentinel=True)
    return codes.astype(np.int64), pd.Index(uniques)


def clean(
    raw: pd.DataFrame,
    *,
    k_core: int = 0,
    drop_repeats: bool = True,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows with missing ids or bad timestamps, repeated (user, item) pairs and
    (optionally) users/items below ``k_core``; order each user's rows by time, ties in file order.

    ``raw`` needs the columns user_id, item_id, timestamp in file order. Ids are handled as
    integer codes (sorting and grouping ten million rows of text would not fit the time).
    """
    rows_read = len(raw)
    users, user_ids = _ids(raw["user_id"])
    items, item_ids = _ids(raw["item_id"])
    missing = (users < 0) | (items < 0)
    times = parse_timestamps(raw["timestamp"]).to_numpy(dtype=np.float64)
    bad_time = ~missing & ~np.isfinite(times)
    keep = np.flatnonzero(~missing & ~bad_time)  # ascending: file order
    frame = pd.DataFrame({"user": users[keep], "item": items[keep], "timestamp": times[keep], "_order": keep})
    frame = frame.sort_values(["user", "timestamp", "_order"], kind="stable")
    before = len(frame)
    # A repeat of a (user, item) pair can never be a target once seen items are excluded;
    # keep the first time the user met the item.
    key = ["user", "item"] if drop_repeats else ["user", "item", "timestamp"]
    frame = frame.drop_duplicates(key, keep="first")
    duplicates = before - len(frame)
    before = len(frame)
    if k_core > 1:
        frame = _k_core(frame, k_core)
    kcore_dropped = before - len(frame)
    if frame.empty:
        raise DataError(
            f"no interactions left after cleaning ({rows_read:,} rows read"
            + (f", k-core {k_core}" if k_core > 1 else "")
            + ")"
        )
    # users keep the order of their first appearance in the file: stable and reproducible
    first_seen = frame.groupby("user", sort=False)["_order"].transform("min")
    frame = frame.assign(_first=first_seen).sort_values(["_first", "timestamp", "_order"], kind="stable")
    order = frame["_order"].to_numpy()
    out = pd.DataFrame(
        {
            "user_id": user_ids.take(frame["user"].to_numpy()).astype(str),
            "item_id": item_ids.take(frame["item"].to_numpy()).astype(str),
            "timestamp": frame["timestamp"].to_numpy(),
        }
    )
    for col in OPTIONAL_COLUMNS:
        if col in raw.columns:
            out[col] = raw[col].to_numpy()[order]
    report = CleaningReport(
        rows_read=rows_read,
        duplicates_dropped=duplicates,
        missing_ids_dropped=int(missing.sum()),
        bad_timestamps_dropped=int(bad_time.sum()),
        kcore_dropped=kcore_dropped,
        n_users=int(frame["user"].nunique()),
        n_items=int(frame["item"].nunique()),
        n_interactions=len(out),
    )
    return out, report


def _k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    while True:
        n = len(frame)
        frame = frame[frame.groupby("user")["user"].transform("size") >= k]
        frame = frame[frame.groupby("item")["item"].transform("size") >= k]
        if len(frame) == n:
            return frame
