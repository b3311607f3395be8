"""The command line, end to end: demo, train, evaluate, recommend, explain, and one clear line
with a non-zero exit for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whyrec.cli import main

from .conftest import markov_sequences, write_csv


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whyrec.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    log, items = write_csv(folder / "log.csv", markov_sequences(n_users=120, n_items=30, length=12))
    assert items is not None
    return log, items


@pytest.fixture(scope="module")
def run_dir(dataset: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    log, items = dataset
    out = tmp_path_factory.mktemp("runs") / "knn"
    code = main(
        [
            "--quiet",
            "train",
            "--dataset",
            f"csv:{log}",
            "--items",
            str(items),
            "--model",
            "itemknn",
            "--out",
            str(out),
            "--encoder",
            "hashing-32",
        ]
    )
    assert code == 0
    return out


def test_train_saves_a_complete_run(run_dir: Path) -> None:
    for name in (
        "run.json",
        "metrics.json",
        "items.json",
        "catalog.json",
        "item_vectors.npy",
        "histories.json",
    ):
        assert (run_dir / name).exists(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())[0]
    assert metrics["model"] == "itemknn" and metrics["NDCG@10"] > 0.5  # the chain is learnable


def test_recommend_prints_titles_and_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--run", str(run_dir), "--user", "u3", "-k", "3", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "Item number" in out and "because of" in out
    assert main(["recommend", "--run", str(run_dir), "--user", "u3", "-k", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in data["recommendations"]] == [1, 2, 3]


def test_explain_json_and_chinese(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--run", str(run_dir), "--user", "u5", "-k", "1", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["recommendations"][0]["item_id"]
    assert main(["explain", "--run", str(run_dir), "--user", "u5", "--item", top, "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["rank"] == 1 and e["evidence"] and e["counterfactual"] is not None
    assert main(["explain", "--run", str(run_dir), "--user", "u5", "--item", top, "--lang", "zh"]) == 0
    assert "推荐" in capsys.readouterr().out


def test_evaluate_writes_the_metrics_contract(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    log, items = dataset
    out = tmp_path / "metrics.json"
    code = main(
        [
            "--quiet",
            "evaluate",
            "--dataset",
            f"csv:{log}",
            "--items",
            str(items),
            "--models",
            "pop,itemknn,content",
            "--encoder",
            "hashing-32",
            "--json",
            str(out),
            "--explanations",
            "--explain-users",
            "20",
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["pop", "itemknn", "content"]
    for row in rows:
        for key in (
            "dataset",
            "model",
            "n_users",
            "n_items",
            "HR@10",
            "NDCG@10",
            "MRR@10",
            "NDCG@20",
            "train_seconds",
            "grounding_rate",
            "explanation_coverage",
        ):
            assert key in row, key
    assert rows[1]["NDCG@10"] > rows[0]["NDCG@10"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "csv:/nope.csv", "--out", "{tmp}/r"], "dataset path not found: /nope.csv"),
        (["train", "--dataset", "hdf5:x", "--out", "{tmp}/r"], "unknown dataset kind"),
        (["train", "--dataset", "demo", "--model", "nope", "--out", "{tmp}/r"], "unknown model 'nope'"),
        (["recommend", "--run", "{tmp}", "--user", "1"], "not a whyrec run directory"),
        (["recommend", "--run", "{run}", "--user", "nobody"], "unknown user id 'nobody'"),
        (["explain", "--run", "{run}", "--user", "u1", "--item", "zzz"], "unknown item id 'zzz'"),
        (
            ["train", "--dataset", "csv:{log}", "--user-col", "who", "--out", "{tmp}/r"],
            "no 'who' (user): pass",
        ),
        (["train", "--dataset", "csv:{log}", "--out", "{run}", "--encoder", "hashing-8"], "already exists"),
        (
            ["evaluate", "--dataset", "demo", "--models", "pop", "--json", "/no/such/dir/m.json"],
            "does not exist",
        ),
        (["train", "--dataset", "demo", "--set", "nope=1", "--out", "{tmp}/r"], "no chosen model (sasrec)"),
        (
            ["train", "--dataset", "demo", "--set", "max_epochs=abc", "--out", "{tmp}/r"],
            "is not a whole number",
        ),
        (
            [
                "train",
                "--dataset",
                "demo",
                "--model",
                "gru4rec",
                "--set",
                "objective=masked",
                "--out",
                "{tmp}/r",
            ],
            "no chosen model (gru4rec) has this setting",
        ),
        (
            ["train", "--dataset", "demo", "--set", "schedule=linear", "--out", "{tmp}/r"],
            "schedule must be one of",
        ),
        (["evaluate", "--dataset", "demo", "--models", "pop,sasrec", "--set", "lr"], "takes KEY=VALUE"),
        (
            ["train", "--dataset", "demo", "--set", "dim=30", "--set", "n_heads=4", "--out", "{tmp}/r"],
            "divisible",
        ),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(
    args: list[str], message: str, run_dir: Path, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    filled = [a.format(tmp=tmp_path, run=run_dir, log=dataset[0]) for a in args]
    before = sorted(p.name for p in run_dir.iterdir())
    result = run_cli(*filled)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("whyrec: error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing stored was touched


def test_set_changes_a_model_setting_and_the_run_remembers_it(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    log, items = dataset
    out = tmp_path / "knn5"
    args = ["--quiet", "train", "--dataset", f"csv:{log}", "--items", str(items), "--model", "itemknn"]
    assert main([*args, "--out", str(out), "--encoder", "hashing-16", "--set", "neighbours=5"]) == 0
    assert json.loads((out / "model" / "itemknn_config.json").read_text())["neighbours"] == 5
    assert json.loads((out / "run.json").read_text())["settings"] == {"neighbours": "5"}
    # a retraining with feedback keeps the run's settings
    assert main(["--quiet", "train", "--run", str(out), "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "model" / "itemknn_config.json").read_text())["neighbours"] == 5


def test_demo_no_serve_prints_explained_recommendations(tmp_path: Path) -> None:
    """The README's demo on the bundled data, with the real MiniLM encoder, offline."""
    result = run_cli(
        "demo", "--no-serve", "--users", "2", "-k", "3", "--out", str(tmp_path / "demo"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "users / items / rows" in result.stderr  # the cleaning report
    assert result.stdout.count("because of") >= 4, result.stdout
    assert (tmp_path / "demo" / "run.json").exists()
    again = run_cli(
        "demo", "--no-serve", "--users", "1", "-k", "2", "--out", str(tmp_path / "demo"), cwd=tmp_path
    )
    assert again.returncode == 0 and "using the demo run" in again.stderr


def test_train_logs_training_curves_to_tensorboard(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log, items = dataset
    args = ["--quiet", "train", "--dataset", f"csv:{log}", "--items", str(items), "--model", "sasrec"]
    args += ["--out", str(tmp_path / "run"), "--encoder", "hashing-16", "--tensorboard", str(tmp_path / "tb")]
    assert main(args) == 0
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {"sasrec/train_loss", "sasrec/valid_NDCG@10"} <= set(events.Tags()["scalars"])
    curve = [e.value for e in events.Scalars("sasrec/valid_NDCG@10")]
    assert len(curve) >= 2 and max(curve) > curve[0]  # it learned while it logged
