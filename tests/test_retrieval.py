"""Top-K retrieval through an index: exact where it claims to be, re-scored candidates, measured
recall for the approximate index, and served rankings that explanations agree with."""

from __future__ import annotations

import numpy as np
import pytest

from whyrec.data import LoadOptions
from whyrec.explain import Explainer
from whyrec.models import ContentModel
from whyrec.training import build_models, retrieval
from whyrec.training.pipeline import prepare, train_run
from whyrec.training.recommender import Recommender, rank_of
from whyrec.training.retrieval import RetrievalConfig, Retriever, inner_product_parts, recall_at_k

from .conftest import markov_sequences, write_csv


def _clustered(n_items: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    items = centres[rng.integers(0, 20, n_items)] + 0.3 * rng.normal(size=(n_items, dim))
    users = centres[rng.integers(0, 20, 50)] + 0.3 * rng.normal(size=(50, dim))
    return items.astype(np.float32), users.astype(np.float32)


def _exact(items: np.ndarray, user: np.ndarray, k: int, blocked: np.ndarray) -> list[int]:
    scores = (items @ user).astype(np.float64)
    scores[blocked] = -np.inf
    return np.argsort(-scores, kind="stable")[:k].tolist()


@pytest.mark.parametrize("use_faiss", [True, False])
def test_exact_retrieval_equals_the_full_ranking(use_faiss: bool) -> None:
    if use_faiss:
        pytest.importorskip("faiss")
    items, users = _clustered(3000)
    retriever = Retriever(items, RetrievalConfig(ann_threshold=10_000), use_faiss=use_faiss)
    assert retriever.exact and retriever.kind == ("flat" if use_faiss else "numpy")
    blocked = np.array([5, 17, 2999])
    for user in users[:10]:
        found, scores = retriever.top_k(user, 10, blocked)
        assert found.tolist() == _exact(items, user, 10, blocked)
        np.testing.assert_allclose(scores, items[found] @ user, rtol=1e-6)  # the model's own scores
        assert not set(found.tolist()) & set(blocked.tolist())


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_index_recall_is_measured_and_high(index: str) -> None:
    pytest.importorskip("faiss")
    items, users = _clustered(6000)
    config = RetrievalConfig(ann_threshold=1000, index=index, n_lists=32, n_probe=8, hnsw_ef_search=64)
    retriever = Retriever(items, config)
    assert retriever.kind == index and not retriever.exact
    recall = recall_at_k(retriever, users, k=10)
    assert 0.9 <= recall <= 1.0
    # a probe of every cell is an exhaustive search: recall is exactly 1
    every_cell = Retriever(items, RetrievalConfig(ann_threshold=1000, n_lists=32, n_probe=32))
    assert recall_at_k(every_cell, users, k=10) == 1.0


def test_retriever_falls_back_to_numpy_without_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "faiss", None)
    items, users = _clustered(500)
    retriever = Retriever(items, RetrievalConfig(ann_threshold=10))
    assert retriever.kind == "numpy"
    assert retriever.top_k(users[0], 5)[0].tolist() == _exact(items, users[0], 5, np.zeros(0, np.int64))


def test_content_model_is_an_inner_product() -> None:
    items, _ = _clustered(200)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    model = ContentModel().use_vectors(items)
    parts = inner_product_parts(model)
    assert parts is not None
    users, matrix = parts
    histories = [np.array([1, 2, 3]), np.array([7])]
    np.testing.assert_allclose(users(histories) @ matrix.T, model.score(histories), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def sasrec_run(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """A SASRec trained for one epoch on a small Markov-chain log: an inner-product model."""
    base = tmp_path_factory.mktemp("sasrec-retrieval")
    log, items = write_csv(base / "log.csv", markov_sequences(n_users=200, n_items=60, length=12))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        settings = {"max_epochs": "1"}
        options = LoadOptions(items=str(items))
        prepared = prepare(f"csv:{log}", options, encoder="hashing-64", progress=False)
        model = build_models(["sasrec"], settings)["sasrec"]
        rec, _ = train_run(prepared, "sasrec", base / "run", progress=False, model=model, settings=settings)
        return rec


@pytest.mark.parametrize("config", [
    RetrievalConfig(min_items=1, ann_threshold=10**9),  # exact flat index
    RetrievalConfig(min_items=1, ann_threshold=1, n_lists=8, n_probe=8),  # IVF probing every cell
])  # fmt: skip
def test_served_ranking_is_the_ranking_explanations_use(
    sasrec_run: Recommender, config: RetrievalConfig
) -> None:
    pytest.importorskip("faiss")
    rec = sasrec_run
    parts = inner_product_parts(rec.model)
    assert parts is not None
    histories = [rec.to_indices(rec.history(u)) for u in sorted(rec.histories)[:3]]
    np.testing.assert_allclose(
        parts[0](histories) @ parts[1].T, rec.model.score(histories), rtol=1e-4, atol=1e-4
    )  # the model's score is the product of these parts
    users = sorted(rec.histories)[:2]
    exact = {u: rec.recommend(u, k=10, exact=True) for u in users}
    rec.use_retrieval(config)
    try:
        explainer = Explainer(rec)
        for user in users:
            served = rec.recommend(user, k=10, exclude=[exact[user][0].item_id])
            assert rec.retriever() is not None
            reference = rec.recommend(user, k=10, exclude=[exact[user][0].item_id], exact=True)
            assert [r.item_id for r in served] == [r.item_id for r in reference]
            np.testing.assert_allclose([r.score for r in served], [r.score for r in reference], rtol=1e-4)
            final = rec.ranked_scores(rec.history(user))
            for r in rec.recommend(user, k=10):
                assert rank_of(final, rec.item_index(r.item_id)) == r.rank
            if user != users[0]:
                continue
            # the counterfactual's new rank is checked against the served ranking
            top = rec.recommend(user, k=10)[0]
            cf = explainer.explain(top.item_id, user_id=user, k=10).counterfactual
            if cf is not None and cf.verified:
                kept = [h for h in rec.history(user) if h not in set(cf.removed)]
                after = rec.recommend(history=kept, k=10, exclude=list(cf.removed))
                assert top.item_id not in {r.item_id for r in after}
    finally:
        rec.use_retrieval(None)


def test_explanations_through_the_index_score_a_few_items_and_give_the_same_evidence(
    sasrec_run: Recommender,
) -> None:
    from whyrec.explain.context import build_context
    from whyrec.models.base import InnerProductScores, ScoreMatrix

    rec = sasrec_run
    items = rec.history(sorted(rec.histories)[0])
    plain = build_context(rec, items, 50)
    assert isinstance(plain.scores, ScoreMatrix)
    rec.use_retrieval(RetrievalConfig(min_items=1, ann_threshold=10**9))
    try:
        indexed = build_context(rec, items, 50)
        assert isinstance(indexed.scores, InnerProductScores)  # the few-items path is taken
        # the full row is the model's own scoring of the history, as the exact ranking computes it
        np.testing.assert_array_equal(indexed.raw, rec.score_indices([rec.to_indices(items)])[0])
        np.testing.assert_allclose(indexed.raw, plain.raw, rtol=1e-5, atol=1e-5)
        for item_idx in range(rec.n_items):
            np.testing.assert_allclose(
                indexed.contributions(item_idx), plain.contributions(item_idx), rtol=1e-4, atol=1e-4
            )
        explained = Explainer(rec).explain_recommendations(history=items, k=5)
        served = rec.recommend(history=items, k=5, exact=True)
        assert [r.item_id for r, _ in explained] == [r.item_id for r in served]
    finally:
        rec.use_retrieval(None)
