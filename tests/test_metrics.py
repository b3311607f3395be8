"""Known answers for the ranking metrics: ties never favour the target, non-finite scores are
refused, and training never keeps an epoch whose loss or validation scores are not finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from whyrec.errors import TrainingError
from whyrec.metrics import (
    NonFiniteScoreError,
    Ranks,
    evaluate,
    mask_seen,
    metrics_from_ranks,
    rank_targets,
    target_ranks,
    top_indices,
)
from whyrec.models import FitData, SASRec, SASRecConfig, TrainingConfig

from .conftest import markov_sequences
from .test_models import fit_data, make_split


class Fixed:
    """A 'model' that returns given scores whatever the history."""

    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.scores, (len(histories), 1))


def test_constant_scores_give_chance_level_not_a_perfect_score() -> None:
    n_items, n_users = 200, 50
    histories = [np.array([u % n_items]) for u in range(n_users)]
    targets = np.array([(u + 1) % n_items for u in range(n_users)])
    out = evaluate(Fixed(np.zeros(n_items)), histories, targets, n_items)
    candidates = n_items - 1  # the one seen item is masked
    assert out["HR@10"] == pytest.approx(10 / candidates)
    assert out["HR@20"] == pytest.approx(20 / candidates)
    expected_ndcg = sum(1 / math.log2(p + 2) for p in range(10)) / candidates
    assert out["NDCG@10"] == pytest.approx(expected_ndcg)
    assert out["MRR@10"] == pytest.approx(sum(1 / (p + 1) for p in range(10)) / candidates)


def test_ndcg_standard_error_is_over_users() -> None:
    # two users: the target first (NDCG 1) and fourth (NDCG 1/log2(5)); no ties, nothing seen
    scores = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
    out = evaluate(Fixed(scores), [np.array([], dtype=np.int64)] * 2, np.array([0, 3]), 5)
    gains = np.array([1.0, 1 / math.log2(5)])
    assert out["NDCG@10"] == pytest.approx(gains.mean())
    assert out["NDCG@10_se"] == pytest.approx(abs(gains[0] - gains[1]) / 2)  # sd/sqrt(2) for two values


def test_hand_computed_ndcg_and_mrr_without_ties() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5], [5.0, 4.0, 3.0, 2.0, 1.0]])
    ranks = target_ranks(scores, np.array([0, 1, 4]))  # 0-based ranks 0, 3, 4
    np.testing.assert_array_equal(ranks.higher, [0, 3, 4])
    np.testing.assert_array_equal(ranks.tied, [0, 0, 0])
    out = metrics_from_ranks(ranks, cutoffs=(1, 4))
    assert out["HR@1"] == pytest.approx(1 / 3)
    assert out["HR@4"] == pytest.approx(2 / 3)
    assert out["NDCG@4"] == pytest.approx((1 + 1 / math.log2(5)) / 3)
    assert out["MRR@4"] == pytest.approx((1 + 1 / 4) / 3)


def test_a_tie_counts_half_the_other_tied_items() -> None:
    # target 2 is tied with items 1 and 3, one item (0) above: positions 1, 2, 3 equally likely
    ranks = target_ranks(np.array([[9.0, 5.0, 5.0, 5.0, 1.0]]), np.array([2]))
    assert ranks.higher[0] == 1 and ranks.tied[0] == 2 and ranks.expected[0] == 2.0
    out = metrics_from_ranks(ranks, cutoffs=(2, 3))
    assert out["HR@2"] == pytest.approx(1 / 3)
    assert out["HR@3"] == pytest.approx(2 / 3)
    assert out["NDCG@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 3)
    assert out["MRR@3"] == pytest.approx((1 / 2 + 1 / 3) / 3)


def test_seen_items_are_masked_and_can_not_beat_the_target() -> None:
    scores = np.array([[10.0, 9.0, 1.0, 0.0]])
    histories = [np.array([0, 1])]
    ranks = target_ranks(mask_seen(scores.copy(), histories), np.array([2]))
    assert ranks.higher[0] == 0 and ranks.tied[0] == 0
    unmasked, _ = rank_targets(Fixed(scores[0]), histories, np.array([2]), exclude_seen=False)
    assert unmasked.higher[0] == 2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_model_scores_are_refused(bad: float) -> None:
    scores = np.arange(6, dtype=np.float64)
    scores[4] = bad
    with pytest.raises(NonFiniteScoreError, match="non-finite"):
        evaluate(Fixed(scores), [np.array([0])], np.array([1]), 6)
    with pytest.raises(ValueError):  # a NonFiniteScoreError is a ValueError
        rank_targets(Fixed(scores), [np.array([0])], np.array([1]))


def test_nan_is_refused_but_minus_inf_is_a_mask_in_target_ranks() -> None:
    with pytest.raises(NonFiniteScoreError):
        target_ranks(np.array([[1.0, np.nan, 0.0]]), np.array([0]))
    ranks = target_ranks(np.array([[1.0, -np.inf, 0.0]]), np.array([2]))
    assert ranks.higher[0] == 1 and ranks.tied[0] == 0


def test_top_indices_order_ties_by_item_index() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_indices(scores, 2), [[1, 2], [0, 1]])
    np.testing.assert_array_equal(top_indices(scores, 4), [[1, 2, 4, 3], [0, 1, 2, 3]])
    rng = np.random.default_rng(0)
    rounded = rng.integers(0, 5, size=(30, 40)).astype(np.float64)  # many ties
    expected = np.argsort(-rounded, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(top_indices(rounded, 7), expected)


def test_ranks_select_rows_and_concatenate() -> None:
    ranks = Ranks(np.array([0, 5, 2]), np.array([0, 2, 0]))
    assert np.median(ranks[np.array([True, True, False])]) == pytest.approx(3.0)
    both = Ranks.concatenate([ranks, ranks[[0]]])
    np.testing.assert_array_equal(np.asarray(both), [0.0, 6.0, 2.0, 0.0])


class _FailingSASRec(SASRec):
    """SASRec whose loss (or validation scores) become NaN from a given epoch on."""

    def __init__(self, *, nan_loss_from: int | None = None, nan_scores_from: int | None = None) -> None:
        super().__init__(
            SASRecConfig(dim=16, n_layers=1, n_heads=1, max_len=10),
            TrainingConfig(lr=5e-3, max_epochs=6, patience=10, batch_size=64),
        )
        self.nan_loss_from, self.nan_scores_from = nan_loss_from, nan_scores_from
        self.scored = 0  # validation passes so far (each scores all users in one call)

    def _loss(self, step, windows, generator):  # type: ignore[no-untyped-def]
        loss, n_targets = super()._loss(step, windows, generator)
        if self.nan_loss_from is not None and self.scored >= self.nan_loss_from:
            return loss * torch.tensor(float("nan")), n_targets
        return loss, n_targets

    def score(self, histories):  # type: ignore[no-untyped-def]
        scores = super().score(histories)
        self.scored += 1
        if self.nan_scores_from is not None and self.scored > self.nan_scores_from:
            scores[:, 3] = np.nan
        return scores


@pytest.fixture(scope="module")
def small() -> FitData:
    return fit_data(make_split(markov_sequences(n_users=60, n_items=20, length=10)))


def test_a_nan_loss_stops_training_and_keeps_the_last_good_epoch(small: FitData) -> None:
    model = _FailingSASRec(nan_loss_from=2).fit(small)  # validation passes 1 and 2 are fine
    assert model.fit_info.extra["epochs_run"] == 3
    assert model.fit_info.best_epoch in (0, 1)
    assert np.isfinite(model.score(small.split.test()[0][:4])).all()


def test_nan_validation_scores_stop_training_and_are_never_kept(small: FitData) -> None:
    model = _FailingSASRec(nan_scores_from=2)
    model.fit(small)
    assert model.fit_info.extra["epochs_run"] == 3
    assert len(model.fit_info.extra["valid_curve"]) == 2
    assert math.isfinite(model.fit_info.best_valid_ndcg10)


def test_training_that_never_has_a_finite_epoch_is_a_clear_error(small: FitData) -> None:
    with pytest.raises(TrainingError, match="training loss became non-finite in epoch 1"):
        _FailingSASRec(nan_loss_from=0).fit(small)
    with pytest.raises(TrainingError, match="validation scores became non-finite in epoch 1"):
        _FailingSASRec(nan_scores_from=0).fit(small)
