"""Ingestion of the files people really have: each file with its own delimiter (sniffed or given),
gzipped files, parquet, clear messages for missing columns, and cleaning on integer codes that
matches a plain reference."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from whyrec.cli.parser import build_parser, load_options
from whyrec.data import Dataset, ItemCatalog, LoadOptions, leave_one_out, load_dataset
from whyrec.data.dataset import clean
from whyrec.data.tables import sniff_sep
from whyrec.errors import DataError

ROWS = [("u1", "A", 1), ("u1", "B", 2), ("u1", "C", 3), ("u2", "B", 5), ("u2", "A", 4), ("u2", "C", 6)]


def _write(path: Path, sep: str, header: tuple[str, ...] = ("user_id", "item_id", "timestamp")) -> Path:
    lines = [sep.join(header), *(sep.join(map(str, row)) for row in ROWS)]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _items(path: Path, sep: str = ",") -> Path:
    path.write_text(
        sep.join(["item_id", "title", "genres"])
        + "\n"
        + "\n".join(
            sep.join(r) for r in [["A", "Alpha", "Drama"], ["B", "Beta", "Comedy"], ["C", "Gamma", ""]]
        )
        + "\n"
    )
    return path


EXPECTED = {"u1": ["A", "B", "C"], "u2": ["A", "B", "C"]}


def test_semicolon_interactions_with_a_comma_catalogue(tmp_path: Path) -> None:
    # the case a new user meets: --sep ';' for the log and an ordinary comma-separated --items file
    log = _write(tmp_path / "log.csv", ";")
    items = _items(tmp_path / "items.csv", ",")
    args = build_parser().parse_args(
        ["evaluate", "--dataset", f"csv:{log}", "--sep", ";", "--items", str(items)]
    )
    dataset = load_dataset(args.dataset, load_options(args))
    assert dataset.sequences() == EXPECTED
    assert dataset.catalog.title("B") == "Beta"
    assert dataset.catalog.attrs("A") == ("Drama",)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_each_file_delimiter_is_sniffed(tmp_path: Path, sep: str) -> None:
    log = _write(tmp_path / "log.txt", sep)
    items = _items(tmp_path / "items.txt", {",": ";", ";": "\t", "\t": "|", "|": ","}[sep])
    assert sniff_sep(log) == sep
    dataset = load_dataset(f"csv:{log}", LoadOptions(items=str(items)))
    assert dataset.sequences() == EXPECTED
    assert dataset.catalog.title("C") == "Gamma"


def test_items_sep_option_is_used_for_the_catalogue(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.csv", ",")
    items = _items(tmp_path / "items.csv", "|")
    args = build_parser().parse_args(
        ["evaluate", "--dataset", f"csv:{log}", "--items", str(items), "--items-sep", "|"]
    )
    assert load_options(args).items_sep == "|"
    assert load_dataset(args.dataset, load_options(args)).catalog.title("A") == "Alpha"
    # a wrong --items-sep reads one column: the message says what was read and what to pass
    with pytest.raises(DataError, match=r"item file: read items.csv as 1 column.*pass --items-sep '\|'"):
        load_dataset(f"csv:{log}", LoadOptions(items=str(items), items_sep=";"))


def test_wrong_sep_says_what_was_read_and_what_to_pass(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.csv", ";")
    with pytest.raises(
        DataError,
        match=r"read log.csv as 1 column\(s\) split by ',': 'user_id;item_id;timestamp'; "
        r"its delimiter looks like ';': pass --sep ';'",
    ):
        load_dataset(f"csv:{log}", LoadOptions(sep=","))


def test_missing_catalogue_column_names_the_remedy(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.csv", ",")
    items = tmp_path / "items.csv"
    items.write_text("item_id,name\nA,Alpha\n")
    with pytest.raises(DataError, match=r"'item_id', 'name'; no 'title' \(title\): name a column 'title'"):
        load_dataset(f"csv:{log}", LoadOptions(items=str(items)))


def test_gzipped_files(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.csv.gz", "\t")
    items = tmp_path / "items.csv.gz"
    items.write_bytes(gzip.compress(_items(tmp_path / "plain.csv").read_bytes()))
    dataset = load_dataset(f"csv:{log}", LoadOptions(items=str(items)))
    assert dataset.sequences() == EXPECTED
    assert dataset.catalog.title("A") == "Alpha"


def test_parquet_kind_keeps_typed_columns(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(ROWS, columns=["who", "item_id", "timestamp"]).astype({"timestamp": "int64"})
    frame.to_parquet(tmp_path / "log.parquet")
    pd.DataFrame({"item_id": ["A"], "title": ["Alpha"]}).to_parquet(tmp_path / "items.parquet")
    options = LoadOptions(user_col="who", items=str(tmp_path / "items.parquet"))
    dataset = load_dataset(f"parquet:{tmp_path / 'log.parquet'}", options)
    assert dataset.name == "parquet:log.parquet"
    assert dataset.sequences() == EXPECTED
    assert dataset.catalog.title("A") == "Alpha"
    with pytest.raises(DataError, match=r"no 'user_id' \(user\): pass --user-col COLUMN"):
        load_dataset(f"parquet:{tmp_path / 'log.parquet'}")


def _reference_clean(raw: pd.DataFrame) -> list[tuple[str, str, float]]:
    """The plain definition: drop bad rows, keep each pair's earliest, users by first row."""
    rows = []
    for order, (user, item, time) in enumerate(raw.itertuples(index=False)):
        user, item = (str(user).strip() if isinstance(user, str) else ""), str(item).strip()
        t = pd.to_numeric(time, errors="coerce")
        if user and item and item != "nan" and np.isfinite(t):
            rows.append((user, item, float(t), order))
    rows.sort(key=lambda r: (r[0], r[2], r[3]))
    seen, kept = set(), []
    for row in rows:
        if (row[0], row[1]) not in seen:
            seen.add((row[0], row[1]))
            kept.append(row)
    first = {}
    for row in kept:
        first[row[0]] = min(first.get(row[0], row[3]), row[3])
    kept.sort(key=lambda r: (first[r[0]], r[2], r[3]))
    return [(u, i, t) for u, i, t, _ in kept]


def test_clean_on_codes_matches_a_plain_reference() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    users = rng.integers(0, 60, n).astype(str).astype(object)
    users[rng.random(n) < 0.02] = " "
    items = rng.integers(0, 80, n).astype(str).astype(object)
    times = rng.integers(0, 50, n).astype(str).astype(object)
    times[rng.random(n) < 0.02] = "never"
    raw = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    frame, report = clean(raw)
    got = list(zip(frame["user_id"], frame["item_id"], frame["timestamp"], strict=True))
    assert got == _reference_clean(raw)
    assert report.rows_read == n and report.n_interactions == len(got)
    assert report.missing_ids_dropped + report.bad_timestamps_dropped + report.duplicates_dropped == n - len(
        got
    )


def test_split_groups_rows_of_an_ungrouped_frame() -> None:
    frame, report = clean(pd.DataFrame(ROWS, columns=["user_id", "item_id", "timestamp"]))
    shuffled = frame.iloc[[0, 3, 1, 4, 2, 5]].reset_index(drop=True)  # interleaved users
    split = leave_one_out(Dataset("x", shuffled, ItemCatalog(titles={}), report))
    assert split.users.ids == ("u1", "u2")
    assert [split.items.lookup_ids(s) for s in split.sequences] == [["A", "B", "C"], ["A", "B", "C"]]
