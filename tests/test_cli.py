"""The command line, end to end: demo, train, evaluate, recommend, explain, and one clear line
with a non-zero exit for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whyrec.cli import build_parser, main
from whyrec.cli.parser import ranking_controls

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
        (["recommend", "--run", "{run}", "--user", "u1", "--diversity", "2"], "--diversity must be at most"),
        (["recommend", "--run", "{run}", "--user", "u1", "--diversity", "lots"], "--diversity must be a"),
        (["serve", "--run", "{run}", "--max-per-attribute", "-1"], "--max-per-attribute must be at least 1"),
        (["serve", "--run", "{run}", "--max-per-attribute", "two"], "--max-per-attribute must be a whole"),
        (["serve", "--run", "{run}", "--block-items", "{tmp}/blocked.txt"], "--block-items: no such file"),
        (
            ["evaluate", "--dataset", "demo", "--models", "pop", "--controls", "none;diversity=2"],
            "diversity must be at most 1",
        ),
        (
            ["evaluate", "--dataset", "demo", "--models", "pop", "--controls", "colour=red"],
            "unknown ranking control 'colour'",
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


def test_control_options_read_files_and_lists(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("# never show these\ni1\n\n i2 \n")
    args = build_parser().parse_args(
        ["serve", "--run", "r", "--block-items", str(blocked), "--block-items", "i3,i1", "--block-attributes",
         "Horror", "--diversity", "0.3", "--calibrate", "--max-per-attribute", "0"]
    )  # fmt: skip
    controls = ranking_controls(args)
    assert controls.block_items == ("i1", "i2", "i3") and controls.block_attributes == ("Horror",)
    assert controls.diversity == 0.3 and controls.calibrate and controls.max_per_attribute is None
    assert ranking_controls(build_parser().parse_args(["serve", "--run", "r"])).plain


def test_recommend_under_controls_says_what_they_did(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["recommend", "--run", str(run_dir), "--user", "u3", "-k", "5", "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "moved_out" not in plain
    catalog = json.loads((run_dir / "catalog.json").read_text())
    genre = {r["item_id"]: r["attributes"][0] for r in catalog}
    top_genre = genre[plain["recommendations"][0]["item_id"]]
    assert main([*base, "--block-attributes", top_genre]) == 0
    blocked = json.loads(capsys.readouterr().out)
    assert blocked["controls"] == f"block_attributes={top_genre}"
    assert all(genre[r["item_id"]] != top_genre for r in blocked["recommendations"])
    assert {m["item_id"] for m in blocked["moved_out"]} == {
        r["item_id"] for r in plain["recommendations"] if genre[r["item_id"]] == top_genre
    }
    assert all(m["note"] == f"Left out: {top_genre} is blocked." for m in blocked["moved_out"])
    assert main([*base[:-1], "--max-per-attribute", "1", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "left out by the ranking controls (max_per_attribute=1)" in text and "already has 1" in text


def test_evaluate_reports_what_each_control_setting_costs(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    log, items = dataset
    out = tmp_path / "metrics.json"
    settings = "none;diversity=0.5;calibrate;max_per_attribute=3"
    args = ["--quiet", "evaluate", "--dataset", f"csv:{log}", "--items", str(items)]
    args += ["--models", "pop,itemknn"]
    args += ["--encoder", "hashing-32", "--json", str(out), "--controls", settings]
    assert main(args) == 0
    rows = json.loads(out.read_text())
    for row in rows:
        for key in ("dataset", "model", "n_users", "n_items", "HR@10", "NDCG@10", "MRR@10", "NDCG@20"):
            assert key in row, key  # the contract's fields are where they were
        measured = row["controls"]
        assert list(measured) == ["none", "diversity=0.5", "calibrate", "max_per_attribute=3"]
        for values in measured.values():
            assert values["NDCG@10_expected"] == pytest.approx(row["NDCG@10"], abs=1e-5)
            assert 0 < values["coverage@10"] <= 1 and values["ARP@10"] > 0 and values["n_users"] == 120
        none = measured["none"]
        assert none["NDCG@10"] == none["NDCG@10_plain"]
        assert measured["diversity=0.5"]["ILD@10"] > none["ILD@10"]
        assert measured["calibrate"]["calibration_KL@10"] < none["calibration_KL@10"]
    # every item has one of four genres; with at most 3 of each, the pop model's one list spreads
    pop = rows[0]["controls"]
    assert pop["max_per_attribute=3"]["calibration_KL@10"] < pop["none"]["calibration_KL@10"]


def test_set_changes_a_model_setting_and_the_run_remembers_it(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    log, items = dataset
    out = tmp_path / "knn5"
    args = ["--quiet", "train", "--dataset", f"csv:{log}", "--items", str(items), "--model", "itemknn"]
    assert main([*args, "--out", str(out), "--encoder", "hashing-16", "--set", "neighbours=5"]) == 0
    assert json.loads((out / "model" / "itemknn_config.json").read_text())["config"]["neighbours"] == 5
    assert json.loads((out / "run.json").read_text())["settings"] == {"neighbours": "5"}
    # a retraining with feedback keeps the run's settings
    assert main(["--quiet", "train", "--run", str(out), "--out", str(tmp_path / "again")]) == 0
    assert (
        json.loads((tmp_path / "again" / "model" / "itemknn_config.json").read_text())["config"]["neighbours"]
        == 5
    )


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
