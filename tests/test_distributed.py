"""Several processes, one model: two processes (torch's elastic launcher, gloo) sharing each
batch train the model that one process trains with the same global batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from whyrec.cli import main
from whyrec.models import FitData, GRU4Rec, GRU4RecConfig, SASRec, SASRecConfig, TrainingConfig
from whyrec.models.parallel import Processes
from whyrec.models.sequence import SequenceModel
from whyrec.training.distributed import launch

from .conftest import markov_sequences, write_csv
from .test_models import fit_data, make_split

# dropout 0: with dropout each process would draw its own masks, and the runs differ by chance
TINY_SASREC = SASRecConfig(dim=16, n_layers=1, n_heads=1, max_len=8, dropout=0.0)
TRAINING = TrainingConfig(max_epochs=3, batch_size=24, lr=5e-3)
# float sums in another order (each process's half, then DDP's all-reduce): agreement to 1e-4
TOLERANCE = 1e-4


def varied_data() -> FitData:
    """Histories of different lengths, so the processes' halves of a batch have different numbers
    of targets (the loss must still be the mean over the whole batch)."""
    rng = np.random.default_rng(3)
    sequences = markov_sequences(n_users=90, n_items=25, length=14)
    return fit_data(make_split([s[: rng.integers(4, 15)] for s in sequences]))


def fit_and_report(models: list[SequenceModel], data: FitData) -> list[dict[str, Any]]:
    """Train each model in every process; what it learned, from each process (their weights must
    agree)."""
    histories, _ = data.split.test()
    processes = Processes()
    reports = []
    for model in models:
        model.fit(data)
        reports.append(
            {
                "world": processes.world,
                "curve": model.fit_info.extra["valid_curve"],
                "scores": model.score(histories[:20]),
                "all_weights_equal": _weights_agree(model, processes),
            }
        )
    return reports


def _weights_agree(model: SequenceModel, processes: Processes) -> bool:
    assert model.net is not None
    flat = torch.cat([p.detach().flatten() for p in model.net.parameters()]).numpy()
    return bool(
        all(np.array_equal(flat, other) for other in np.split(processes.gather(flat), processes.world))
    )


def test_two_processes_train_what_one_process_trains() -> None:
    """SASRec and GRU4Rec (one launch for both: starting processes is the slow part)."""
    data = varied_data()
    models = [SASRec(TINY_SASREC, TRAINING), GRU4Rec(GRU4RecConfig(dim=16, max_len=8, dropout=0.0), TRAINING)]
    alone = fit_and_report(models, data)
    together = launch(2, "cpu", fit_and_report, [m.reseeded(0) for m in models], data)
    for one, two in zip(alone, together, strict=True):
        assert one["world"] == 1 and two["world"] == 2
        assert two["all_weights_equal"]  # every process holds the same model
        assert np.allclose(two["curve"], one["curve"], atol=TOLERANCE)
        assert np.allclose(two["scores"], one["scores"], atol=TOLERANCE, rtol=TOLERANCE)
        assert one["curve"][-1] > one["curve"][0]  # it learned something worth comparing


def test_train_with_nproc_writes_one_run_from_rank_0(tmp_path: Path) -> None:
    log, items = write_csv(tmp_path / "log.csv", markov_sequences(n_users=60, n_items=20, length=8))
    out = tmp_path / "run"
    args = ["--quiet", "train", "--dataset", f"csv:{log}", "--items", str(items), "--encoder", "hashing-16"]
    settings = ["--set", "max_epochs=1", "--set", "dim=16", "--set", "max_len=8"]
    assert main([*args, "--out", str(out), "--nproc", "2", *settings]) == 0
    assert (out / "run.json").exists() and (out / "metrics.json").exists()
    assert len(list(out.rglob("*_weights.pt"))) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "itemknn", "--nproc", "2"], "itemknn is not one"),
        (["--nproc", "0"], "--nproc must be at least 1"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--nproc", "2", "--models", "pop,itemknn"], "none of pop, itemknn is one"),
    ],
)
def test_process_options_mistakes_get_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("a GPU is here")
    log, items = write_csv(tmp_path / "log.csv", markov_sequences(n_users=10, n_items=10, length=5))
    data = ["--dataset", f"csv:{log}", "--items", str(items)]
    command = ["evaluate", *data] if "--models" in extra else ["train", *data, "--out", str(tmp_path / "r")]
    assert main([*command, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
