"""Reading the tables people really have: csv/tsv (plain or gzipped, each file with its own
delimiter, sniffed unless given) and parquet, with typed columns and only the columns needed."""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from whyrec.errors import DataError

log = logging.getLogger(__name__)

try:  # optional (the `scale` extra): parquet files and compact string columns
    import pyarrow.dataset as pa_dataset
except ImportError:  # pragma: no cover - depends on the installation
    pa_dataset = None

#: delimiters tried when sniffing, most common first
CANDIDATE_SEPS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024


def is_parquet(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in (".parquet", ".pq")


def _opener(path: Path):  # type: ignore[no-untyped-def]
    return gzip.open if path.suffix.lower() == ".gz" else open


def head_lines(path: Path, n_bytes: int = SNIFF_BYTES) -> list[str]:
    """The complete lines in the first N_BYTES of PATH (gzip-aware)."""
    try:
        with _opener(path)(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            text = handle.read(n_bytes)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    lines = text.splitlines()
    if len(text) == n_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [line for line in lines if line.strip()]


def sniff_sep(path: Path) -> str:
    """The delimiter that splits PATH's first lines into the same number (> 1) of fields,
    preferring the one with most fields; ',' when none does (a one-column file)."""
    lines = head_lines(path)
    if not lines:
        raise DataError(f"no rows in {path}")
    best, best_fields = ",", 1
    for sep in CANDIDATE_SEPS:
        counts = {len(row) for row in csv.reader(lines[:200], delimiter=sep)}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = sep, fields
    return best


def sep_name(sep: str) -> str:
    return {"\t": "tab", " ": "space"}.get(sep, sep)


def header(path: Path, sep: str) -> list[str]:
    """Column names of PATH as read with SEP (parquet: from its schema)."""
    if is_parquet(path):
        if pa_dataset is None:
            raise DataError("the parquet kind needs pyarrow: pip install 'whyrec[scale]'")
        try:
            return list(pa_dataset.dataset(path, format="parquet").schema.names)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read parquet {path}: {exc}") from None
    lines = head_lines(path)
    if not lines:
        raise DataError(f"no rows in {path}")
    return [c.strip() for c in next(csv.reader(lines[:1], delimiter=sep))]


def _parquet(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, columns=list(columns) if columns is not None else None)
    except ImportError:
        raise DataError("the parquet kind needs pyarrow: pip install 'whyrec[scale]'") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read parquet {path}: {str(exc).splitlines()[0]}") from None


def read_columns(path: Path, sep: str, columns: Sequence[str], numeric: Sequence[str] = ()) -> pd.DataFrame:
    """Only COLUMNS of PATH, as text except NUMERIC ones (typed by the parser, text where a value
    is not a number); parquet keeps its own types. Empty cells are missing. Multithreaded Arrow
    parsing where pyarrow is installed, pandas' C parser otherwise (or if Arrow refuses the file)."""
    if is_parquet(path):
        return _parquet(path, columns)
    dtypes = {c: str for c in columns if c not in numeric}
    engines: list[Literal["pyarrow", "c", "python"]] = ["c"] if len(sep) == 1 else ["python"]
    if pa_dataset is not None and len(sep) == 1:
        engines.insert(0, "pyarrow")
    for engine in engines:
        try:
            frame = pd.read_csv(
                path,
                sep=sep,
                usecols=list(columns),
                dtype=dtypes,
                keep_default_na=False,
                na_values=[""],
                on_bad_lines="skip",
                engine=engine,
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            if engine != engines[-1]:
                continue  # Arrow is stricter (quoting, ragged rows): let pandas' parser try
            raise DataError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
        except Exception as exc:  # pyarrow's own ArrowInvalid and friends
            if engine == engines[-1]:
                raise
            log.debug(f"arrow could not parse {path} ({exc}); using pandas' parser")
            continue
        break
    if frame.empty:
        raise DataError(f"no rows in {path}")
    return frame


def missing_columns(
    path: Path, sep: str, columns: list[str], wanted: dict[str, tuple[str, str]], sep_option: str
) -> DataError | None:
    """An error that says what was read and what to pass when a WANTED column (role -> (column,
    remedy)) is not among COLUMNS; None when all are there."""
    missing = [(role, col, remedy) for role, (col, remedy) in wanted.items() if col not in columns]
    if not missing:
        return None
    names = ", ".join(repr(c) for c in columns)
    read = f"read {path.name} as {len(columns)} column(s) split by {sep_name(sep)!r}: {names}"
    if not is_parquet(path) and len(columns) == 1:
        sniffed = sniff_sep(path)
        if sniffed != sep:
            looks = sep_name(sniffed)
            return DataError(f"{read}; its delimiter looks like {looks!r}: pass {sep_option} {looks!r}")
        return DataError(f"{read}; pass {sep_option} with the file's delimiter")
    hints = "; ".join(f"no {col!r} ({role}): {remedy}" for role, col, remedy in missing)
    return DataError(f"{read}; {hints}")
