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
from whyrec.models.itemitem import binary_matrix, recency_matrix

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


def test_recency_weights_count_the_items_after_each_latest_occurrence() -> None:
    """Known answer: ages 3, 1 (the latest of item 2's two slots), 0; a hidden slot keeps its place."""
    history = np.array([5, 2, HIDDEN, 2, 7])
    row = recency_matrix([history], 8, 0.5).toarray()[0]
    expected = np.zeros(8)
    expected[[5, 2, 7]] = [0.5**4, 0.5**1, 1.0]
    np.testing.assert_allclose(row, expected)
    np.testing.assert_array_equal(
        recency_matrix([history], 8, 1.0).toarray(), binary_matrix([history[history >= 0]], 8).toarray()
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
    # an item seen twice counts once, with its newest slot's weight, split between its positions
    repeated = np.array([history[0], history[1], history[0]])
    item = int(np.argmax(model.score([repeated])[0]))
    contributions = model.contributions(repeated, item)
    assert contributions[0] == contributions[2] != 0
    without = model.score([np.array([HIDDEN, history[1], HIDDEN])])[0][item]
    assert model.score([repeated])[0][item] - without == pytest.approx(contributions[[0, 2]].sum(), abs=1e-6)


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
