"""Ranking controls on tiny synthetic catalogues with known answers: blocklists, the cap per
attribute, diversity (MMR) and calibration (Steck 2018), and the controls through the Recommender."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from whyrec.errors import WhyrecError
from whyrec.metrics import calibration_kl, intra_list_diversity, top_indices
from whyrec.training import (
    ItemFacts,
    RankingControls,
    Recommender,
    parse_control_settings,
    parse_controls,
    rerank,
)


def facts(attributes: list[tuple[str, ...]], vectors: np.ndarray | None = None) -> ItemFacts:
    n = len(attributes)
    if vectors is None:
        vectors = np.eye(n)  # every item unlike every other
    return ItemFacts([f"i{i}" for i in range(n)], attributes, vectors)


def ids(ranking) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.item_id for p in ranking.items]


# -- diversity --------------------------------------------------------------------------------------
def test_diversity_keeps_a_near_duplicate_out_of_the_top_two() -> None:
    # i1 is a near-copy of i0 (cos 0.999); i2 is different and almost as relevant
    vectors = np.array([[1.0, 0.0, 0.0], [0.999, 0.045, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    catalogue = facts([()] * 4, vectors)
    scores = np.array([1.0, 0.99, 0.98, 0.5])
    assert ids(rerank(scores, 2, RankingControls(), catalogue)) == ["i0", "i1"]  # the plain top 2
    diverse = rerank(scores, 2, RankingControls(diversity=0.3), catalogue)
    assert ids(diverse) == ["i0", "i2"]
    chosen = diverse.items[1]
    assert chosen.moved_by == "diversity" and chosen.plain_rank == 3 and chosen.rank == 2
    assert diverse.items[0].moved_by is None
    [out] = diverse.moved_out
    assert (out.item_id, out.reason, out.plain_rank) == ("i1", "diversity", 2)


def test_more_diversity_never_gives_a_less_diverse_list() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 8))
    catalogue = facts([()] * 60, vectors)
    scores = rng.normal(size=60)
    found = []
    for d in (0.0, 0.5, 1.0):
        ranking = rerank(scores, 10, RankingControls(diversity=d), catalogue)
        lists = np.array([[catalogue.index[i] for i in ids(ranking)]])
        found.append(intra_list_diversity(lists, vectors))
    assert found[0] < found[1] <= found[2] + 1e-9


def test_no_controls_and_zero_diversity_are_the_plain_ranking_exactly() -> None:
    rng = np.random.default_rng(0)
    n = 80
    scores = np.round(rng.normal(size=n), 1)  # many ties: broken by the lower index, as plain
    scores[rng.choice(n, 15, replace=False)] = -np.inf  # seen items
    catalogue = facts([(("A", "B", "C")[i % 3],) for i in range(n)], rng.normal(size=(n, 6)))
    plain = [f"i{i}" for i in top_indices(scores[None, :], 10)[0]]
    for controls in (RankingControls(), RankingControls(diversity=0.0, candidates=3)):
        ranking = rerank(scores, 10, controls, catalogue, history=[0, 1, 2])
        assert ids(ranking) == plain and not ranking.moved_out
        assert [p.plain_rank for p in ranking.items] == list(range(1, 11))
        assert all(p.moved_by is None for p in ranking.items)


# -- calibration ------------------------------------------------------------------------------------
def _two_genres() -> tuple[ItemFacts, np.ndarray, list[int]]:
    """History: 7 Drama, 3 Comedy. Candidates: 12 Drama ranked above 12 Comedy."""
    attributes = [("Drama",)] * 7 + [("Comedy",)] * 3 + [("Drama",)] * 12 + [("Comedy",)] * 12
    scores = np.concatenate([np.full(10, -np.inf), np.linspace(1.0, 0.8, 12), np.linspace(0.7, 0.5, 12)])
    return facts(attributes), scores, list(range(10))


def test_calibration_brings_the_list_closer_to_the_users_mix() -> None:
    catalogue, scores, history = _two_genres()
    p = np.array([0.3, 0.7])  # Comedy, Drama

    def mix(ranking) -> np.ndarray:  # type: ignore[no-untyped-def]
        genres = Counter(catalogue.attributes[catalogue.index[i]][0] for i in ids(ranking))
        return np.array([genres["Comedy"], genres["Drama"]]) / 10

    plain = rerank(scores, 10, RankingControls(), catalogue, history)
    calibrated = rerank(scores, 10, RankingControls(calibrate=True), catalogue, history)
    np.testing.assert_allclose(mix(plain), [0.0, 1.0])
    assert calibration_kl(p, mix(calibrated)) < calibration_kl(p, mix(plain))
    # every comedy scores below every drama: more weight on calibration buys more of them
    heavier = rerank(scores, 10, RankingControls(calibrate=True, calibration_weight=0.9), catalogue, history)
    assert 0 < mix(calibrated)[0] < mix(heavier)[0] <= 0.3
    assert calibration_kl(p, mix(heavier)) < calibration_kl(p, mix(calibrated))
    comedies = [p for p in calibrated.items if p.item_id in {f"i{i}" for i in range(22, 34)}]
    assert comedies and all(c.moved_by == "calibration" and c.plain_rank > 10 for c in comedies)
    assert {o.reason for o in calibrated.moved_out} == {"calibration"}
    assert len(calibrated.moved_out) == len(comedies)


def test_calibration_without_attributes_in_the_history_changes_nothing() -> None:
    catalogue, scores, _ = _two_genres()
    plain = rerank(scores, 10, RankingControls(), catalogue)
    assert ids(rerank(scores, 10, RankingControls(calibrate=True), catalogue, history=[])) == ids(plain)


# -- blocklists and the cap -------------------------------------------------------------------------
def test_a_blocked_attribute_never_appears_even_when_it_would_fill_the_list() -> None:
    # 12 horror films outrank the 8 others: blocking Horror leaves 8, and 8 is what comes back
    attributes = [("Horror", "Thriller")] * 12 + [("Comedy",)] * 4 + [("Drama",)] * 4
    catalogue = facts(attributes)
    scores = np.concatenate([np.linspace(2.0, 1.0, 12), np.linspace(0.9, 0.1, 8)])
    for extra in ({}, {"diversity": 0.5}, {"calibrate": True}, {"max_per_attribute": 3}):
        controls = RankingControls(block_attributes=("Horror",), **extra)  # type: ignore[arg-type]
        ranking = rerank(scores, 10, controls, catalogue, history=[0, 12])
        assert len(ranking.items) == 8 if "max_per_attribute" not in extra else len(ranking.items) == 6
        assert all("Horror" not in catalogue.attributes[catalogue.index[i]] for i in ids(ranking))
        horror = [o for o in ranking.moved_out if o.reason == "blocked_attribute"]
        assert [o.item_id for o in horror] == [f"i{i}" for i in range(10)]
        assert {o.attribute for o in horror} == {"Horror"}


def test_blocked_items_are_left_out_and_unknown_ids_ignored() -> None:
    catalogue = facts([()] * 6)
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    ranking = rerank(scores, 3, RankingControls(block_items=("i1", "nope")), catalogue)
    assert ids(ranking) == ["i0", "i2", "i3"]
    assert [(o.item_id, o.reason, o.plain_rank) for o in ranking.moved_out] == [("i1", "blocked_item", 2)]


def test_the_cap_per_attribute_holds_and_looks_past_the_candidates() -> None:
    # the ten best items are all Action (some also Comedy); a cap of 2 must reach far down the
    # ranking, past a candidate pool of one, for the rest of the list
    attributes = [("Action",)] * 6 + [("Action", "Comedy")] * 4 + [("Comedy",)] * 3 + [("Drama",)] * 7
    catalogue = facts(attributes)
    scores = -np.arange(20.0)
    for extra in ({}, {"diversity": 0.4}, {"calibrate": True}):
        controls = RankingControls(max_per_attribute=2, candidates=1, **extra)  # type: ignore[arg-type]
        ranking = rerank(scores, 6, controls, catalogue, history=[0, 12, 19])
        counts = Counter(a for i in ids(ranking) for a in catalogue.attributes[catalogue.index[i]])
        assert max(counts.values()) <= 2, counts
        # as long as the cap allows: any item left out would break it
        left = set(catalogue.item_ids) - set(ids(ranking))
        assert all(any(counts[a] >= 2 for a in catalogue.attributes[catalogue.index[i]]) for i in left)
        assert len(ranking.items) >= 5  # Action, Comedy and Drama twice each, at best
        capped = [o for o in ranking.moved_out if o.reason == "attribute_cap"]
        assert capped and all(counts[o.attribute] == 2 for o in capped)
    # the plain ranking under the cap alone: the best allowed item at every step
    plain_cap = rerank(scores, 6, RankingControls(max_per_attribute=2), catalogue)
    assert ids(plain_cap) == ["i0", "i1", "i10", "i11", "i13", "i14"]


def test_controls_never_return_seen_or_unrankable_items_and_never_pad() -> None:
    rng = np.random.default_rng(1)
    n = 30
    catalogue = facts([(("A", "B")[i % 2],) for i in range(n)], rng.normal(size=(n, 5)))
    scores = np.full(n, -np.inf)
    scores[[3, 7, 11, 20]] = [0.1, 0.4, 0.2, 0.3]  # four recommendable items
    for controls in (RankingControls(diversity=1.0), RankingControls(calibrate=True, diversity=0.5),
                     RankingControls(max_per_attribute=1), RankingControls(block_items=("i7",))):  # fmt: skip
        ranking = rerank(scores, 10, controls, catalogue, history=[0, 1, 2])
        assert set(ids(ranking)) <= {"i3", "i7", "i11", "i20"}
        assert len(ranking.items) == len(set(ids(ranking))) <= 4
    assert len(rerank(scores, 10, RankingControls(diversity=1.0), catalogue).items) == 4
    assert not rerank(np.full(n, -np.inf), 10, RankingControls(diversity=0.5), catalogue).items


# -- the controls themselves ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"diversity": 1.5}, "diversity must be at most 1"),
        ({"diversity": -0.1}, "diversity must be at least 0"),
        ({"diversity": float("nan")}, "diversity must be"),
        ({"calibrate": "yes"}, "calibrate must be true or false"),
        ({"max_per_attribute": 0}, "max_per_attribute must be at least 1"),
        ({"calibration_weight": 2}, "calibration_weight must be at most 1"),
        ({"calibration_smoothing": 0}, "calibration_smoothing must be more than 0"),
        ({"block_items": ("a", " ")}, "block_items must not hold an empty name"),
        ({"block_attributes": "Horror"}, "block_attributes must be a tuple"),
    ],
)
def test_bad_controls_are_refused_with_a_clear_message(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RankingControls(**values)


def test_a_request_adds_blocks_and_chooses_knobs_but_never_lifts_a_deployment_block() -> None:
    deployment = RankingControls(block_items=("a",), block_attributes=("Horror",), diversity=0.3,
                                 max_per_attribute=3)  # fmt: skip
    request = deployment.with_request(block_items=("b", "a"), diversity=0.0, calibrate=True)
    assert request.block_items == ("a", "b") and request.block_attributes == ("Horror",)
    assert request.diversity == 0.0 and request.calibrate and request.max_per_attribute == 3
    assert deployment.with_request(max_per_attribute=0).max_per_attribute is None
    assert deployment.with_request() == deployment
    with pytest.raises(ValueError, match="diversity must be at most 1"):
        deployment.with_request(diversity=2.0)


def test_controls_are_read_from_text_and_named_back() -> None:
    controls = parse_controls("diversity=0.3, calibrate,max_per_attribute=3,block_attributes=Horror|War")
    assert controls == RankingControls(diversity=0.3, calibrate=True, max_per_attribute=3,
                                       block_attributes=("Horror", "War"))  # fmt: skip
    assert parse_controls(controls.label()) == controls
    assert parse_controls("none").plain and RankingControls().label() == "none"
    settings = parse_control_settings("none;diversity=0.3;calibrate;max_per_attribute=3")
    assert list(settings) == ["none", "diversity=0.3", "calibrate", "max_per_attribute=3"]
    mistakes = [
        ("colour=red", "unknown ranking control 'colour'"),
        ("diversity=lots", "diversity: 'lots' is not valid"),
        ("diversity=2", "diversity must be at most 1"),
        (" ; ", "names no setting"),
    ]
    for text, message in mistakes:
        with pytest.raises(WhyrecError, match=message):
            parse_control_settings(text)


# -- through the Recommender ------------------------------------------------------------------------
def test_recommender_applies_the_controls(recommender: Recommender, user: str) -> None:
    plain = recommender.recommend(user, k=10)
    assert recommender.recommend(user, k=10, controls=RankingControls()) == plain
    same = recommender.recommend(user, k=10, controls=RankingControls(diversity=0.0, max_per_attribute=100))
    assert [r.item_id for r in same] == [r.item_id for r in plain]
    assert [r.plain_rank for r in same] == [r.rank for r in same]
    common = Counter(a for r in plain for a in recommender.catalog.attrs(r.item_id)).most_common(1)[0][0]
    blocked, moved_out = recommender.recommend_controlled(
        user, k=10, controls=RankingControls(block_attributes=(common,), block_items=(plain[0].item_id,))
    )
    assert len(blocked) == 10 and all(common not in recommender.catalog.attrs(r.item_id) for r in blocked)
    history = set(recommender.history(user))
    assert not history & {r.item_id for r in blocked}
    reasons = {o.item_id: o.reason for o in moved_out}
    assert reasons[plain[0].item_id] == "blocked_item"
    assert {reasons[r.item_id] for r in plain[1:] if common in recommender.catalog.attrs(r.item_id)} == {
        "blocked_attribute"
    }
    diverse = recommender.recommend(user, k=10, controls=RankingControls(diversity=0.7))
    vectors = recommender.item_vectors
    as_rows = lambda recs: np.array([[recommender.item_index(r.item_id) for r in recs]])  # noqa: E731
    assert intra_list_diversity(as_rows(diverse), vectors) > intra_list_diversity(as_rows(plain), vectors)
    assert any(r.moved_by == "diversity" for r in diverse)


@pytest.mark.parametrize("seed", range(6))
def test_what_every_controlled_list_promises(seed: int) -> None:
    """On random catalogues and knobs: only recommendable, unblocked items, each once, the cap held,
    "moved up" only for items shown above their plain rank, and every plain top-k item that is
    missing accounted for."""
    rng = np.random.default_rng(seed)
    n, k = 120, 10
    names = ("A", "B", "C", "D", "E")
    attributes = [tuple(rng.choice(names, size=rng.integers(0, 3), replace=False)) for _ in range(n)]
    catalogue = facts(attributes, rng.normal(size=(n, 6)))
    scores = np.round(rng.normal(size=n), 2)
    scores[rng.choice(n, 30, replace=False)] = -np.inf
    controls = RankingControls(
        diversity=float(rng.choice([0.0, 0.3, 1.0])), calibrate=bool(seed % 2),
        max_per_attribute=int(rng.choice([2, 4])) if seed % 3 else None,
        block_items=tuple(f"i{i}" for i in rng.choice(n, 5)), block_attributes=("E",) if seed > 2 else (),
        candidates=int(rng.choice([5, 100])),
    )  # fmt: skip
    ranking = rerank(scores, k, controls, catalogue, history=rng.choice(n, 8).tolist())
    shown = [catalogue.index[i] for i in ids(ranking)]
    assert len(shown) == len(set(shown)) <= k
    assert all(np.isfinite(scores[i]) for i in shown)
    assert not set(ids(ranking)) & set(controls.block_items)
    assert all(not set(catalogue.attributes[i]) & set(controls.block_attributes) for i in shown)
    if controls.max_per_attribute:
        counts = Counter(a for i in shown for a in catalogue.attributes[i])
        assert max(counts.values(), default=0) <= controls.max_per_attribute
    assert all(p.rank < p.plain_rank for p in ranking.items if p.moved_by)
    plain = top_indices(np.where(np.isfinite(scores), scores, -np.inf)[None, :], k)[0]
    missing = {f"i{i}" for i in plain} - set(ids(ranking))
    assert {o.item_id for o in ranking.moved_out} == missing
