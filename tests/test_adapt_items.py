"""New items in a running service (POST /api/items), and the item representations that rank items
from text: the whitening adaptor (with experts) and the text-only (no ID) variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from whyrec.models.config import ItemEmbeddingConfig
from whyrec.models.nets import ItemEmbedding
from whyrec.service import EventStore, ServiceSettings, create_app
from whyrec.training.feedback import retrain_with_feedback
from whyrec.training.pipeline import prepare, train_run
from whyrec.training.recommender import ADDED_ITEMS, Recommender
from whyrec.training.registry import build_models

NEW = [
    {"item_id": "new-1", "title": "Zanzibar Quokka Chronicles", "attributes": ["Drama"], "description": ""},
    {"item_id": "new-2", "title": "Quokka Returns", "attributes": [], "description": "a sequel"},
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A content-model run on the demo data (hashing encoder): a second or two."""
    out = tmp_path_factory.mktemp("items-run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(out.parent / "cache"))
        prepared = prepare("demo", encoder="hashing-64", progress=False)
        train_run(prepared, "content", out, progress=False, model=build_models(["content"])["content"])
    return out


def client_for(run_dir: Path) -> tuple[TestClient, EventStore]:
    store = EventStore(f"sqlite:///{run_dir / 'events.db'}")
    app = create_app(Recommender.load(run_dir), store, ServiceSettings(run_dir=str(run_dir)))
    return TestClient(app), store


def test_new_items_are_ranked_searched_explained_kept_and_retrained(run_dir: Path) -> None:
    client, store = client_for(run_dir)
    n_before = client.get("/api/health").json()["run"]["n_items"]
    user = next(iter(Recommender.load(run_dir).histories))

    answer = client.post("/api/items", json=NEW)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"added": ["new-1", "new-2"], "n_items": n_before + 2}
    assert [r["item_id"] for r in json.loads((run_dir / ADDED_ITEMS).read_text())] == ["new-1", "new-2"]
    hits = client.get("/api/items/search", params={"q": "quokka"}).json()["items"]
    assert {h["item_id"] for h in hits} >= {"new-1", "new-2"}
    why = client.get(f"/api/users/{user}/recommendations/new-1/explanation")
    assert why.status_code == 200, why.text
    # a new item is ranked from its text: a finite score among all items, after a restart too
    rec = Recommender.load(run_dir)
    scores = rec.ranked_scores(rec.history(user))
    assert rec.n_items == n_before + 2 and np.isfinite(scores[rec.item_index("new-1")])
    # what the running service ranks is what a restart ranks
    live = client.app.state.live.rec  # type: ignore[attr-defined]
    assert np.allclose(live.ranked_scores(rec.history(user)), scores)
    liked = client.post(f"/api/users/{user}/events", json={"item_id": "new-2", "type": "like"})
    assert liked.status_code in (200, 201), liked.text
    store.close()

    out = run_dir.parent / "retrained"
    done = retrain_with_feedback(run_dir, model="itemknn", out=out, progress=False)
    retrained = Recommender.load(done.out)
    assert {"new-1", "new-2"} <= set(retrained.items.ids)
    assert "new-2" in retrained.history(user)  # the like on a new item is behaviour now
    assert retrained.catalog.title("new-1") == NEW[0]["title"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"title": "no id"}], "item_id"),
        ([{"item_id": "x1", "title": "a"}, {"item_id": "x1", "title": "b"}], "more than once"),
        ([{"item_id": "x2", "title": " ", "attributes": [], "description": ""}], "no text"),
        ([{"item_id": "x3", "title": "t" * 501}], "title"),
        ([{"item_id": "x4", "title": "ok"}, {"item_id": "new-1", "title": "taken"}], "already"),
        ([], "at least 1"),
    ],
)
def test_bad_items_get_422_and_nothing_is_added(run_dir: Path, body: list, message: str) -> None:
    client, store = client_for(run_dir)
    client.post("/api/items", json=NEW[:1])  # so that "new-1" is known (or already was)
    before = client.get("/api/health").json()["run"]["n_items"]
    answer = client.post("/api/items", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert client.get("/api/health").json()["run"]["n_items"] == before
    assert "x4" not in Recommender.load(run_dir).items
    store.close()


# -- item representations -------------------------------------------------------------------------
def embedding(**kwargs) -> ItemEmbedding:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(5, 12), dim=1)
    seen = torch.tensor([0, 1, 1, 1, 0, 1, 0], dtype=torch.float32)  # item 4 never seen in training
    return ItemEmbedding(5, 8, text, seen, **kwargs).eval()


@pytest.mark.parametrize("adaptor", ["linear", "whitening"])
def test_text_only_items_are_their_projected_text(adaptor: str) -> None:
    items = embedding(use_ids=False, adaptor=adaptor, experts=3 if adaptor == "whitening" else 1)
    assert items.text is not None
    with torch.no_grad():
        table = items.table()
        projected = items.text(items.text_vectors)
    assert torch.allclose(table[1:6], projected[1:6])  # seen or not, an item is its text
    assert torch.count_nonzero(table[0]) == 0  # padding stays zero


def test_whitening_experts_are_mixed_by_the_gate() -> None:
    items = embedding(adaptor="whitening", experts=2)
    assert items.text is not None
    white = items.text
    with torch.no_grad():
        white.gate.weight.copy_(torch.randn_like(white.gate.weight) * 3)  # type: ignore[union-attr]
        x = items.text_vectors[1:6]
        one = (x - white.bias[0]) @ white.weight[0]
        two = (x - white.bias[1]) @ white.weight[1]
        gate = white.gate(x).softmax(-1)  # type: ignore[misc]
        assert torch.allclose(white(x), gate[:, :1] * one + gate[:, 1:] * two, atol=1e-6)


def test_extend_adds_items_before_the_mask_token() -> None:
    items = embedding()
    with torch.no_grad():
        items.unknown.copy_(torch.randn(8))
        mask_before = items.table()[-1].clone()
        new = torch.nn.functional.normalize(torch.randn(2, 12), dim=1)
        items.extend(new)
        table = items.table()
    assert table.shape == (5 + 2 + 2, 8) and items.n_items == 7
    assert items.text is not None
    with torch.no_grad():
        assert torch.allclose(table[6:8], items.unknown + items.text(new))  # cold: unknown ID + text
    assert torch.allclose(table[-1], mask_before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_ids": False, "use_text": False}, "use_text"),
        ({"use_ids": False, "id_dropout": 0.3}, "use_ids"),
        ({"experts": 4}, "whitening"),
        ({"text_adaptor": "mlp"}, "text_adaptor"),
    ],
)
def test_item_embedding_config_checks_itself(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ItemEmbeddingConfig(**kwargs)
