"""Dataset loaders, one per dataset kind, selected by a ``KIND:PATH`` spec."""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from whyrec.data.dataset import CleaningReport, Dataset, ItemCatalog, clean
from whyrec.data.tables import header, is_parquet, missing_columns, read_columns, sniff_sep
from whyrec.errors import DataError

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class LoadOptions:
    """Options of the ``csv`` and ``parquet`` kinds (column names, delimiters, catalogue) and of
    cleaning."""

    items: str | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    rating_col: str | None = "rating"
    sep: str | None = None  # interactions file; None: sniffed from the file
    items_sep: str | None = None  # catalogue file; None: sniffed from the file
    k_core: int | None = None  # None: the kind's default


def load_dataset(spec: str, options: LoadOptions | None = None) -> Dataset:
    """Load ``KIND:PATH`` (or the bare word ``demo``) into a cleaned :class:`Dataset`."""
    options = options or LoadOptions()
    kind, _, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "demo" and not path:
        return _load_demo(options)
    if kind not in LOADERS:
        raise DataError(f"unknown dataset kind {kind!r} in {spec!r}; use one of: {', '.join(KINDS)}")
    if not path:
        raise DataError(f"dataset spec {spec!r} has no path; write {kind}:PATH")
    if not os.path.exists(path):
        raise DataError(f"dataset path not found: {path}")
    return LOADERS[kind](Path(path), options)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    return path


def _finish(name: str, raw: pd.DataFrame, catalog: ItemCatalog, k_core: int, **kw: bool) -> Dataset:
    frame, report = clean(raw, k_core=k_core, **kw)
    return Dataset(name=name, interactions=frame, catalog=catalog, report=report)


def _k(options: LoadOptions, default: int) -> int:
    return default if options.k_core is None else options.k_core


# --- movielens -------------------------------------------------------------------------------


def _load_movielens(path: Path, options: LoadOptions) -> Dataset:
    if (path / "u.data").exists():  # ml-100k layout
        raw = pd.read_csv(
            path / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"], dtype=str
        )
        items = pd.read_csv(
            _require(path / "u.item", "ml-100k item file"),
            sep="|",
            header=None,
            encoding="latin-1",
            dtype=str,
        )
        genres = _ml100k_genre_names(path)
        flags = items.iloc[:, 5 : 5 + len(genres)].to_numpy() == "1"
        catalog = ItemCatalog(
            titles=dict(zip(items[0], items[1].fillna(""), strict=True)),
            attributes={
                item_id: tuple(g for g, on in zip(genres, row, strict=True) if on and g != "unknown")
                for item_id, row in zip(items[0], flags, strict=True)
            },
        )
    else:  # ml-1m layout: ratings.dat (or the gzipped timed part) and movies.dat
        candidates = [path / "ratings.dat", *sorted(map(Path, glob.glob(str(path / "ratings*.dat.gz"))))]
        ratings = next((c for c in candidates if c.exists()), None)
        if ratings is None:
            raise DataError(f"no MovieLens ratings in {path} (expected u.data or ratings.dat)")
        raw = _read_double_colon(ratings, ["user_id", "item_id", "rating", "timestamp"])
        movies = _read_double_colon(
            _require(path / "movies.dat", "ml-1m movies file"),
            ["item_id", "title", "genres"],
            encoding="latin-1",
        )
        catalog = _catalog_from_genre_strings(movies)
    return _finish(f"movielens:{path.name}", raw, catalog, _k(options, 0))


def _ml100k_genre_names(path: Path) -> tuple[str, ...]:
    genre_file = path / "u.genre"
    if not genre_file.exists():
        return ML100K_GENRES
    names = [line.split("|")[0] for line in genre_file.read_text("latin-1").splitlines() if "|" in line]
    return tuple(names) or ML100K_GENRES


def _read_double_colon(path: Path, names: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    # '::' needs the python engine; splitting by hand is several times faster and keeps ids as text
    opener = __import__("gzip").open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding=encoding, errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("::")
            if len(parts) < len(names):
                parts += [""] * (len(names) - len(parts))  # malformed row: cleaning drops it
            rows.append(parts[: len(names)])
    if not rows:
        raise DataError(f"no rows in {path}")
    return pd.DataFrame(rows, columns=names)


def _catalog_from_genre_strings(movies: pd.DataFrame) -> ItemCatalog:
    genres = movies["genres"].fillna("")
    return ItemCatalog(
        titles=dict(zip(movies["item_id"], movies["title"], strict=True)),
        attributes={
            i: tuple(g for g in s.split("|") if g) for i, s in zip(movies["item_id"], genres, strict=True)
        },
    )


# --- movietweetings --------------------------------------------------------------------------


def _load_movietweetings(
    path: Path, options: LoadOptions, name: str | None = None, default_k: int = 5
) -> Dataset:
    raw = _read_double_colon(
        _require(path / "ratings.dat", "MovieTweetings ratings file"),
        ["user_id", "item_id", "rating", "timestamp"],
    )
    movies = _read_double_colon(
        _require(path / "movies.dat", "MovieTweetings movies file"), ["item_id", "title", "genres"]
    )
    return _finish(
        name or f"movietweetings:{path.name}",
        raw,
        _catalog_from_genre_strings(movies),
        _k(options, default_k),
    )


def demo_data_dir() -> Path:
    return Path(str(resources.files("whyrec") / "data" / "movietweetings_demo"))


def _load_demo(options: LoadOptions) -> Dataset:
    # the bundled subset is already 10-core; no further filtering unless asked
    return _load_movietweetings(demo_data_dir(), options, name="demo", default_k=0)


# --- amazon (RecBole / UniSRec atomic files) -------------------------------------------------


def _load_amazon(path: Path, options: LoadOptions) -> Dataset:
    """Rebuild each user's full sequence from the atomic files so that a leave-one-out split
    reproduces the files' own train/valid/test rows (see tests/test_split.py)."""
    test_file = _one(path, "*.test.inter")
    valid_file = _one(path, "*.valid.inter")
    train_file = _one(path, "*.train.inter")
    stem = test_file.name[: -len(".test.inter")]
    test = _read_inter(test_file)
    valid = {user: target for user, _, target in _read_inter(valid_file)}
    # train rows come longest prefix first; the shortest one starts the sequence
    prefixes: dict[str, list[tuple[int, list[str], str]]] = {}
    for user, history, target in _read_inter(train_file):
        prefixes.setdefault(user, []).append((len(history), history, target))
    users = {str(k): v for k, v in _read_map(path / f"{stem}.user2index").items()}
    items = {str(k): v for k, v in _read_map(path / f"{stem}.item2index").items()}
    rows: list[tuple[str, str, int]] = []
    for user, test_history, test_target in test:
        train_rows = prefixes.get(user, [])
        if train_rows:
            train_rows = train_rows[::-1]  # shortest prefix first (file order is longest first)
            seq = list(train_rows[0][1]) + [target for _, _, target in train_rows]
            seq += [valid[user], test_target]
        else:
            seq = [*test_history, test_target]
        if seq[-51:-1] != test_history[-50:]:  # fall back to the file's own (truncated) view
            seq = [*test_history, test_target]
        external_user = users.get(user, user)
        rows.extend((external_user, items.get(item, item), pos) for pos, item in enumerate(seq))
    raw = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    text_file = path / f"{stem}.text"
    titles: dict[str, str] = {}
    attributes: dict[str, tuple[str, ...]] = {}
    if text_file.exists():
        text = pd.read_csv(text_file, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        for asin, body in zip(text.iloc[:, 0], text.iloc[:, 1], strict=True):
            title, attrs = _split_amazon_text(body)
            titles[asin] = title
            attributes[asin] = attrs
    catalog = ItemCatalog(titles=titles, attributes=attributes)
    # no dedup: the files are the ground truth and must be reproduced row for row
    return _finish(f"amazon:{path.name}", raw, catalog, _k(options, 0), drop_repeats=False)


def _split_amazon_text(body: str) -> tuple[str, tuple[str, ...]]:
    """UniSRec text is 'title. category path. brand.'; keep the title and the category words."""
    parts = [p.strip() for p in body.split(". ") if p.strip()]
    title = parts[0].rstrip(".") if parts else body
    attrs: list[str] = []
    for part in parts[1:]:
        part = part.rstrip(".")
        if part and part not in attrs and len(part) <= 80:
            attrs.append(part)
    return title, tuple(attrs)


def _one(path: Path, pattern: str) -> Path:
    found = sorted(glob.glob(str(path / pattern)))
    if not found:
        raise DataError(f"no {pattern} file in {path}")
    return Path(found[0])


def _read_inter(path: Path) -> list[tuple[str, list[str], str]]:
    """Rows of an atomic ``*.inter`` file: (user, history, next item)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    if frame.shape[1] < 3:
        raise DataError(f"{path} has {frame.shape[1]} columns; expected user_id, item_id_list, item_id")
    users, histories, targets = (frame.iloc[:, c].astype(str).tolist() for c in range(3))
    return [(u, h.split(), t) for u, h, t in zip(users, histories, targets, strict=True)]


def _read_map(path: Path) -> dict[str, str]:
    """``*.user2index`` / ``*.item2index``: external id -> remapped int, inverted here."""
    if not path.exists():
        return {}
    frame = pd.read_csv(path, sep="\t", header=None, dtype=str, quoting=csv.QUOTE_NONE)
    return dict(zip(frame[1], frame[0], strict=True))


# --- csv and parquet -------------------------------------------------------------------------


def _load_table(path: Path, options: LoadOptions, kind: str = "csv") -> Dataset:
    """An interactions table (csv, tsv, .gz or parquet) and an optional catalogue table."""
    sep = options.sep or ("," if is_parquet(path) else sniff_sep(path))
    columns = header(path, sep)
    wanted = {
        "user": (options.user_col, "pass --user-col COLUMN"),
        "item": (options.item_col, "pass --item-col COLUMN"),
        "time": (options.time_col, "pass --time-col COLUMN"),
    }
    if error := missing_columns(path, sep, columns, wanted, "--sep"):
        raise error
    extras = [c for c in (options.rating_col, "event", "dwell") if c and c in columns]
    needed = list(dict.fromkeys([c for c, _ in wanted.values()] + extras))
    numeric = [
        c
        for c in (options.time_col, options.rating_col)
        if c and c not in (options.user_col, options.item_col)
    ]
    frame = read_columns(path, sep, needed, numeric=numeric)
    raw = pd.DataFrame(
        {
            "user_id": frame[options.user_col],
            "item_id": frame[options.item_col],
            "timestamp": frame[options.time_col],
        }
    )
    del frame[options.user_col], frame[options.item_col]  # free the text columns early
    if options.rating_col and options.rating_col in frame.columns:
        raw["rating"] = pd.to_numeric(frame[options.rating_col], errors="coerce")
    for extra in ("event", "dwell"):
        if extra in frame.columns:
            raw[extra] = frame[extra]
    del frame
    catalog = _table_catalog(Path(options.items), options) if options.items else ItemCatalog(titles={})
    return _finish(f"{kind}:{path.name}", raw, catalog, _k(options, 0))


def _load_parquet(path: Path, options: LoadOptions) -> Dataset:
    return _load_table(path, options, kind="parquet")


def _table_catalog(path: Path, options: LoadOptions) -> ItemCatalog:
    _require(path, "item file")
    sep = options.items_sep or ("," if is_parquet(path) else sniff_sep(path))
    columns = header(path, sep)
    id_col = options.item_col if options.item_col in columns else "item_id"
    wanted = {"item id": (id_col, "pass --item-col COLUMN"), "title": ("title", "name a column 'title'")}
    if error := missing_columns(path, sep, columns, wanted, "--items-sep"):
        raise DataError(f"item file: {error}")
    items = read_columns(path, sep, columns).fillna("").astype(str)
    ids = items[id_col].tolist()
    attr_cols = [c for c in ("genres", "categories", "tags", "category") if c in columns]
    other = [c for c in columns if c not in {id_col, "title", *attr_cols}]
    attr_values = [items[c].tolist() for c in attr_cols]
    other_values = [items[c].tolist() for c in other]
    attributes = {
        item_id: tuple(
            a.strip() for values in attr_values for a in values[row].replace(",", "|").split("|") if a.strip()
        )
        for row, item_id in enumerate(ids)
    }
    descriptions = {
        item_id: text
        for row, item_id in enumerate(ids)
        if (text := ". ".join(v[row] for v in other_values if v[row].strip()))
    }
    return ItemCatalog(
        titles=dict(zip(ids, items["title"].tolist(), strict=True)),
        attributes=attributes,
        descriptions=descriptions,
    )


LOADERS: dict[str, Callable[[Path, LoadOptions], Dataset]] = {
    "movielens": _load_movielens,
    "amazon": _load_amazon,
    "movietweetings": _load_movietweetings,
    "csv": _load_table,
    "parquet": _load_parquet,
}
KINDS = (*LOADERS, "demo")

__all__ = ["KINDS", "CleaningReport", "LoadOptions", "load_dataset"]
