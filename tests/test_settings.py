"""``--set`` settings are typed by the config fields they name and checked before any work; models
are built by name, each its own instance; runs of another format are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whyrec.errors import RunError, WhyrecError
from whyrec.models import GRU4Rec, Hybrid, SASRec
from whyrec.service.testing import build_tiny_run
from whyrec.training import Recommender, build_models, parse_settings


def test_settings_are_typed_by_the_field_they_name() -> None:
    model = build_models(
        ["sasrec"], parse_settings(["dim=32", "lr=0.01", "use_text=false", "window_stride=none"])
    )
    sasrec = model["sasrec"]
    assert isinstance(sasrec, SASRec)
    assert sasrec.config.dim == 32 and sasrec.training.lr == 0.01
    assert sasrec.items.use_text is False and sasrec.training.window_stride is None


@pytest.mark.parametrize(
    ("names", "pairs", "message"),
    [
        (["gru4rec"], ["objective=masked"], "no chosen model (gru4rec) has this setting"),
        (["gru4rec"], ["mask_prob=0.3"], "no chosen model (gru4rec) has this setting"),
        (["sasrec"], ["objective=bidirectional"], "objective must be one of 'causal', 'masked'"),
        (["sasrec"], ["dim=big"], "--set dim: 'big' is not a whole number"),
        (["sasrec"], ["use_text=maybe"], "is not a true or false"),
        (["sasrec"], ["lr=-1"], "lr must be more than 0"),
        (["bert4rec"], ["objective=causal"], "objective='masked'"),
        (["hybrid"], ["normalise=mean"], "normalise must be one of"),
        (["hybrid"], ["sequence_models=sasrec,lstm"], "sequence_models must be some of"),
    ],
)
def test_bad_settings_fail_before_any_work(names: list[str], pairs: list[str], message: str) -> None:
    with pytest.raises(WhyrecError) as error:
        build_models(names, parse_settings(pairs))
    assert message in str(error.value)


def test_a_seed_on_a_hybrid_gives_distinct_member_seeds() -> None:
    hybrid = build_models(["hybrid"], {"seed": "1"})["hybrid"]
    assert isinstance(hybrid, Hybrid)
    seeds = [(m.name, m.training.seed) for m in hybrid.members]
    assert seeds == [
        ("sasrec", 1),
        ("sasrec", 2),
        ("sasrec", 3),
        ("gru4rec", 1),
        ("gru4rec", 2),
        ("gru4rec", 3),
    ]


def test_settings_reach_a_hybrids_members_and_parts() -> None:
    hybrid = build_models(["hybrid"], parse_settings(["dim=16", "neighbours=20", "seeds=1"]))["hybrid"]
    assert isinstance(hybrid, Hybrid)
    assert [m.config.dim for m in hybrid.members] == [16, 16]
    assert hybrid.cf.config.neighbours == 20


def test_models_built_together_are_separate_instances() -> None:
    built = build_models(["sasrec", "gru4rec", "hybrid"])
    hybrid = built["hybrid"]
    assert isinstance(hybrid, Hybrid) and isinstance(built["gru4rec"], GRU4Rec)
    assert all(member is not built["sasrec"] and member is not built["gru4rec"] for member in hybrid.members)
    assert not any(model.fitted for model in built.values())


def test_a_run_of_another_format_is_refused(tmp_path: Path) -> None:
    run = build_tiny_run(tmp_path / "run")
    assert Recommender.saved_model(run) == "itemknn"
    info = json.loads((run / "run.json").read_text())
    info["format"] = 1
    (run / "run.json").write_text(json.dumps(info))
    assert Recommender.saved_model(run) is None
    with pytest.raises(RunError, match="another version of whyrec"):
        Recommender.load(run)
