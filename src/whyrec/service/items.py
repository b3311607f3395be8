"""``POST /api/items``: new items, encoded with the run's text encoder, ranked, searched and
explained at once without retraining, and kept in the run directory (``added_items.json`` and
``added_item_vectors.npy``) so that a restart and ``whyrec train --run DIR --with-feedback`` keep them.

No ``from __future__ import annotations`` here: FastAPI reads the annotations at runtime.
"""

import threading
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field, model_validator

from whyrec.data.dataset import ItemCatalog
from whyrec.events import MAX_ID_LENGTH
from whyrec.service.ask import Answerer
from whyrec.service.auth import Credential, require_admin
from whyrec.service.intents import TitleIndex
from whyrec.service.live import LiveRecommender
from whyrec.service.schemas import AUTH_RESPONSES, ErrorOut
from whyrec.service.settings import ServiceSettings
from whyrec.text.encoder import TextEncoder, make_encoder

MAX_NEW_ITEMS = 500  # per request


class NewItemIn(BaseModel):
    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = Field(default="", max_length=500)
    attributes: list[str] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _has_text(self) -> "NewItemIn":
        if not self.item_id.strip():
            raise ValueError("item_id must not be blank")
        if any(len(a) > 200 for a in self.attributes):
            raise ValueError(f"item {self.item_id!r}: an attribute is longer than 200 characters")
        if not (self.title.strip() or self.description.strip() or any(a.strip() for a in self.attributes)):
            raise ValueError(f"item {self.item_id!r} has no text (title, attributes or description)")
        return self


NewItemsBody = Annotated[list[NewItemIn], Body(min_length=1, max_length=MAX_NEW_ITEMS)]
BAD_ITEM: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "a bad item; nothing was added"}
}


class NewItemsOut(BaseModel):
    added: list[str]
    n_items: int


class AddItemError(ValueError):
    """A batch of new items that cannot be added (answered 422; nothing is added)."""


def build_items_router(live: LiveRecommender, answerer: Answerer, settings: ServiceSettings) -> APIRouter:
    router = APIRouter(prefix="/api")
    rec = live.rec
    lock = threading.Lock()  # one batch at a time: the catalogue grows by whole batches
    encoder: list[TextEncoder] = []

    def encode(texts: list[str]) -> np.ndarray:
        if not encoder:
            encoder.append(make_encoder(rec.info.get("encoder"), progress=False, cached=False))
        return np.asarray(encoder[0].encode(texts), dtype=np.float32)

    # adding to the catalogue is for the service key, never a user token
    @router.post(
        "/items", response_model=NewItemsOut, tags=["items"], responses={**BAD_ITEM, **AUTH_RESPONSES}
    )
    def add_items(items: NewItemsBody, _: Annotated[Credential, Depends(require_admin)]) -> NewItemsOut:
        """Add items to the catalogue: each is encoded with the run's text encoder and ranked as
        an item unseen in training (from its text), found by search and explained at once. All
        or nothing: a missing, repeated or already known id, or an item without text, adds none."""
        ids = [i.item_id for i in items]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise AddItemError(f"item id {repeated[0]!r} appears more than once in the request")
        with lock:
            known = [i for i in ids if i in rec.items]
            if known:
                raise AddItemError(f"item id {known[0]!r} is already in the catalogue")
            records = [i.model_dump() for i in items]
            texts = [ItemCatalog.from_records(records).text(i) for i in ids]  # as training reads them
            rec.add_items(records, encode(texts))
            if settings.run_dir:
                rec.save_added(Path(settings.run_dir))
            live.explainer.refresh_catalog()
            answerer.titles = TitleIndex(rec.catalog, rec.items.ids)
        return NewItemsOut(added=ids, n_items=rec.n_items)

    return router
