"""Training a sequence model with an EASE teacher (models/teacher.py): the teacher's soft targets
against the item-item scoring they restate, the mixed loss at its two ends, and the training path
(the teacher fitted first, refused where it cannot work, gone once training ends)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from whyrec.errors import WhyrecError
from whyrec.models import BERT4Rec, FitData, SASRec
from whyrec.models.itemitem import scores as item_item_scores
from whyrec.models.teacher import Teacher

from .conftest import markov_sequences
from .test_models import SHORT, SMALL_SASREC, fit_data, make_split


@pytest.fixture(scope="module")
def markov() -> FitData:
    return fit_data(make_split(markov_sequences(n_users=150, n_items=30, length=15)))


def random_teacher(n: int, decay: float, share: float = 0.5, sharpness: float = 1.0) -> Teacher:
    weights = torch.from_numpy(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
    weights.fill_diagonal_(0.0)
    return Teacher(weights, decay, share, sharpness)


@pytest.mark.parametrize("decay", [1.0, 0.6])
def test_the_teachers_distribution_is_the_softmax_of_the_item_item_score_of_each_prefix(decay: float) -> None:
    """Against the item-item models' own scoring of each prefix (scipy, one prefix at a time)."""
    n, sharpness = 9, 1.5
    teacher = random_teacher(n, decay, sharpness=sharpness)
    x = torch.tensor([[0, 0, 3, 5, 3, 1], [2, 4, 6, 8, 9, 7]])  # padding first; items from 1; a repeat
    chosen = x > 0
    chosen[1, 0] = False
    probs = teacher.probabilities(x, chosen)
    weights = teacher.weights.numpy()
    expected = []
    for b, t in zip(*np.nonzero(chosen.numpy()), strict=True):
        prefix = x[b, : t + 1].numpy()
        prefix = prefix[prefix > 0] - 1
        z = item_item_scores([prefix], weights, decay)[0].astype(np.float64)
        z = (z - z.mean()) / z.std(ddof=1) * sharpness
        z[prefix] = -np.inf
        expected.append(np.exp(z - z.max()) / np.exp(z - z.max()).sum())
    np.testing.assert_allclose(probs.numpy(), np.array(expected), rtol=1e-4, atol=1e-6)
    assert probs.shape == (int(chosen.sum()), n)
    np.testing.assert_allclose(probs.sum(dim=1).numpy(), 1.0, rtol=1e-5)


def test_the_mixed_loss_is_cross_entropy_at_share_0_and_the_teachers_at_share_1() -> None:
    n = 7
    x = torch.tensor([[1, 4, 2, 6]])
    chosen = torch.ones_like(x, dtype=torch.bool)
    targets = torch.tensor([3, 0, 5, 6])
    logits = torch.randn(4, n, generator=torch.Generator().manual_seed(1))
    hard = random_teacher(n, 0.8, share=0.0).loss(logits, targets, x, chosen)
    assert hard.item() == pytest.approx(nn.functional.cross_entropy(logits, targets, reduction="sum").item())
    soft_teacher = random_teacher(n, 0.8, share=1.0)
    soft = soft_teacher.probabilities(x, chosen)
    expected = -(soft * torch.log_softmax(logits, dim=1)).sum()
    assert soft_teacher.loss(logits, targets, x, chosen).item() == pytest.approx(expected.item(), rel=1e-5)
    # a softmax over some items only: the teacher's mass on those, renormalised
    columns = torch.tensor([0, 2, 3, 5, 6])
    some = soft[:, columns] / soft[:, columns].sum(dim=1, keepdim=True)
    narrow = logits[:, columns]
    expected = -(some * torch.log_softmax(narrow, dim=1)).sum()
    got = soft_teacher.loss(narrow, torch.tensor([2, 0, 3, 4]), x, chosen, columns)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_sasrec_trains_with_the_teacher_and_scores_alone(markov: FitData) -> None:
    model = SASRec(SMALL_SASREC, replace(SHORT, distill=0.5)).fit(markov)
    teacher = model.fit_info.extra["teacher"]
    assert teacher["model"] == "ease" and 0 < teacher["decay"] <= 1 and teacher["fit_seconds"] >= 0
    assert model._teacher is None  # used in training only
    plain = SASRec(SMALL_SASREC, SHORT).fit(markov)
    assert "teacher" not in plain.fit_info.extra
    batch = markov.split.test()[0][:4]
    assert not np.allclose(model.score(batch), plain.score(batch))  # the targets changed what it learned


def test_the_teacher_is_refused_where_it_cannot_work(markov: FitData) -> None:
    with pytest.raises(WhyrecError, match="causal objective"):
        BERT4Rec(training=replace(BERT4Rec.default_training, max_epochs=1, distill=0.3)).fit(markov)
    with pytest.raises(WhyrecError, match="full softmax"):
        SASRec(SMALL_SASREC, replace(SHORT, distill=0.3, sampled_softmax_above=0)).fit(markov)
    with pytest.raises(ValueError, match="distill"):
        replace(SHORT, distill=1.0)
