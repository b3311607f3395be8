"""Text search over the run's items: substring matches first, then the language model's nearest
items to the query (the query is encoded with the run's own encoder, so it lives in the same
space as the item vectors). The encoder is loaded on first use, or in the background by
:meth:`ItemSearch.warm`; while it is unavailable, search is substring-only."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np

from whyrec.text import TextEncoder, make_encoder
from whyrec.training.recommender import Recommender

log = logging.getLogger("whyrec.service")

MatchKind = Literal["text", "semantic"]


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    title: str
    attributes: tuple[str, ...]
    score: float  # 1.0 for a text match, cosine similarity for a semantic one
    match: MatchKind


class ItemSearch:
    def __init__(self, recommender: Recommender, encoder_name: str | None, semantic: bool = True) -> None:
        self.rec = recommender
        self.encoder_name = encoder_name
        self.semantic = semantic
        self._encoder: TextEncoder | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        if not self.semantic or self._failed:
            return "text"
        return "text+semantic" if self._encoder is not None else "text+semantic (encoder not loaded yet)"

    def warm(self) -> None:
        """Load the encoder in a background thread, so the first search does not wait for it."""
        if self.semantic:
            threading.Thread(target=self._load, name="whyrec-search-warmup", daemon=True).start()

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        query = " ".join(query.split())
        if not query:
            return []
        hits = [self._hit(i, 1.0, "text") for i, _ in self.rec.search(query, k=k)]
        if len(hits) >= k:
            return hits
        vector = self._encode(query)
        if vector is None:
            return hits
        taken = {h.item_id for h in hits}
        similarity = self.rec.item_vectors @ vector
        for idx in np.argsort(-similarity, kind="stable")[: k + len(taken)]:
            item_id = self.rec.items.id(int(idx))
            if item_id not in taken and len(hits) < k:
                hits.append(self._hit(item_id, float(similarity[idx]), "semantic"))
        return hits

    def _hit(self, item_id: str, score: float, match: MatchKind) -> SearchHit:
        catalog = self.rec.catalog
        return SearchHit(item_id, catalog.title(item_id), catalog.attrs(item_id), round(score, 4), match)

    def _encode(self, query: str) -> np.ndarray | None:
        encoder = self._load()
        if encoder is None:
            return None
        with self._lock:  # one query at a time through the model
            vector = np.asarray(encoder.encode([query]), dtype=np.float32)[0]
        if vector.shape[0] != self.rec.item_vectors.shape[1]:
            log.warning("search encoder width %d != item vectors %d; text search only",
                        vector.shape[0], self.rec.item_vectors.shape[1])  # fmt: skip
            self._failed = True
            return None
        return vector

    def _load(self) -> TextEncoder | None:
        if not self.semantic or self._failed:
            return None
        with self._lock:
            if self._encoder is None and not self._failed:
                try:
                    # queries skip the on-disk cache: it is for item texts, and rewriting it per
                    # query would cost more than encoding one short text
                    self._encoder = make_encoder(self.encoder_name, progress=False, cached=False)
                except Exception as exc:  # any failure leaves substring search working
                    log.warning("search falls back to text matching: cannot load encoder %r: %s",
                                self.encoder_name, exc)  # fmt: skip
                    self._failed = True
            return self._encoder
