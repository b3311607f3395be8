"""Loaders on small fixtures written by the tests, cleaning, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from whyrec.data import LoadOptions, leave_one_out, load_dataset
from whyrec.errors import DataError

from .conftest import shared, write_csv


def test_csv_cleaning_report_counts_every_drop(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text(
        "user_id,item_id,timestamp,rating\n"
        "a,x,100,5\n"
        "a,y,2021-01-01T00:00:00Z,4\n"  # ISO 8601 parses
        "a,x,300,3\n"  # repeat of (a, x): dropped
        ",z,400,1\n"  # missing user id
        "b,z,not-a-time,2\n"  # bad timestamp
        "b,x,50,1\n"
        "b,y,60,1\n"
        "b,z,70,1\n"
    )
    dataset = load_dataset(f"csv:{log}")
    r = dataset.report
    assert (r.rows_read, r.duplicates_dropped, r.missing_ids_dropped, r.bad_timestamps_dropped) == (
        8,
        1,
        1,
        1,
    )
    assert (r.n_users, r.n_items, r.n_interactions) == (2, 3, 5)
    assert dataset.sequences() == {"a": ["x", "y"], "b": ["x", "y", "z"]}
    assert "rating" in dataset.interactions.columns
    assert any("duplicates dropped" in line for line in r.lines())


def test_time_ties_keep_file_order(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,c,10\nu,a,10\nu,b,5\nu,d,10\n")
    assert load_dataset(f"csv:{log}").sequences()["u"] == ["b", "c", "a", "d"]


def test_csv_custom_columns_separator_and_catalogue(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    log.write_text("who\twhat\twhen\nu1\tA\t1\nu1\tB\t2\nu1\tC\t3\n")
    items = tmp_path / "items.tsv"
    items.write_text("what\ttitle\tgenres\tdescription\nA\tAlpha\tSci-Fi|Drama\tA ship\nB\tBeta\tComedy\t\n")
    options = LoadOptions(items=str(items), user_col="who", item_col="what", time_col="when", sep="\t")
    dataset = load_dataset(f"csv:{log}", options)
    assert dataset.sequences() == {"u1": ["A", "B", "C"]}
    assert dataset.catalog.attrs("A") == ("Sci-Fi", "Drama")
    assert dataset.catalog.text("A") == "Alpha. Sci-Fi, Drama. A ship"
    assert dataset.catalog.title("C") == "C"  # not in the catalogue: its id stands in


def test_k_core_is_applied_until_stable(tmp_path: Path) -> None:
    # dropping i3 (1 row) leaves user u2 with 2 rows, so u2 goes too: 3 rows in all
    log, _ = write_csv(tmp_path / "log.csv", [[0, 1, 2], [0, 1, 2], [0, 1, 3], [0, 1, 2]], items=False)
    dataset = load_dataset(f"csv:{log}", LoadOptions(k_core=3))
    assert set(dataset.interactions["item_id"]) == {"i0", "i1", "i2"}
    assert set(dataset.interactions["user_id"]) == {"u0", "u1", "u3"}
    assert dataset.report.kcore_dropped == 3
    with pytest.raises(DataError, match="no interactions left after cleaning"):
        load_dataset(f"csv:{log}", LoadOptions(k_core=4))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("csv:/no/such/file.csv", "not found"),
        ("hdf5:/tmp/x", "unknown dataset kind"),
        ("csv", "has no path"),
    ],
)
def test_bad_specs_raise_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(spec)


def test_wrong_column_is_named(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user,item_id,timestamp\na,x,1\n")
    with pytest.raises(
        DataError,
        match=r"3 column\(s\) split by ',': 'user', 'item_id', 'timestamp'.*"
        r"no 'user_id' \(user\): pass --user-col COLUMN",
    ):
        load_dataset(f"csv:{log}")


def test_empty_and_all_malformed_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"cannot read|no rows"):
        load_dataset(f"csv:{empty}")
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\na,x,yesterday\n,,\n")
    with pytest.raises(DataError, match="no interactions left after cleaning"):
        load_dataset(f"csv:{bad}")


def test_movielens_100k_layout_from_fixture(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t5\t300\n1\t20\t3\t100\n2\t10\t4\t50\n1\t30\t4\t200\n")
    flags = "|".join(["0"] * 19)
    action = "|".join(["0", "1"] + ["0"] * 17)
    rows = f"10|Caf\xe9 (1995)|01-Jan-1995||http://x|{action}\n20|B (1996)|||x|{flags}\n30|C|||x|{flags}\n"
    (tmp_path / "u.item").write_bytes(rows.encode("latin-1"))
    dataset = load_dataset(f"movielens:{tmp_path}")
    assert dataset.sequences()["1"] == ["20", "30", "10"]
    assert dataset.catalog.title("10") == "Café (1995)"
    assert dataset.catalog.attrs("10") == ("Action",)


def test_movielens_1m_and_movietweetings_layouts(tmp_path: Path) -> None:
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "ratings.dat").write_text("1::5::3::20\n1::6::4::10\n")
    (ml / "movies.dat").write_bytes(
        "5::Am\xe9lie (2001)::Comedy|Romance\n6::X (1999)::Drama\n".encode("latin-1")
    )
    dataset = load_dataset(f"movielens:{ml}")
    assert dataset.sequences() == {"1": ["6", "5"]}
    assert dataset.catalog.attrs("5") == ("Comedy", "Romance")
    mt = tmp_path / "mt"
    mt.mkdir()
    (mt / "ratings.dat").write_text("7::0012345::8::20\n7::0099999::6::10\n7::0012345::9::30\n")
    (mt / "movies.dat").write_text("0012345::Leading Zeros (1920)::Drama\n0099999::Other (1930)::\n")
    dataset = load_dataset(f"movietweetings:{mt}", LoadOptions(k_core=0))
    assert dataset.sequences() == {"7": ["0099999", "0012345"]}  # ids keep their zeros; repeat dropped
    assert dataset.catalog.attrs("0099999") == ()


def test_bundled_demo_loads_with_license() -> None:
    from whyrec.data.loaders import demo_data_dir

    dataset = load_dataset("demo")
    assert dataset.report.n_users > 1000 and dataset.report.n_items > 500
    assert "MIT License" in (demo_data_dir() / "LICENSE").read_text()
    assert "Dooms" in (demo_data_dir() / "README.md").read_text()
    split = leave_one_out(dataset)
    assert all(len(s) >= 3 for s in split.sequences)


@pytest.mark.realdata
def test_real_movielens_100k_counts() -> None:
    dataset = load_dataset(f"movielens:{shared('ml-100k')}")
    assert (dataset.report.n_users, dataset.report.n_items, dataset.report.n_interactions) == (
        943,
        1682,
        100_000,
    )
    assert "Comedy" in dataset.catalog.attrs("1")  # Toy Story
