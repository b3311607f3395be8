"""EASE: the closed form solves its regression, λ and the decay are chosen on validation, big
catalogues are refused, and the hybrid can blend it in (exact explanations: test_itemitem.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from whyrec.cli import main
from whyrec.data import leave_one_out, load_dataset
from whyrec.errors import WhyrecError
from whyrec.metrics import evaluate
from whyrec.models import FitData, Hybrid, HybridConfig, Popularity, SASRec, Scorer
from whyrec.models.ease import EASE, EASEConfig, ease_weights
from whyrec.models.itemitem import binary_matrix
from whyrec.training import build_models

from .conftest import markov_sequences, shared, write_csv
from .test_models import SHORT, SMALL_SASREC, fit_data, make_split


@pytest.fixture(scope="module")
def noisy() -> FitData:
    return fit_data(make_split(markov_sequences(n_users=200, n_items=30, length=12, noise=0.3)))


@pytest.fixture(scope="module")
def sasrec(noisy: FitData) -> SASRec:
    """A network fitted once, adopted by the hybrids below (one epoch: only the blend is tested)."""
    return SASRec(SMALL_SASREC, replace(SHORT, max_epochs=1)).fit(noisy)


def test_closed_form_solves_each_items_ridge_regression_without_itself() -> None:
    """Column i of B is the ridge regression of item i's column of X on the other items' columns."""
    rng = np.random.default_rng(0)
    histories = [rng.choice(12, size=rng.integers(1, 6), replace=False) for _ in range(60)]
    x = binary_matrix(histories, 12).toarray()
    l2 = 3.0
    weights = ease_weights(x.T @ x, l2)
    assert np.all(np.diag(weights) == 0)
    for i in range(12):
        others = [j for j in range(12) if j != i]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + l2 * np.eye(11), a.T @ x[:, i])
        np.testing.assert_allclose(weights[others, i], expected, rtol=1e-4, atol=1e-5)


def test_a_matrix_that_is_not_positive_definite_is_one_clear_error() -> None:
    with pytest.raises(WhyrecError, match="not positive definite"):
        ease_weights(-np.eye(3), 0.5)


def test_ease_recovers_cooccurrence_blocks() -> None:
    rng = np.random.default_rng(1)
    sequences = [list(rng.permutation(5) + (user % 6) * 5) for user in range(240)]
    split = make_split(sequences)  # whole blocks: train() would keep 3 of the 5, anti-correlated
    model = EASE(EASEConfig(l2=1.0, decay=1.0)).fit_histories(split.full(), split.n_items)
    for b in range(6):
        history = np.array([b * 5, b * 5 + 1])
        scores = model.score([history])[0]
        scores[history] = -np.inf
        assert set(np.argsort(-scores)[:3].tolist()) == {b * 5 + 2, b * 5 + 3, b * 5 + 4}


def test_lambda_and_decay_are_the_validation_best_of_the_grid(noisy: FitData) -> None:
    model = EASE(EASEConfig(lambdas=(0.1, 10.0, 1000.0), decays=(1.0, 0.5))).fit(noisy)
    grid = model.fit_info.extra["grid"]
    assert [(g["l2"], g["decay"]) for g in grid] == [(a, d) for a in (0.1, 10.0, 1000.0) for d in (1.0, 0.5)]
    best = max(grid, key=lambda g: g["valid_NDCG@10"])
    assert (model.l2, model.decay) == (best["l2"], best["decay"])
    assert model.fit_info.best_valid_ndcg10 == pytest.approx(best["valid_NDCG@10"], abs=1e-5)
    # the kept weights are those of the chosen λ, and with that decay they score validation as recorded
    fixed = EASE(EASEConfig(l2=model.l2, decay=model.decay)).fit(noisy)
    np.testing.assert_allclose(fixed.weights, model.weights)
    assert fixed.fit_info.extra["grid"] == []
    histories, targets = noisy.split.valid()
    valid = evaluate(model, histories, targets, noisy.split.n_items)["NDCG@10"]
    assert valid == pytest.approx(best["valid_NDCG@10"], abs=1e-5)
    # co-occurrence along a noisy chain: EASE is well above popularity
    plain = max(g["valid_NDCG@10"] for g in grid if g["decay"] == 1.0)
    assert plain > 1.5 * evaluate(Popularity().fit(noisy), histories, targets, noisy.split.n_items)["NDCG@10"]
    # and on a Markov chain the newest item says most about the next one: the decay wins
    assert model.decay == 0.5 and valid > plain + 0.01


def test_scorer_contract_and_save_load(noisy: FitData, tmp_path: Path) -> None:
    model = EASE(EASEConfig(lambdas=(1.0, 50.0))).fit(noisy)
    assert isinstance(model, Scorer) and model.fitted
    batch = [*noisy.split.test()[0][:5], np.array([2]), np.array([], dtype=np.int64)]
    scores = model.score(batch)
    assert scores.shape == (7, noisy.split.n_items) and np.isfinite(scores).all()
    assert not scores[-1].any()  # an empty history scores nothing
    np.testing.assert_allclose(np.concatenate([model.score([h]) for h in batch]), scores, atol=1e-6)
    model.save(tmp_path)
    loaded = EASE.load(tmp_path, noisy.item_vectors)
    assert loaded.configs() == model.configs() and loaded.l2 == model.l2
    np.testing.assert_allclose(loaded.score(batch), scores)


def test_large_catalogues_and_bad_settings_are_refused(noisy: FitData) -> None:
    with pytest.raises(WhyrecError, match=r"30 items is above max_items=10 .*--set max_items"):
        EASE(EASEConfig(max_items=10)).fit(noisy)
    with pytest.raises(ValueError, match="lambdas must be more than 0"):
        EASEConfig(lambdas=(10.0, 0.0))
    with pytest.raises(ValueError, match="at least one candidate"):
        EASEConfig(lambdas=())
    with pytest.raises(ValueError, match="needs validation"):
        EASE().fit_histories(noisy.split.train(), noisy.split.n_items)
    model = build_models(["ease"], {"l2": "7", "max_items": "100"})["ease"]
    assert isinstance(model, EASE) and model.config == EASEConfig(l2=7.0, max_items=100)
    with pytest.raises(WhyrecError, match="--set: l2 must be more than 0"):
        build_models(["ease"], {"l2": "-1"})


def test_hybrid_chooses_the_ease_weight_on_validation(noisy: FitData, sasrec: SASRec, tmp_path: Path) -> None:
    config = HybridConfig(
        sequence_models=("sasrec",),
        seeds=1,
        cf_weights=(0.0, 0.5),
        content_weights=(0.0,),
        ease_weights=(0.0, 1.0, 4.0),
    )
    model = Hybrid(config, prototypes=[SASRec(SMALL_SASREC, sasrec.training)])
    ease = EASE().fit(noisy)
    assert model.adopt([sasrec, ease]) == ["sequence_0", "ease"] and model.ease is ease
    model.fit(noisy)
    grid = model.weights.grid
    assert sorted({g["ease"] for g in grid}) == [0.0, 1.0, 4.0] and len(grid) == 6
    best = max(g["valid_NDCG@10"] for g in grid)
    chosen = next(g for g in grid if (g["cf"], g["ease"]) == (model.weights.cf, model.weights.ease))
    assert chosen["valid_NDCG@10"] == best == pytest.approx(model.fit_info.best_valid_ndcg10, abs=1e-5)
    # SASRec after one epoch is weak on this chain; the blend leans on EASE
    assert model.weights.ease > 0
    histories = noisy.split.test()[0][:6]
    model.save(tmp_path)
    loaded = Hybrid.load(tmp_path, noisy.item_vectors)
    assert loaded.weights.ease == model.weights.ease
    np.testing.assert_allclose(loaded.score(histories), model.score(histories), rtol=1e-5, atol=1e-5)


def test_hybrid_without_ease_weights_leaves_ease_out(noisy: FitData, sasrec: SASRec) -> None:
    config = HybridConfig(sequence_models=("sasrec",), seeds=1, ease_weights=(0.0,))
    model = Hybrid(config, prototypes=[SASRec(SMALL_SASREC, sasrec.training)])
    assert "ease" not in model.parts() and model.adopt([sasrec]) == ["sequence_0"]
    model.fit(noisy)
    assert not model.ease.fitted and model.weights.ease == 0.0
    assert "ease" in Hybrid(replace(config, ease_weights=(0.0, 0.5))).parts()


@pytest.mark.realdata
def test_ease_on_ml100k_beats_popularity_on_validation() -> None:
    split = leave_one_out(load_dataset(f"movielens:{shared('ml-100k')}"))
    histories, targets = split.valid()
    model = EASE(EASEConfig(l2=100.0, decay=1.0)).fit_histories(split.train(), split.n_items)
    pop = Popularity().fit(FitData(split, np.zeros((split.n_items, 1), np.float32), progress=False))
    ease = evaluate(model, histories, targets, split.n_items)["NDCG@10"]
    assert ease > 1.5 * evaluate(pop, histories, targets, split.n_items)["NDCG@10"]


def test_command_line_trains_explains_and_refuses_ease(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, items = write_csv(
        tmp_path / "log.csv", markov_sequences(n_users=80, n_items=25, length=10, noise=0.2)
    )
    train = ["--quiet", "train", "--dataset", f"csv:{log}", "--items", str(items), "--model", "ease"]
    train += ["--encoder", "hashing-16"]
    assert main([*train, "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model" / "ease_weights.npy").exists()
    capsys.readouterr()
    assert main(["recommend", "--run", str(tmp_path / "run"), "--user", "u3", "-k", "2", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["recommendations"][0]["item_id"]
    assert main(["explain", "--run", str(tmp_path / "run"), "--user", "u3", "--item", top]) == 0
    assert "because of" in capsys.readouterr().out
    assert main([*train, "--out", str(tmp_path / "refused"), "--set", "max_items=5"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "above max_items=5" in error[0] and "Traceback" not in error[0]
