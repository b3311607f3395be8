"""Occlusion by removal and occlusion in place (positions kept): what each model reads, known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from whyrec.data import LoadOptions
from whyrec.explain import ExplainConfig, Explainer
from whyrec.explain.context import build_context, occluded
from whyrec.explain.quality import explanation_metrics
from whyrec.models import FitData, ItemKNN, ItemKNNConfig, SASRec, SASRecConfig, TrainingConfig
from whyrec.models.base import HIDDEN, reads_positions, visible
from whyrec.models.hybrid import Hybrid, HybridConfig
from whyrec.models.windows import left_pad
from whyrec.training.pipeline import Prepared, prepare
from whyrec.training.recommender import Recommender

from .conftest import markov_sequences, write_csv

TINY = SASRecConfig(dim=16, n_layers=1, n_heads=1, max_len=8, dropout=0.0)
BRIEF = TrainingConfig(lr=5e-3, max_epochs=2, patience=1, batch_size=64)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    base = tmp_path_factory.mktemp("occlusion")
    sequences = markov_sequences(n_users=80, n_items=25, length=12, noise=0.3)
    inter, items = write_csv(base / "inter.csv", sequences)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        return prepare(f"csv:{inter}", LoadOptions(items=str(items)), encoder="hashing", progress=False)


@pytest.fixture(scope="module")
def sasrec(prepared: Prepared) -> SASRec:
    return SASRec(TINY, BRIEF).fit(FitData(prepared.split, prepared.item_vectors, progress=False))


def rec_of(prepared: Prepared, model: object) -> Recommender:
    return Recommender(model, prepared.split.items, prepared.dataset.catalog, prepared.item_vectors, {})  # type: ignore[arg-type]


def test_a_hidden_slot_is_padding_where_the_item_stood() -> None:
    assert left_pad(np.array([4, HIDDEN, 6]), 5).tolist() == [0, 0, 5, 0, 7]
    assert left_pad(np.delete(np.array([4, 5, 6]), 1), 5).tolist() == [0, 0, 0, 5, 7]
    assert visible(np.array([3, HIDDEN, 2, HIDDEN])).tolist() == [3, 2]


def test_occluded_keeps_positions_only_for_models_that_read_them() -> None:
    indices = np.array([7, 8, 9])
    assert occluded(indices, [1], "mask", positional=True).tolist() == [7, HIDDEN, 9]
    assert occluded(indices, [1], "mask", positional=False).tolist() == [7, 9]
    assert occluded(indices, [1], "remove", positional=True).tolist() == [7, 9]


def test_hiding_the_oldest_item_of_a_full_window_equals_removing_it(
    sasrec: SASRec, prepared: Prepared
) -> None:
    """Known answer: the window is left-padded, so a hidden first slot and a removed first item
    give the network the same input; hiding the newest item does not (its position is kept)."""
    full = next(h for h in prepared.split.test()[0] if len(h) >= TINY.max_len)
    history = np.array(full[-TINY.max_len :])
    first_hidden = sasrec.score([occluded(history, [0], "mask", True)])
    first_removed = sasrec.score([occluded(history, [0], "remove", True)])
    np.testing.assert_allclose(first_hidden, first_removed, rtol=1e-5, atol=1e-6)
    last_hidden = sasrec.score([occluded(history, [len(history) - 1], "mask", True)])
    last_removed = sasrec.score([occluded(history, [len(history) - 1], "remove", True)])
    assert np.abs(last_hidden - last_removed).max() > 1e-4


def test_models_that_ignore_order_give_the_same_evidence_either_way(prepared: Prepared) -> None:
    model = ItemKNN(ItemKNNConfig(decay=1.0)).fit(
        FitData(prepared.split, prepared.item_vectors, progress=False)
    )
    assert not reads_positions(model)
    rec = rec_of(prepared, model)
    items = prepared.split.items.lookup_ids(prepared.split.test()[0][0])
    removed = build_context(rec, items, 50, occlusion="remove")
    masked = build_context(rec, items, 50, occlusion="mask")
    for item_idx in range(model.n_items):
        np.testing.assert_array_equal(removed.contributions(item_idx), masked.contributions(item_idx))


@pytest.mark.parametrize("decayed", ["ease", "cf"])
def test_the_hybrid_hides_in_place_for_the_parts_that_read_order_and_drops_the_slot_for_the_others(
    sasrec: SASRec, prepared: Prepared, monkeypatch: pytest.MonkeyPatch, decayed: str
) -> None:
    hybrid = Hybrid(HybridConfig(sequence_models=("sasrec",), seeds=1), prototypes=[sasrec])
    hybrid.adopt([sasrec])
    hybrid.fit(FitData(prepared.split, prepared.item_vectors, progress=False))
    assert reads_positions(hybrid)
    hybrid.weights = replace(hybrid.weights, cf=1.0, content=1.0, ease=1.0)  # every part takes part
    # an item-item part that weighs items by recency reads where each one stands; with decay 1 not
    hybrid.ease.decay, hybrid.cf.decay = (0.5, 1.0) if decayed == "ease" else (1.0, 0.5)
    history = prepared.split.test()[0][0]
    hidden = occluded(history, [len(history) - 2], "mask", True)
    read: dict[str, list[np.ndarray]] = {}
    for name, part in hybrid.parts().items():
        original = part.score

        def recorded(histories, name=name, original=original):  # type: ignore[no-untyped-def]
            read[name] = [np.asarray(h) for h in histories]
            return original(histories)

        monkeypatch.setattr(part, "score", recorded)
    scores = hybrid.score([hidden])
    assert np.isfinite(scores).all()
    assert read["sequence_0"][0].tolist() == hidden.tolist()  # the network reads the slot
    assert read[decayed][0].tolist() == hidden.tolist()  # and so does the decayed item-item part
    plain = "cf" if decayed == "ease" else "ease"
    for name in (plain, "content"):  # the parts that ignore order read the visible items only
        assert read[name][0].tolist() == visible(hidden).tolist()
    # the hidden item is not treated as seen: only visible items are pushed to the bottom
    ranks = np.argsort(-scores[0], kind="stable")
    assert set(ranks[-len(set(visible(hidden).tolist())) :].tolist()) == set(visible(hidden).tolist())


def test_evidence_under_each_occlusion_and_both_fidelity_tests_are_reported(
    sasrec: SASRec, prepared: Prepared
) -> None:
    rec = rec_of(prepared, sasrec)
    out = {}
    for how in ("remove", "mask"):
        explainer = Explainer(rec, ExplainConfig(occlusion=how))  # type: ignore[arg-type]
        out[how] = explanation_metrics(prepared, sasrec, n_users=6, k=5, progress=False, explainer=explainer)
        assert out[how]["occlusion"] == how
        for key in ("fidelity_top3_rank_drop_in_place", "fidelity_random3_rank_drop_in_place"):
            assert np.isfinite(out[how][key])
    history = prepared.split.items.lookup_ids(prepared.split.test()[0][0])
    removed = Explainer(rec, ExplainConfig(occlusion="remove")).contributions(history, history[-1])[0]
    masked = Explainer(rec, ExplainConfig(occlusion="mask")).contributions(history, history[-1])[0]
    assert removed.shape == masked.shape and not np.allclose(removed, masked)


def test_an_unknown_occlusion_is_refused() -> None:
    with pytest.raises(ValueError, match="occlusion"):
        ExplainConfig.from_dict({"occlusion": "blur"})


def test_models_that_ignore_order_report_no_in_place_fidelity(prepared: Prepared) -> None:
    model = ItemKNN(ItemKNNConfig(decay=1.0)).fit(
        FitData(prepared.split, prepared.item_vectors, progress=False)
    )
    out = explanation_metrics(prepared, model, n_users=4, k=5, progress=False)
    assert "fidelity_ratio_in_place" not in out


def test_in_place_fidelity_fails_evidence_the_user_never_met(sasrec: SASRec, prepared: Prepared) -> None:
    """Evidence made of strangers hides nothing in place: no rank moves, so the metric reads 0."""
    from .test_quality import Hallucinating

    rec = rec_of(prepared, sasrec)
    honest = explanation_metrics(prepared, sasrec, n_users=6, k=5, progress=False)
    lying = explanation_metrics(
        prepared, sasrec, n_users=6, k=5, progress=False, explainer=Hallucinating(rec)
    )
    assert lying["fidelity_top3_rank_drop_in_place"] == 0.0
    assert honest["fidelity_top3_rank_drop_in_place"] > 0
