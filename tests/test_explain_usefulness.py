"""List-level reasons, usefulness measures and the interest timeline, on hand-built explanations
with known answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from whyrec.data import ItemCatalog, Vocabulary
from whyrec.explain.grouping import group_by_reason
from whyrec.explain.interests import label_fits
from whyrec.explain.timeline import interest_timeline
from whyrec.explain.types import Evidence, Explanation, Interest, InterestProfile, Sentence
from whyrec.explain.usefulness import (
    evidence_distinct_ratio,
    evidence_relatedness,
    interest_label_agreement,
    usefulness_metrics,
)
from whyrec.models import Popularity
from whyrec.training.recommender import Recommender

GENRES = {"h1": ("Horror",), "h2": ("Horror",), "h3": ("Horror", "Thriller"), "c1": ("Comedy",),
          "c2": ("Comedy", "Romance"), "d1": ("Drama",), "x1": ()}  # fmt: skip
IDS = list(GENRES)
CATALOG = ItemCatalog(titles={i: f"Film {i}" for i in IDS}, attributes=GENRES)


def interest(label: str, items: tuple[str, ...], n: int = 0) -> Interest:
    return Interest(n, label, tuple(label.split(" & ")), 0.5, 0.5, 0.5, "recent", items)


HORROR = interest("Horror & Thriller", ("h1", "h2", "h3"), 0)
COMEDY = interest("Comedy & Romance", ("c1", "c2"), 1)


def explanation(item: str, rank: int, evidence: list[str], served: Interest | None = None) -> Explanation:
    named = served is not None and label_fits(served, CATALOG, item)
    own = f"own sentence of {item}"
    return Explanation(
        user_id="u", item_id=item, title=CATALOG.title(item), model="m", score=1.0, rank=rank, k=10,
        recommended=True, interest=served, shared_attributes=(), shared_words=(), counterfactual=None,
        evidence=tuple(Evidence(e, CATALOG.title(e), 1.0 / (n + 1), n) for n, e in enumerate(evidence)),
        why_not=None, sentence=Sentence(own, "en", "template"), template_sentence=own,
        evidence_window=5, interest_named=named,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rec() -> Recommender:
    vectors = np.eye(len(IDS), dtype=np.float32)
    vectors[IDS.index("x1")] = vectors[IDS.index("d1")]  # x1's nearest item in LM space is d1
    return Recommender(Popularity(), Vocabulary(IDS), CATALOG, vectors, {})


def test_label_fits_needs_a_shared_term() -> None:
    assert label_fits(HORROR, CATALOG, "h3") and label_fits(COMEDY, CATALOG, "c2")
    assert not label_fits(COMEDY, CATALOG, "h1")


def test_groups_say_a_shared_reason_once_and_what_is_specific_to_each_item() -> None:
    explained = [
        explanation("h3", 1, ["h1", "h2"], HORROR),
        explanation("c2", 2, ["c1", "d1"], COMEDY),
        explanation("h2", 3, ["h1", "d1"], HORROR),
        explanation("x1", 4, ["d1"]),
        explanation("c1", 5, ["d1", "h1"], COMEDY),  # shares d1 with x1: d1 drives two items
        explanation("d1", 6, ["c2"], COMEDY),  # the comedy label does not fit a drama
    ]
    groups = group_by_reason(explained, CATALOG, "en")
    kinds = [(g.kind, g.ref, [i.item_id for i in g.items]) for g in groups]
    # c2 is the only item named for its interest, so it keeps its own sentence
    assert kinds == [("item", "h1", ["h3", "h2"]), ("own", None, ["c2", "d1"]), ("item", "d1", ["x1", "c1"])]
    first = groups[0]
    assert first.reason == "Because of “Film h1” in your history"
    assert first.items[0].specific == "Also because of “Film h2”. Horror and Thriller."
    assert all("Film h1" not in i.specific for i in first.items)  # the shared reason is not repeated
    d1_group = next(g for g in groups if g.ref == "d1")
    assert [i.item_id for i in d1_group.items] == ["x1", "c1"]
    assert d1_group.items[0].specific == "Mostly the shared reason."
    own = [g for g in groups if g.kind == "own"]
    assert len(own) == 1 and own[0].reason == "" and own[0].items[0].specific == "own sentence of c2"
    assert sorted(i.item_id for g in groups for i in g.items) == sorted(e.item_id for e in explained)


def test_interest_groups_and_chinese_cards() -> None:
    explained = [explanation("c2", 1, ["h1"], COMEDY), explanation("c1", 2, ["d1"], COMEDY)]
    groups = group_by_reason(explained, CATALOG, "zh")
    assert [g.kind for g in groups] == ["interest"]
    assert groups[0].reason == "为你的“喜剧、爱情”兴趣推荐"
    for item in groups[0].items:
        assert not re.search(r"[A-Za-z]", re.sub(r"《[^》]*》", "", item.specific)), item.specific
    assert groups[0].items[0].specific == "还因为《Film h1》。喜剧、爱情。"


def test_usefulness_measures_have_known_values(rec: Recommender) -> None:
    per_user = [
        [explanation("h3", 1, ["h1", "c1", "x1"], HORROR), explanation("x1", 2, ["d1", "h1"], COMEDY)],
        [explanation("c2", 1, ["c1"], COMEDY), explanation("c1", 2, ["c2"], HORROR)],
    ]
    flat = [e for p in per_user for e in p]
    # h3: h1 shares Horror, c1 nothing, x1 nothing; x1: d1 is its LM neighbour (n=1), h1 is not;
    # c2: c1 shares Comedy; c1: c2 shares Comedy -> 4 related of 7
    assert evidence_relatedness(rec, flat, n=1) == pytest.approx(4 / 7)
    assert evidence_distinct_ratio(per_user) == pytest.approx(1.0)
    assert evidence_distinct_ratio([[explanation("h3", 1, ["h1"]), explanation("h2", 2, ["h1"])]]) == 0.5
    # x1 has no attributes: not judged; h3 fits Horror, c2 fits Comedy, c1 does not fit Horror
    assert interest_label_agreement(rec, flat) == pytest.approx(2 / 3)
    metrics = usefulness_metrics(rec, per_user)
    assert metrics["interest_named_rate"] == pytest.approx(0.5)


def test_timeline_follows_a_change_of_interest() -> None:
    history = ["h1", "h2", "h3", "h1", "c1", "c2", "c1", "c2"]
    profile = InterestProfile("u", (HORROR, COMEDY))
    timeline = interest_timeline(profile, history, n_windows=2)
    assert [(w.start, w.end) for w in timeline.windows] == [(0, 4), (4, 8)]
    assert [w.shares for w in timeline.windows] == [(1.0, 0.0), (0.0, 1.0)]
    assert interest_timeline(profile, [], 4).windows == ()
    muted = InterestProfile("u", (HORROR, Interest(1, "Comedy & Romance", (), 0.5, 0.5, 0.5, "recent",
                                                     ("c1", "c2"), muted=True)))  # fmt: skip
    assert all(sum(w.shares) == pytest.approx(1.0) for w in interest_timeline(muted, history, 3).windows)
