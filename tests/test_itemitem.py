"""The item-item models (item-kNN, EASE): recency weights with a known answer, the decay chosen on
validation, and explanations that are exact (equal to hiding the item in place)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from whyrec.explain.context import occluded
from whyrec.metrics import evaluate
from whyrec.models import FitData, ItemKNN, ItemKNNConfig
from whyrec.models.base import HIDDEN, reads_positions
from whyrec.models.ease import EASE, EASEConfig
from whyrec.models.itemitem import binary_matrix, recency_matrix, search_sample

from .conftest import markov_sequences
from .test_models import fit_data, make_split

ItemItem = EASE | ItemKNN

#: each item-item model with a fixed decay
MODELS: dict[str, Callable[[float], ItemItem]] = {
    "ease": lambda decay: EASE(EASEConfig(l2=5.0, decay=decay)),
    "itemknn": lambda decay: ItemKNN(ItemKNNConfig(decay=decay)),
}


@pytest.fixture(scope="module")
def chain() -> FitData:
    """A noisy Markov chain: the newest item says most about the next one."""
    return fit_data(make_split(markov_sequences(n_users=200, n_items=30, length=12, noise=0.3)))


def test_recency_weights_sum_over_each_items_slots() -> None:
    """Known answer: item 2's two slots have ages 3 and 1; a hidden slot keeps its place."""
    history = np.array([5, 2, HIDDEN, 2, 7])
    row = recency_matrix([history], 8, 0.5).toarray()[0]
    expected = np.zeros(8)
    expected[[5, 2, 7]] = [0.5**4, 0.5**3 + 0.5**1, 1.0]
    np.testing.assert_allclose(row, expected)
    counts = np.zeros(8)
    counts[[5, 2, 7]] = [1, 2, 1]
    np.testing.assert_array_equal(recency_matrix([history], 8, 1.0).toarray()[0], counts)
    distinct = np.array([5, HIDDEN, 2, 7])
    np.testing.assert_array_equal(
        recency_matrix([distinct], 8, 1.0).toarray(), binary_matrix([distinct[distinct >= 0]], 8).toarray()
    )


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("decay", [1.0, 0.7])
def test_contributions_are_exact_and_equal_occlusion(chain: FitData, name: str, decay: float) -> None:
    model = MODELS[name](decay).fit(chain)
    assert model.decay == decay and reads_positions(model) == (decay < 1)
    history = next(h for h in chain.split.test()[0] if len(set(h.tolist())) == len(h) > 5)
    scores = model.score([history])[0]
    for item in (0, 7, int(np.argmax(scores))):
        contributions = model.contributions(history, item)
        assert contributions.sum() == pytest.approx(scores[item], rel=1e-5, abs=1e-6)
        for p in range(len(history)):
            hidden = model.score([occluded(history, [p], "mask", reads_positions(model))])[0][item]
            assert scores[item] - hidden == pytest.approx(contributions[p], rel=1e-4, abs=1e-6)
            if decay == 1.0:  # order-blind: removing the item is hiding it
                assert model.score([np.delete(history, p)])[0][item] == pytest.approx(hidden, abs=1e-6)
    assert np.ptp(model.contributions(history, int(np.argmax(scores)))) > 0  # not a constant share
    # each slot of an item seen twice is a term of its own: hiding either lowers the score by its share
    repeated = np.array([history[0], history[1], history[0]])
    item = int(np.argmax(model.score([repeated])[0]))
    contributions = model.contributions(repeated, item)
    assert contributions[0] != 0 and contributions[0] == pytest.approx(contributions[2] * decay**2)
    whole = model.score([repeated])[0][item]
    for p in range(3):
        hidden = model.score([occluded(repeated, [p], "mask", True)])[0][item]
        assert whole - hidden == pytest.approx(contributions[p], rel=1e-4, abs=1e-6)


def test_itemknn_decay_is_the_validation_best_and_wins_on_a_chain(chain: FitData) -> None:
    model = ItemKNN(ItemKNNConfig(decays=(1.0, 0.8, 0.3))).fit(chain)
    grid = model.fit_info.extra["grid"]
    assert [g["decay"] for g in grid] == [1.0, 0.8, 0.3]
    best = max(grid, key=lambda g: g["valid_NDCG@10"])
    assert model.decay == best["decay"] == model.fit_info.extra["decay"]
    histories, targets = chain.split.valid()
    valid = evaluate(model, histories, targets, chain.split.n_items)["NDCG@10"]
    assert valid == pytest.approx(best["valid_NDCG@10"], abs=1e-5)
    plain = grid[0]["valid_NDCG@10"]
    assert model.decay < 1 and valid > plain + 0.01
    # a fixed decay searches nothing, and fitting on histories alone needs one
    fixed = ItemKNN(ItemKNNConfig(decay=0.8)).fit(chain)
    assert fixed.decay == 0.8 and fixed.fit_info.extra["grid"] == []
    with pytest.raises(ValueError, match="needs validation histories"):
        ItemKNN().fit_histories(chain.split.train(), chain.split.n_items)


def test_itemknn_saves_its_decay_and_loads_runs_saved_without_one(chain: FitData, tmp_path: Path) -> None:
    model = ItemKNN(ItemKNNConfig(decay=0.5)).fit(chain)
    batch = chain.split.test()[0][:5]
    model.save(tmp_path)
    loaded = ItemKNN.load(tmp_path, chain.item_vectors)
    assert loaded.decay == 0.5 and loaded.configs() == model.configs()
    np.testing.assert_allclose(loaded.score(batch), model.score(batch))
    # a run saved with the config alone weighs every item the same
    (tmp_path / "itemknn_config.json").write_text(json.dumps({"neighbours": 100, "shrinkage": 10.0}))
    older = ItemKNN.load(tmp_path, chain.item_vectors)
    assert older.decay == 1.0 and not reads_positions(older)
    plain = ItemKNN(ItemKNNConfig(decay=1.0)).fit(chain)
    np.testing.assert_allclose(older.score(batch), plain.score(batch))


def test_search_sample_is_a_seeded_subset_in_order() -> None:
    histories = [np.array([i, i + 1]) for i in range(100)]
    targets = np.arange(100) + 5
    sampled, sampled_targets = search_sample((histories, targets), 30, seed=3)
    assert len(sampled) == len(sampled_targets) == 30
    rows = sampled_targets - 5  # each target names its row
    assert (np.diff(rows) > 0).all()
    assert all(np.array_equal(h, histories[r]) for h, r in zip(sampled, rows, strict=True))
    assert np.array_equal(search_sample((histories, targets), 30, seed=3)[1], sampled_targets)
    assert not np.array_equal(search_sample((histories, targets), 30, seed=4)[1], sampled_targets)
    for everyone in (None, 100, 500):
        assert search_sample((histories, targets), everyone)[0] is histories


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_search_scores_at_most_valid_users_users(chain: FitData, name: str) -> None:
    """Each grid entry is the NDCG@10 of that setting on the sample, not on every validation user."""
    histories, targets = chain.split.valid()
    fields = {"decays": (1.0, 0.5), "valid_users": 40} | ({"lambdas": (5.0,)} if name == "ease" else {})
    model = (EASE(EASEConfig(**fields)) if name == "ease" else ItemKNN(ItemKNNConfig(**fields))).fit(chain)
    sample = search_sample((histories, targets), 40)
    n_items = chain.split.n_items
    for entry in model.fit_info.extra["grid"]:
        fixed = MODELS[name](entry["decay"]).fit(chain)
        assert entry["valid_NDCG@10"] == pytest.approx(evaluate(fixed, *sample, n_items)["NDCG@10"], abs=1e-5)
    everyone = evaluate(MODELS[name](1.0).fit(chain), histories, targets, n_items)["NDCG@10"]
    assert model.fit_info.extra["grid"][0]["valid_NDCG@10"] != pytest.approx(everyone, abs=1e-4)
