"""The public face of a trained model: external IDs in, ranked items (with titles) out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whyrec.data.dataset import ItemCatalog
from whyrec.data.vocab import Vocabulary
from whyrec.errors import RunError, UnknownIdError, WhyrecError
from whyrec.metrics import top_indices
from whyrec.models.base import InnerProductScores, ScoreMatrix, Scorer, Scores
from whyrec.training.controls import ControlledList, ItemFacts, MovedOut, MoveReason, RankingControls, rerank
from whyrec.training.registry import model_class
from whyrec.training.retrieval import RetrievalConfig, Retriever, UserVectors, inner_product_parts

#: the layout of a run directory; a run of another format is refused with a clear message
RUN_FORMAT = 2

#: items added to a trained run (``POST /api/items``): their catalogue records and LM vectors
ADDED_ITEMS, ADDED_VECTORS = "added_items.json", "added_item_vectors.npy"

#: how strongly "not interested" pushes down an item's LM-space neighbours (in z-score units)
AVOID_STRENGTH = 2.0


def rank_of(scores: np.ndarray, item_idx: int) -> int:
    """1-based position of ``item_idx`` in the ranking the user sees: by score, ties by the lower
    item index, the order :func:`whyrec.metrics.top_indices` gives (offline metrics average over
    tie-breaks instead, see :mod:`whyrec.metrics.ranking`)."""
    own = scores[item_idx]
    return int((scores > own).sum() + (scores[:item_idx] == own).sum()) + 1


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    title: str
    score: float
    rank: int  # 1-based
    plain_rank: int | None = None  # under ranking controls: the rank without them
    moved_by: MoveReason | None = None  # the control that chose it over a more relevant item


class Recommender:
    """A trained model with its item vocabulary, catalogue, LM vectors and users' histories."""

    def __init__(
        self,
        model: Scorer,
        items: Vocabulary,
        catalog: ItemCatalog,
        item_vectors: np.ndarray,
        histories: dict[str, list[str]],
        info: dict | None = None,
    ) -> None:
        self.model = model
        self.items = items
        self.catalog = catalog
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.histories = histories
        self.info = dict(info or {})
        self.retrieval_config = RetrievalConfig()
        self._retrieval: tuple[Retriever, UserVectors] | None = None
        self._retrieval_decided = False
        self.added: list[dict] = []  # catalogue records of the items added after training
        self.added_vectors = np.zeros((0, self.item_vectors.shape[1]), np.float32)
        self._facts: ItemFacts | None = None

    # -- ids ------------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    def history(self, user_id: str) -> list[str]:
        try:
            return list(self.histories[str(user_id)])
        except KeyError:
            raise UnknownIdError(f"unknown user id {user_id!r}") from None

    def has_user(self, user_id: str) -> bool:
        return str(user_id) in self.histories

    def item_index(self, item_id: str) -> int:
        return self.items.index(item_id)

    def to_indices(self, item_ids: Iterable[str]) -> np.ndarray:
        """Known items only: ids the run has never seen are skipped (a live event may name one)."""
        known = [self.items.get(i) for i in item_ids]
        return np.array([i for i in known if i is not None], dtype=np.int64)

    # -- scoring --------------------------------------------------------------------------------
    def score_indices(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.model.score(list(histories)), dtype=np.float64)

    def score_lazily(self, histories: Sequence[np.ndarray]) -> Scores:
        """The same scores as :meth:`score_indices`, read per history or per item: a model that
        can fuse a few items' scores without all of them (``score_parts``) defers that work, and
        an inner-product model served through an index (a large catalogue) scores the few items
        asked for with its user vectors, and a whole row exactly, as the exact ranking does."""
        histories = list(histories)
        parts = getattr(self.model, "score_parts", None)
        if parts is not None:
            return parts(histories)  # type: ignore[no-any-return]
        retrieval = self.retriever()
        if retrieval is not None and len(retrieval[0].items) == self.n_items:  # no items added since
            retriever, user_vectors = retrieval
            users = user_vectors(histories)
            return InnerProductScores(users, retriever.items, lambda i: self.score_indices([histories[i]])[0])
        return ScoreMatrix(self.score_indices(histories))

    def adjust(
        self,
        scores: np.ndarray,
        history: Sequence[str],
        *,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        exclude_seen: bool = True,
    ) -> np.ndarray:
        """Turn raw model scores into what the user sees: seen and excluded items at -inf, items
        near an ``avoid`` item (in LM space) pushed down."""
        scores = np.array(scores, dtype=np.float64)
        avoid_idx = self.to_indices(avoid)
        if len(avoid_idx):
            spread = scores.std() or 1.0
            nearness = (self.item_vectors @ self.item_vectors[avoid_idx].T).max(axis=1)
            scores -= AVOID_STRENGTH * spread * np.clip(nearness, 0.0, 1.0) ** 2
        if exclude_seen:
            seen = self.to_indices(history)
            if len(seen):
                scores[seen] = -np.inf
        drop = self.to_indices([*exclude, *avoid])
        if len(drop):
            scores[drop] = -np.inf
        return scores

    def ranked_scores(
        self,
        history: Sequence[str],
        *,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        exclude_seen: bool = True,
    ) -> np.ndarray:
        """Final scores for one history (see :meth:`adjust`)."""
        raw = self.score_indices([self.to_indices(history)])[0]
        return self.adjust(raw, history, exclude=exclude, avoid=avoid, exclude_seen=exclude_seen)

    def recommend(
        self,
        user_id: str | None = None,
        *,
        history: Sequence[str] | None = None,
        k: int = 10,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        exclude_seen: bool = True,
        exact: bool = False,
        controls: RankingControls | None = None,
    ) -> list[Recommendation]:
        """Top-``k`` for a known user, or for any history of item ids (a new user).

        A large catalogue under an inner-product model is served through a retrieval index (see
        :meth:`retriever`) unless ``exact``; ``avoid`` and ranking ``controls`` (see
        :meth:`recommend_controlled`) always score every item."""
        if controls is not None and not controls.plain:
            return self.recommend_controlled(
                user_id, history=history, k=k, exclude=exclude, avoid=avoid, exclude_seen=exclude_seen,
                controls=controls,
            )[0]  # fmt: skip
        if history is None:
            if user_id is None:
                raise ValueError("give a user_id or a history")
            history = self.history(user_id)
        retrieval = None if exact or list(avoid) else self.retriever()
        if retrieval is not None:
            return self._retrieved(retrieval, history, k, exclude, exclude_seen)
        scores = self.ranked_scores(history, exclude=exclude, avoid=avoid, exclude_seen=exclude_seen)
        return self.top_k(scores, k)

    def recommend_controlled(
        self,
        user_id: str | None = None,
        *,
        history: Sequence[str] | None = None,
        k: int = 10,
        exclude: Iterable[str] = (),
        avoid: Iterable[str] = (),
        exclude_seen: bool = True,
        controls: RankingControls,
    ) -> tuple[list[Recommendation], tuple[MovedOut, ...]]:
        """Top-``k`` under ranking CONTROLS (blocklists, diversity, calibration, a cap per
        attribute; see :mod:`whyrec.training.controls`), and the items of the plain top-``k`` that
        the controls left out, each with the reason."""
        if history is None:
            if user_id is None:
                raise ValueError("give a user_id or a history")
            history = self.history(user_id)
        scores = self.ranked_scores(history, exclude=exclude, avoid=avoid, exclude_seen=exclude_seen)
        ranking = self.rerank(scores, k, controls, history)
        return self.placed(ranking), ranking.moved_out

    def rerank(
        self, scores: np.ndarray, k: int, controls: RankingControls, history: Sequence[str] = ()
    ) -> ControlledList:
        """The top K of final SCORES under CONTROLS, calibrated to HISTORY's attribute mix."""
        return rerank(scores, k, controls, self.item_facts(), self.to_indices(history))

    def placed(self, ranking: ControlledList) -> list[Recommendation]:
        title = self.catalog.title
        return [
            Recommendation(p.item_id, title(p.item_id), p.score, p.rank, p.plain_rank, p.moved_by)
            for p in ranking.items
        ]

    def item_facts(self) -> ItemFacts:
        """Ids, attributes and LM vectors of the catalogue, as the ranking controls read them."""
        if self._facts is None or len(self._facts) != self.n_items:
            ids = list(self.items.ids)
            self._facts = ItemFacts(ids, [self.catalog.attrs(i) for i in ids], self.item_vectors)
        return self._facts

    def top_k(self, scores: np.ndarray, k: int) -> list[Recommendation]:
        """The ``k`` best of final scores (``-inf`` = not recommendable), ties by item index."""
        k = max(0, min(int(k), int(np.isfinite(scores).sum())))
        top = top_indices(scores[None, :], k)[0]  # ties by index, as rank_of and evaluation order them
        return [
            Recommendation(self.items.id(i), self.catalog.title(self.items.id(i)), float(scores[i]), rank + 1)
            for rank, i in enumerate(top)
        ]

    # -- retrieval ------------------------------------------------------------------------------
    def use_retrieval(self, config: RetrievalConfig | None) -> None:
        """Serve top-K through an index chosen by CONFIG (None: always score every item)."""
        self.retrieval_config = config or RetrievalConfig(min_items=2**62)
        self._retrieval, self._retrieval_decided = None, False

    def retriever(self) -> tuple[Retriever, UserVectors] | None:
        """The index and the user-vector function of an inner-product model whose catalogue has
        at least ``retrieval_config.min_items`` items (built on first use), else None."""
        if not self._retrieval_decided:
            self._retrieval_decided = True
            parts = (
                inner_product_parts(self.model) if self.n_items >= self.retrieval_config.min_items else None
            )
            if parts is not None:
                users, item_matrix = parts
                self._retrieval = Retriever(item_matrix, self.retrieval_config), users
        return self._retrieval

    def _retrieved(
        self,
        retrieval: tuple[Retriever, UserVectors],
        history: Sequence[str],
        k: int,
        exclude: Iterable[str],
        exclude_seen: bool,
    ) -> list[Recommendation]:
        retriever, user_vectors = retrieval
        indices = self.to_indices(history)
        blocked = np.unique(
            np.concatenate([indices if exclude_seen else indices[:0], self.to_indices(exclude)])
        )
        user = user_vectors([indices])[0]
        found, scores = retriever.top_k(user, max(0, int(k)), blocked)
        return [
            Recommendation(self.items.id(i), self.catalog.title(self.items.id(i)), float(s), rank + 1)
            for rank, (i, s) in enumerate(zip(found.tolist(), scores.tolist(), strict=True))
        ]

    def search(self, query: str, k: int = 10) -> list[tuple[str, str]]:
        """Items whose title contains every word of the query, most popular-in-run first."""
        words = query.lower().split()
        if not words:
            return []
        hits = [i for i in self.items.ids if all(w in self.catalog.text(i).lower() for w in words)]
        return [(i, self.catalog.title(i)) for i in hits[:k]]

    # -- new items ------------------------------------------------------------------------------
    def add_items(self, records: list[dict], vectors: np.ndarray) -> None:
        """Rank, search and explain these items from now on, without retraining: each model scores
        them as it scores items unseen in training (from their LM VECTORS). RECORDS are catalogue
        records (``item_id``, ``title``, ``attributes``, ``description``); all or nothing."""
        add = getattr(self.model, "add_items", None)
        if add is None:
            raise WhyrecError(f"the {self.model.name} model cannot take new items")
        ids = [str(r["item_id"]) for r in records]
        known = [i for i in ids if i in self.items]
        if known or len(set(ids)) != len(ids):
            raise WhyrecError(f"item id {(known or ids)[0]!r} is already in the catalogue or repeated")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.item_vectors.shape[1]):
            width = self.item_vectors.shape[1]
            raise WhyrecError(f"new item vectors are {vectors.shape}, not ({len(ids)}, {width})")
        add(vectors)
        self.items = Vocabulary([*self.items.ids, *ids])
        new = ItemCatalog.from_records(list(records))
        # in place: whoever holds the catalogue sees the new items
        self.catalog.titles.update(new.titles)
        self.catalog.attributes.update(new.attributes)
        self.catalog.descriptions.update(new.descriptions)
        self.item_vectors = np.concatenate([self.item_vectors, vectors])
        self.added = [*self.added, *records]
        self.added_vectors = np.concatenate([self.added_vectors, vectors])

    def save_added(self, run_dir: Path) -> None:
        """Write the added items into RUN_DIR (each file replaced whole, never half-written)."""
        run_dir = Path(run_dir)
        vectors, records = run_dir / ADDED_VECTORS, run_dir / ADDED_ITEMS
        np.save(run_dir / "added.tmp.npy", self.added_vectors)
        (run_dir / "added.tmp.json").write_text(json.dumps(self.added))
        (run_dir / "added.tmp.npy").replace(vectors)
        (run_dir / "added.tmp.json").replace(records)  # written last: it says how many rows count

    def _load_added(self, run_dir: Path) -> None:
        if not (run_dir / ADDED_ITEMS).exists():
            return
        records = json.loads((run_dir / ADDED_ITEMS).read_text())
        vectors = np.load(run_dir / ADDED_VECTORS)[: len(records)]
        if records:
            self.add_items(records, vectors)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        (run_dir / "model").mkdir(parents=True, exist_ok=True)
        self.model.save(run_dir / "model")
        np.save(run_dir / "item_vectors.npy", self.item_vectors)
        (run_dir / "items.json").write_text(json.dumps(list(self.items.ids)))
        (run_dir / "catalog.json").write_text(json.dumps(self.catalog.to_records(list(self.items.ids))))
        (run_dir / "histories.json").write_text(json.dumps(self.histories))
        saved_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        info = {**self.info, "format": RUN_FORMAT, "model": self.model.name, "saved_at": saved_at}
        (run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str))

    @classmethod
    def load(cls, run_dir: str | Path) -> Recommender:
        run_dir = Path(run_dir)
        if not (run_dir / "run.json").exists():
            raise RunError(f"not a whyrec run directory (no run.json): {run_dir}")
        try:
            info = json.loads((run_dir / "run.json").read_text())
            if info.get("format") != RUN_FORMAT:
                raise RunError(
                    f"run {run_dir} was written by another version of whyrec (format "
                    f"{info.get('format', 1)}, this one reads {RUN_FORMAT}); train it again"
                )
            vectors = np.load(run_dir / "item_vectors.npy")
            items = Vocabulary(json.loads((run_dir / "items.json").read_text()))
            catalog = ItemCatalog.from_records(json.loads((run_dir / "catalog.json").read_text()))
            histories = json.loads((run_dir / "histories.json").read_text())
            model = model_class(info["model"]).load(run_dir / "model", vectors)
        except (OSError, KeyError, ValueError) as exc:
            raise RunError(f"run directory {run_dir} is incomplete or damaged: {exc}") from None
        recommender = cls(model, items, catalog, vectors, histories, info)
        try:
            recommender._load_added(run_dir)
        except (OSError, KeyError, ValueError, WhyrecError) as exc:
            raise RunError(f"the items added to run {run_dir} cannot be read: {exc}") from None
        return recommender

    @staticmethod
    def saved_model(run_dir: str | Path) -> str | None:
        """The model name of the run in RUN_DIR if this version can load it, else None."""
        try:
            info = json.loads((Path(run_dir) / "run.json").read_text())
        except (OSError, ValueError):
            return None
        return str(info.get("model")) if info.get("format") == RUN_FORMAT else None
