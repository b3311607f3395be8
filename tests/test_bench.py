"""Each benchmark script runs end to end on a tiny dataset and writes stamped JSON. These are smoke
tests: they prove the scripts work with today's API, not what they measure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whyrec.service.testing import build_tiny_run

from .conftest import markov_sequences

ROOT = Path(__file__).resolve().parents[1]
FAST = '{"max_epochs": 1, "dim": 16, "max_len": 10}'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A csv dataset of 80 users over 30 items with a small catalogue."""
    folder = tmp_path_factory.mktemp("bench-data")
    rows = ["user_id,item_id,timestamp"]
    for user, sequence in enumerate(markov_sequences(n_users=80, n_items=30, length=8)):
        rows += [f"u{user},i{item},{1000 + t}" for t, item in enumerate(sequence)]
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    items = ["item_id,title,genres"] + [f"i{i},Item {i},group{i % 4}" for i in range(30)]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    return f"csv:{folder / 'log.csv'}"


def run_bench(name: str, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def stamped(path: Path) -> dict:
    result = json.loads(path.read_text())
    assert len(result["stamp"]["commit"]) >= 7 and "config" in result["stamp"]
    return result


def test_sweep(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    run_bench("sweep", tiny, "--config", FAST, "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1 and 0 <= rows[0]["valid_NDCG@10"] <= 1


def test_ablation_and_its_table(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "ablation.json"
    run_bench("ablation", tiny, "--variant", f"fast={FAST}", "--peers", "itemknn", "--out", str(out))
    result = stamped(out)
    assert {row["variant"] for row in result["rows"]} >= {"fast"}
    assert "fast" in run_bench("ablation_table", str(out))


def test_cold_start(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "cold.json"
    run_bench(
        "cold_start", tiny, "--variants", "max_epochs=1,dim=16", "--cold-neighbours", "0", "--out", str(out)
    )
    assert json.loads(out.read_text())["rows"]


def test_sampled_softmax(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "sampled.json"
    variants = ["max_epochs=1,dim=16", "max_epochs=1,dim=16,sampled_softmax_above=0"]
    run_bench("sampled_softmax", tiny, "--variants", *variants, "--out", str(out))
    assert len(stamped(out)["rows"]) == 2


def test_occlusion(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "occlusion.json"
    fast = ["--set", "max_epochs=1", "--set", "dim=16"]
    run_bench("occlusion", tiny, "--models", "sasrec", "--users", "4", "--runs", str(tmp_path / "runs"),
              *fast, "--out", str(out))  # fmt: skip
    rows = stamped(out)["rows"]
    assert [row["occlusion"] for row in rows] == ["remove", "mask"]
    assert all(row["fidelity_ratio_in_place"] is not None or row["fidelity_random3_rank_drop_in_place"] == 0
               for row in rows)  # fmt: skip


def test_blend_reproduces_the_runs_choice_and_searches_a_wider_grid(tiny: str, tmp_path: Path) -> None:
    run = tmp_path / "hybrid"
    fast = ["--set", "max_epochs=1", "--set", "dim=16", "--set", "seeds=1", "--set", "ease_weights=0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "whyrec.cli", "train", "--dataset", tiny, "--model", "hybrid",
                    "--encoder", "hashing", "--out", str(run), *fast],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
    out = tmp_path / "blend.json"
    run_bench("blend", str(run), "--content-weights", "0,0.5,1,2,4", "--test-ceiling", "--out", str(out))
    result = stamped(out)
    own, wider = result["rows"]
    trained = json.loads((run / "metrics.json").read_text())
    trained = trained[0] if isinstance(trained, list) else trained
    assert own["valid_NDCG@10"] == pytest.approx(trained["valid_NDCG@10"], abs=1e-5)
    assert own["test_NDCG@10"] == pytest.approx(trained["NDCG@10"], abs=1e-5)
    assert wider["valid_NDCG@10"] >= own["valid_NDCG@10"]  # its candidates hold the run's
    assert wider["candidates"]["content"] == [0, 0.5, 1, 2, 4]
    # weights chosen on test: no candidate of the grid, the ones chosen on validation among them,
    # does better on test
    ceiling = result["test_ceiling"]
    assert ceiling["chosen_on"] == "test" and ceiling["chosen"]["content"] in wider["candidates"]["content"]
    assert ceiling["test_NDCG@10"] >= max(own["test_NDCG@10"], wider["test_NDCG@10"]) - 1e-5


def test_nproc(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "nproc.json"
    run_bench("nproc", tiny, "--nprocs", "1,2", "--set", "max_epochs=1", "--set", "dim=16",
              "--runs", str(tmp_path / "runs"), "--out", str(out))  # fmt: skip
    rows = stamped(out)["rows"]
    assert [row["nproc"] for row in rows] == [1, 2] and "within_one_se" in rows[1]


def test_controls_on_trained_runs(tmp_path: Path) -> None:
    build_tiny_run(tmp_path / "runs" / "itemknn")
    out = tmp_path / "controls.json"
    run_bench("controls", "demo", "--encoder", "hashing-64", "--runs", str(tmp_path / "runs"),
              "--models", "itemknn", "--controls", "none;diversity=0.5", "--out", str(out))  # fmt: skip
    rows = stamped(out)["rows"]
    assert [row["controls"] for row in rows] == ["none", "diversity=0.5"]
    assert rows[1]["ILD@10"] >= rows[0]["ILD@10"]


def test_latency(tmp_path: Path) -> None:
    run = build_tiny_run(tmp_path / "run")
    out = tmp_path / "latency.json"
    run_bench("latency", "--run", str(run), "--users", "5", "--repeats", "1", "--no-http", "--json", str(out))
    assert json.loads(out.read_text())["in_process"]


def test_scale(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    run_bench("scale", "--users", "50", "--items", "300", "--events", "3000", "--knn-events", "3000",
              "--queries", "5", "--stages", "ingest,knn,train,retrieval", "--valid-users", "10",
              "--knn-search", "--workdir", str(tmp_path / "w"), "--json", str(out))  # fmt: skip
    train = stamped(out)["train"]
    assert train["valid_users"] == 10 and train["steps_per_epoch"] >= 1 and train["epoch_train_s"] > 0
    assert [g["decay"] for g in stamped(out)["knn"]["search"]] == [1.0, 0.9, 0.8, 0.7, 0.5]


def test_results_table_reads_harness_json() -> None:
    harness = sorted((ROOT / "bench" / "results" / "harness").glob("*.json"))
    if not harness:
        pytest.skip("no harness results in the checkout")
    assert "|" in run_bench("results_table", "--readme")


def test_results_table_refuses_a_missing_file_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    for args in ([str(tmp_path / "none.json")], ["--harness", str(tmp_path / "none.json")], ["--bogus"]):
        done = subprocess.run([sys.executable, "-m", "bench.results_table", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert "--readme" in run_bench("results_table", "--help")


def test_compare_with_peers(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "compare"
    run_bench("compare", tiny, "--models", "pop,itemknn,ease", "--peers", "ease", "--no-cold-start",
              "--no-reference", "--set", "ease:lambdas=5,50", "--out", str(out))  # fmt: skip
    result = stamped(out.with_suffix(".json"))
    assert {"pop", "itemknn", "ease"} <= {row["model"] for row in result["rows"]}
    assert result["stamp"]["config"]["model_settings"]["ease"]["config"]["lambdas"] == [5.0, 50.0]
    # not measured, so no cold-start figures: neither in the payload nor in a file beside it
    assert "cold_start" not in result and not list(tmp_path.glob("*cold_start*"))


def test_lm_frozen_variants_and_table(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "lm.json"
    run_bench("lm", tiny, "--variants", "", "use_ids=false", "--max-epochs", "1", "--out", str(out))
    assert stamped(out)
    assert "|" in run_bench("lm", "--table", str(out))


def test_load_against_a_tiny_run(tmp_path: Path) -> None:
    run = build_tiny_run(tmp_path / "run")
    out = tmp_path / "load.json"
    run_bench("load", "--run", str(run), "--workers", "1", "--seconds", "2", "--clients", "2", "--users", "3",
              "--json", str(out))  # fmt: skip
    assert stamped(out)
