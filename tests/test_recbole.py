"""The RecBole side of the benchmark without RecBole where possible: whyrec's tie rule in
``bench/recbole_run.py``, and the user-item files its general models read hold whyrec's split.
The runs themselves need the RecBole venv (``bash bench/setup_recbole.sh``) and skip without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench import recbole_run
from bench.recbole_side import RECBOLE_PYTHON, whyrec_held_out

from whyrec.data import leave_one_out, load_dataset
from whyrec.metrics.ranking import Ranks, metrics_from_ranks, target_ranks

from .conftest import markov_sequences, shared

ROOT = Path(__file__).resolve().parents[1]


def test_metrics_count_ties_as_whyrec_does() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(300, 40)).astype(np.float64)  # many ties
    scores[rng.random(scores.shape) < 0.1] = -np.inf  # masked items, some targets among them
    targets = rng.integers(0, 40, size=300)
    higher, tied = recbole_run.target_ranks(scores, targets)
    ours = target_ranks(scores, targets)
    assert np.array_equal(higher, ours.higher) and np.array_equal(tied, ours.tied)
    got = recbole_run.metrics_from_ranks(higher, tied)
    for key, value in metrics_from_ranks(Ranks(higher, tied)).items():
        assert got[key] == pytest.approx(value, abs=1e-5), key
    assert "NDCG@10_se" in got
    # every item level: HR@10 is 10 / candidates, not 1
    flat = recbole_run.metrics_from_ranks(np.zeros(5), np.full(5, 39))
    assert flat["HR@10"] == pytest.approx(10 / 40)


@pytest.mark.parametrize("spec", ["movielens:ml-100k", "amazon:amazon-scientific-unisrec"])
def test_general_files_hold_whyrecs_split(spec: str, tmp_path: Path) -> None:
    kind, _, name = spec.partition(":")
    full_spec = f"{kind}:{shared(name)}"
    split = leave_one_out(load_dataset(full_spec))
    stem, _ = recbole_run.write_general_atomic(full_spec, tmp_path)

    def read(part: str) -> list[list[str]]:
        lines = (tmp_path / stem / f"{stem}.{part}.inter").read_text().splitlines()
        return [line.split("\t") for line in lines[1:]]

    held_out = {
        user: (test, valid) for (user, test), (_, valid) in zip(read("test"), read("valid"), strict=True)
    }
    assert held_out == whyrec_held_out(split)
    train: dict[str, set[str]] = {}
    for user, item in read("train"):
        train.setdefault(user, set()).add(item)
    for user, sequence in zip(split.users.ids, split.sequences, strict=True):
        assert train[user] == set(split.items.lookup_ids(sequence[:-2]))


@pytest.mark.skipif(not RECBOLE_PYTHON.exists(), reason="no RecBole venv (bash bench/setup_recbole.sh)")
def test_classic_models_run_on_a_tiny_dataset(tmp_path: Path) -> None:
    data = tmp_path / "tiny"
    data.mkdir()
    rows = [
        f"{user + 1}\t{item + 1}\t4\t{1000 + t}"
        for user, sequence in enumerate(markov_sequences(n_users=60, n_items=25, length=8))
        for t, item in enumerate(sequence)
    ]
    (data / "u.data").write_text("\n".join(rows) + "\n")
    items = ["|".join([str(i), f"Item {i}", "", "", "", *["0"] * 19]) for i in range(1, 26)]
    (data / "u.item").write_text("\n".join(items) + "\n")
    out = tmp_path / "classic.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    done = subprocess.run(
        [sys.executable, "-m", "bench.recbole_classic", f"movielens:{data}", "--out", str(out),
         "--work", str(tmp_path / "runs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [m["model"] for m in result["models"]] == ["recbole:EASE", "recbole:ItemKNN"]
    for model in result["models"]:
        assert model["split_matches_whyrec"] and model["split_checked_users"] == 60
        best = max(model["grid"], key=lambda g: g["valid_NDCG@10"])
        assert model["valid_NDCG@10"] == best["valid_NDCG@10"]
        assert all(best[key] == value for key, value in model["settings"].items())
        assert 0 <= model["test_NDCG@10"] <= 1
    assert len(result["models"][1]["grid"]) == 15  # k x shrink
