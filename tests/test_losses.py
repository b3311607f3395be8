"""The sampled softmax: its logQ correction is the right probability, its loss the right formula on
a case small enough to write out, and the catalogue-size threshold switches it on."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from whyrec.models import SASRec, SASRecConfig, TrainingConfig
from whyrec.models.losses import full_softmax, inclusion_log_prob, sampled_softmax

from .conftest import markov_sequences
from .test_models import fit_data, make_split

TINY = SASRecConfig(dim=8, n_layers=1, n_heads=1, max_len=6, dropout=0.0)
ONE_EPOCH = TrainingConfig(max_epochs=1, batch_size=32)


def test_inclusion_probability_on_a_known_case() -> None:
    """Items 0 and 1 are each half the targets, 2 and 3 never; one target and one uniform draw
    over 4 items: item 0 is missed with probability 0.5 * 0.75, item 2 with 0.75."""
    q = inclusion_log_prob(torch.tensor([0.5, 0.5, 0.0, 0.0]), n_targets=1, n_uniform=1).exp()
    assert torch.allclose(q, torch.tensor([0.625, 0.625, 0.25, 0.25]))


def test_inclusion_probability_matches_simulated_draws() -> None:
    rng = np.random.default_rng(0)
    probs = np.array([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    n_targets, n_uniform, trials = 3, 2, 40_000
    targets = rng.choice(6, size=(trials, n_targets), p=probs)
    uniform = rng.integers(0, 6, size=(trials, n_uniform))
    drawn = np.concatenate([targets, uniform], axis=1)
    simulated = np.array([(drawn == j).any(axis=1).mean() for j in range(6)])
    q = inclusion_log_prob(torch.tensor(probs), n_targets, n_uniform).exp().numpy()
    assert np.allclose(q, simulated, atol=0.01)  # 40,000 trials: a standard error under 0.0025


def test_sampled_softmax_is_the_corrected_cross_entropy_over_the_candidates() -> None:
    """Written out by hand: 2 targets (items 1 and 3) of a 4-item catalogue, uniform draws 3 and 0,
    so the candidates are items 0, 1 and 3, each logit lowered by log q_j."""
    hidden = torch.tensor([[1.0, 0.0], [0.5, -1.0]])
    table = torch.tensor([[0.2, 0.1], [1.0, 1.0], [-3.0, 2.0], [0.0, -0.5]])
    targets, uniform = torch.tensor([1, 3]), torch.tensor([3, 0])
    probs = torch.tensor([0.1, 0.6, 0.1, 0.2])
    loss, n_candidates = sampled_softmax(hidden, table, targets, probs, uniform)
    assert n_candidates == 3
    expected = 0.0
    for row, target in ((0, 1), (1, 3)):
        logits = {}
        for j in (0, 1, 3):
            q = 1 - (1 - probs[j].item()) ** 2 * (1 - 1 / 4) ** 2
            dot = sum(hidden[row, d].item() * table[j, d].item() for d in range(2))
            logits[j] = dot - math.log(q)
        expected += -logits[target] + math.log(sum(math.exp(v) for v in logits.values()))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_sample_of_every_item_with_certainty_is_the_full_softmax() -> None:
    """When every item is certain to be a candidate (q = 1) the correction vanishes."""
    torch.manual_seed(0)
    hidden, table = torch.randn(5, 4), torch.randn(6, 4)
    targets = torch.tensor([0, 1, 2, 3, 4])
    probs = torch.full((6,), 1 / 6)
    loss, n_candidates = sampled_softmax(hidden, table, targets, probs, torch.arange(6).repeat(2000))
    assert n_candidates == 6
    assert loss.item() == pytest.approx(full_softmax(hidden, table, targets).item(), rel=1e-5)


def test_the_catalogue_size_threshold_switches_the_sampled_softmax_on() -> None:
    split = make_split(markov_sequences(n_users=40, n_items=30, length=8))
    data = fit_data(split)
    n_columns = int((split.train_item_counts() > 0).sum())
    for above, loss in ((n_columns, "softmax"), (n_columns - 1, "sampled_softmax")):
        training = replace(ONE_EPOCH, sampled_softmax_above=above, sampled_negatives=4)
        model = SASRec(TINY, training).fit(data)
        assert model.fit_info.extra["loss"] == loss
    assert 0 < model.fit_info.extra["mean_candidates"] <= n_columns
    assert model.fit_info.extra["softmax_columns"] == n_columns
    assert TrainingConfig().sampled_softmax_above == 50_000  # on by default only for large catalogues


def test_a_sampled_step_builds_only_the_rows_it_reads_and_gives_the_full_tables_loss() -> None:
    """The training step on a large catalogue builds the item table's rows for its window and its
    candidates only; its loss must be the sampled softmax computed over the whole table with the
    same uniform draws."""
    from whyrec.models.losses import uniform_draws
    from whyrec.models.parallel import Step

    split = make_split(markov_sequences(n_users=40, n_items=30, length=8))
    training = replace(ONE_EPOCH, sampled_softmax_above=0, sampled_negatives=6)
    model = SASRec(TINY, training).fit(fit_data(split))
    net = model.net
    assert net is not None and model._target_probs is not None
    net.train()  # dropout is 0: training mode is deterministic here
    batch = torch.from_numpy(np.stack([np.r_[0, 0, s[:5]] for s in split.train()[:8]]).astype(np.int64))
    with torch.no_grad():
        loss, n_targets = model._loss(Step(net), batch, torch.Generator().manual_seed(3))
        x, y = batch[:, :-1], batch[:, 1:]
        chosen = y > 0
        targets = y[chosen] - 1
        columns = targets if model._column_of is None else model._column_of[targets]
        uniform = uniform_draws(len(model._target_probs), 6, torch.Generator().manual_seed(3))
        table = net.items.table()
        logits_table = table[1 : model.n_items + 1]
        if model._columns is not None:
            logits_table = logits_table[model._columns]
        expected, _ = sampled_softmax(
            net(x, table)[chosen], logits_table, columns, model._target_probs, uniform
        )
    assert n_targets == int(chosen.sum()) > 0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_table_of_some_rows_equals_those_rows_of_the_whole_table() -> None:
    """Padding, seen, unseen and mask-token rows, in training (ID dropout off) and at inference."""
    from whyrec.models.nets import ItemEmbedding

    torch.manual_seed(0)
    seen = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float32)  # padding, 4 items, mask token
    items = ItemEmbedding(4, 5, torch.randn(4, 3), seen)
    rows = torch.tensor([0, 2, 3, 5])
    for training in (True, False):
        items.train(training)
        assert torch.allclose(items.table(rows), items.table()[rows])
