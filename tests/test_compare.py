"""The harness's choice of rows to carry over from an earlier run (bench/compare.py --reuse)."""

from __future__ import annotations

from bench.compare import reused_rows

MODELS = ("reference:sasrec", "recbole:SASRec", "sasrec", "hybrid", "bench:EASE")
ROWS = [{"model": m, "NDCG@10": 0.1} for m in MODELS]


def test_reuse_carries_the_reference_and_recbole_rows_and_the_models_named() -> None:
    kept = reused_rows(ROWS, "old.json", ("hybrid",), fresh_reference=False)
    assert [r["model"] for r in kept] == ["reference:sasrec", "recbole:SASRec", "hybrid"]
    assert all(r["reused_from"] == "old.json" for r in kept)
    assert "reused_from" not in ROWS[0]  # the earlier run's rows are not changed


def test_fresh_reference_leaves_the_reference_row_to_be_run_again() -> None:
    kept = reused_rows(ROWS, "old.json", (), fresh_reference=True)
    assert [r["model"] for r in kept] == ["recbole:SASRec"]
