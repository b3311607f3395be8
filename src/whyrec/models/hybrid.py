"""A hybrid that blends sequence, collaborative and content scores, weights tuned on validation.

Its sequence part is a small ensemble: SASRec and GRU4Rec, each trained from several seeds, their
rank-normalised scores averaged. Single networks on datasets of this size differ by about a
standard error of NDCG@10 from seed to seed; the average is steadier and better than any one."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch

from whyrec.errors import RunError
from whyrec.metrics import mask_seen, metrics_from_ranks, target_ranks
from whyrec.models.base import FitData, FitInfo, Scorer, reads_positions, visible
from whyrec.models.config import Config, setting
from whyrec.models.ease import EASE
from whyrec.models.gru4rec import GRU4Rec
from whyrec.models.sasrec import BERT4Rec, SASRec
from whyrec.models.sequence import SequenceModel
from whyrec.models.simple import ContentModel, ItemKNN

#: the sequence models a hybrid can hold, by name
MEMBERS: dict[str, type[SequenceModel]] = {"sasrec": SASRec, "bert4rec": BERT4Rec, "gru4rec": GRU4Rec}


@dataclass(frozen=True)
class HybridConfig(Config):
    # candidate weights of the CF and content parts; the sequence part has weight 1
    cf_weights: tuple[float, ...] = setting((0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0), ge=0)
    content_weights: tuple[float, ...] = setting((0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0), ge=0)
    # candidate weights of the EASE part (closed-form item-item); (0,) leaves it out, unfitted
    ease_weights: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.3, 0.5, 1.0), ge=0)
    # how each part's scores are put on one scale before they are added:
    # "rank": -log(1 + rank among the user's unseen items), robust to each part's score shape;
    # "zscore": per-user standardisation of the raw scores
    normalise: Literal["rank", "zscore"] = "rank"
    # the sequence part: the mean of these models' normalised scores, each trained from `seeds`
    # consecutive seeds (chosen on ml-100k validation: bench/results/ensemble-ml-100k.json)
    sequence_models: tuple[str, ...] = ("sasrec", "gru4rec")
    seeds: int = setting(3, ge=1)

    def check(self) -> None:
        unknown = set(self.sequence_models) - set(MEMBERS)
        if unknown or not self.sequence_models:
            raise ValueError(f"sequence_models must be some of {sorted(MEMBERS)}, not {self.sequence_models}")
        if not self.cf_weights or not self.content_weights or not self.ease_weights:
            raise ValueError("cf_weights, content_weights and ease_weights need at least one candidate each")

    @property
    def uses_ease(self) -> bool:
        return any(w > 0 for w in self.ease_weights)


@dataclass
class HybridWeights:
    sequence: float = 1.0
    cf: float = 0.0
    content: float = 0.0
    ease: float = 0.0
    grid: list[dict[str, float]] = field(default_factory=list)  # validation NDCG@10 per candidate


_POOLS: dict[int, ThreadPoolExecutor] = {}  # by number of threads


def run_parts(calls: Sequence[Callable[[], np.ndarray]]) -> list[np.ndarray]:
    """Each call's result. When torch runs on fewer threads than there are cores (a service
    runs one per request), the parts are scored side by side on the cores left over: their
    numerical work releases the GIL. Otherwise one after the other, as torch already uses every
    core inside each part."""
    workers = (os.cpu_count() or 1) // max(torch.get_num_threads(), 1)
    if workers < 2 or len(calls) < 2:
        return [call() for call in calls]
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whyrec-parts")
    return list(_POOLS[workers].map(lambda call: call(), calls))


def rank_scores(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """-log(1 + rank) of each item among the user's unseen items (seen items rank last)."""
    masked = mask_seen(scores.astype(np.float64, copy=True), histories)
    order = np.argsort(-masked, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return -np.log1p(ranks).astype(np.float32)


def rank_scores_at(scores: np.ndarray, histories: Sequence[np.ndarray], columns: Sequence[int]) -> np.ndarray:
    """``rank_scores(scores, histories)[:, columns]`` without ranking every item: a column's rank
    is the number of items scored above it, plus the items tied with it that come first in the
    stable order :func:`rank_scores` uses (lower index first). (B, len(COLUMNS)).

    Only the items scored at least as high as a row's lowest column can come before any of its
    columns. For top items those are few: they alone are compared. When they are many (a part
    that ranks the columns low), each row is sorted once and the columns found in it instead."""
    # a copy in a dtype that holds the scores exactly, so every comparison is rank_scores' own
    masked = mask_seen(np.array(scores, dtype=np.result_type(scores.dtype, np.float32)), histories)
    cols = np.asarray(columns, dtype=np.intp)
    out = np.empty((len(masked), len(cols)), dtype=np.float32)
    step = max(1, _COMPARE_BUDGET // max(masked.shape[1], 1))  # rows at a time: memory
    for lo in range(0, len(masked), step):
        block = masked[lo : lo + step]
        values = block[:, cols]  # (R, C)
        nan = np.isnan(values)
        lowest = np.where(nan, np.inf, values).min(axis=1, keepdims=True)
        above = block >= lowest
        if above.sum() * len(cols) > _SORT_ABOVE * block.size:
            counts = _ahead_by_sorting(block, cols, values)
        else:
            counts = _ahead_by_comparing(block, cols, values, above)
        for r, c in zip(*np.nonzero(nan), strict=True):  # NaN ranks after every number, as it sorts
            row = np.isnan(block[r])
            counts[r, c] = (~row).sum() + row[: cols[c]].sum()
        out[lo : lo + len(block)] = -np.log1p(counts)
    return out


_COMPARE_BUDGET = 2**24  # scores compared at a time by rank_scores_at (rows x items)
# rank_scores_at sorts the rows when it would otherwise compare more than this many candidates
# (items at or above a row's lowest column, times the columns) per score in the rows
_SORT_ABOVE = 1.0


def _ahead_by_comparing(
    block: np.ndarray, cols: np.ndarray, values: np.ndarray, above: np.ndarray
) -> np.ndarray:
    """How many items come before each column of each row (R, C): every candidate (ABOVE, the
    items scored at least as high as the row's lowest column) compared with every column."""
    rows, items = np.nonzero(above)  # row by row
    candidates, value = block[rows, items][:, None], values[rows]  # (K, 1), (K, C)
    ahead = (candidates > value) | ((candidates == value) & (items[:, None] < cols))
    running = np.concatenate([np.zeros((1, len(cols)), np.int64), np.cumsum(ahead, axis=0)])
    bounds = np.searchsorted(rows, np.arange(len(block) + 1))  # each row's run of candidates
    return running[bounds[1:]] - running[bounds[:-1]]


def _ahead_by_sorting(block: np.ndarray, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
    """:func:`_ahead_by_comparing` from each row sorted once: the items scored above a column
    are found by bisection, the tied ones before it counted where there are any."""
    ordered = np.sort(block, axis=1)  # ascending, NaN last
    numbers = block.shape[1] - np.isnan(ordered).sum(axis=1)
    counts = np.empty(values.shape, dtype=np.int64)
    for r, (row, n) in enumerate(zip(ordered, numbers, strict=True)):
        upto = np.searchsorted(row[:n], values[r], side="right")
        counts[r] = n - upto
        tied = upto - np.searchsorted(row[:n], values[r], side="left")
        for c in np.nonzero(tied > 1)[0]:  # the column and other items share its score
            counts[r, c] += np.count_nonzero(block[r, : cols[c]] == values[r, c])
    return counts


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-user z-scores, so parts on different scales can be added."""
    scores = scores.astype(np.float32, copy=False)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-6)


@dataclass
class PartScores:
    """Every part's raw scores for a batch of histories, fused on demand: in full for one history
    (or all), or for a few items under every history, which explaining needs (rank fusion of a
    few items costs a comparison per item, where fusing all of them sorts every part's scores)."""

    terms: list[tuple[float, np.ndarray]]  # (weight, raw (B, n_items) scores) per part
    seen: list[np.ndarray]  # the visible items of each history
    normalise: Literal["rank", "zscore"]

    def all(self) -> np.ndarray:
        return self._fused(range(len(self.seen)))

    def row(self, i: int) -> np.ndarray:
        return self._fused([i])[0].astype(np.float64)

    def at(self, columns: Sequence[int]) -> np.ndarray:
        columns = list(columns)

        def normalised(raw: np.ndarray) -> np.ndarray:
            if self.normalise == "rank":
                return rank_scores_at(raw, self.seen, columns)
            return standardise(raw)[:, columns]

        parts = run_parts([partial(normalised, raw) for _, raw in self.terms])
        out = np.zeros((len(self.seen), len(columns)), dtype=np.float64)
        for (weight, _), part in zip(self.terms, parts, strict=True):
            out += weight * part  # in the parts' order, as one thread would add them
        return out

    def _fused(self, rows: Iterable[int]) -> np.ndarray:
        rows = list(rows)
        seen = [self.seen[r] for r in rows]
        out: np.ndarray | None = None
        for weight, raw in self.terms:
            part = raw[rows]
            term = weight * (rank_scores(part, seen) if self.normalise == "rank" else standardise(part))
            out = term if out is None else out + term
        assert out is not None
        return out


def same_model(a: Scorer, b: Scorer) -> bool:
    """Same class and the same configs: one may stand in for the other."""
    return type(a) is type(b) and dict(a.configs()) == dict(b.configs())


class Hybrid:
    """score = 1·n(sequence) + β·n(item-kNN) + α·n(content) + γ·n(EASE), with n a per-user normalisation
    (by default rank fusion: n = -log(1 + the item's rank among the user's unseen items)).

    The content part is the cosine between the user's LM profile and the item's LM vector; β and
    α are picked by validation NDCG@10. :meth:`adopt` takes parts already fitted elsewhere (for
    example a SASRec trained in the same ``evaluate`` run) when they are the same model. γ too,
    unless ``ease_weights`` is (0,): then EASE is neither fitted nor scored.
    """

    name = "hybrid"
    reads_positions = (
        True  # its sequence members do, and item-kNN and EASE with a decay; content reads visible items
    )

    def __init__(
        self,
        config: HybridConfig | None = None,
        prototypes: Iterable[SequenceModel] = (),
        cf: ItemKNN | None = None,
        content: ContentModel | None = None,
        ease: EASE | None = None,
    ) -> None:
        """PROTOTYPES: an untrained model per name of ``config.sequence_models`` whose configs the
        members take (default: each class's defaults); a member set trains from ``seeds``
        consecutive seeds starting at its prototype's."""
        self.config = config or HybridConfig()
        given = {p.name: p for p in prototypes}
        extra = sorted(set(given) - set(self.config.sequence_models))
        if extra:
            raise ValueError(
                f"sequence models {extra} are not in sequence_models {self.config.sequence_models}"
            )
        self.members: list[SequenceModel] = []
        for name in self.config.sequence_models:
            first = given.get(name) or MEMBERS[name]()
            seed = first.training.seed
            self.members += [first.reseeded(seed + offset) for offset in range(self.config.seeds)]
        self.cf = cf or ItemKNN()
        self.content = content or ContentModel()
        self.ease = ease or EASE()
        self.weights = HybridWeights()
        self.n_items = 0
        self.fitted = False
        self.fit_info = FitInfo()

    def configs(self) -> dict[str, Config]:
        return {"config": self.config}

    def parts(self) -> dict[str, Scorer]:
        members: dict[str, Scorer] = {f"sequence_{i}": m for i, m in enumerate(self.members)}
        parts: dict[str, Scorer] = {**members, "cf": self.cf, "content": self.content}
        if self.config.uses_ease:
            parts["ease"] = self.ease
        return parts

    def adopt(self, models: Iterable[Scorer]) -> list[str]:
        """Use these fitted models in place of the same untrained parts; the names of the parts
        taken. A part is only replaced by a model of the same class and configs."""
        taken = []
        for model in models:
            if not model.fitted:
                continue
            if isinstance(model, SequenceModel):
                for i, member in enumerate(self.members):
                    if not member.fitted and same_model(member, model):
                        self.members[i] = model
                        taken.append(f"sequence_{i}")
                        break
            elif isinstance(model, ItemKNN) and not self.cf.fitted and same_model(self.cf, model):
                self.cf = model
                taken.append("cf")
            elif (
                isinstance(model, ContentModel)
                and not self.content.fitted
                and same_model(self.content, model)
            ):
                self.content = model
                taken.append("content")
            elif isinstance(model, EASE) and not self.ease.fitted and same_model(self.ease, model):
                self.ease = model
                taken.append("ease")
        return taken

    def sequence_scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The sequence part: the mean of the members' normalised scores."""
        seen = [visible(h) for h in histories]
        total = self._normalise(self.members[0].score(histories), seen)
        for member in self.members[1:]:
            total += self._normalise(member.score(histories), seen)
        return total / len(self.members)

    def fit(self, data: FitData) -> Self:
        start = time.perf_counter()
        elsewhere = 0.0  # seconds spent by parts fitted elsewhere (adopted), counted in the total
        for part in self.parts().values():
            if part.fitted and part.n_items == data.split.n_items:
                elsewhere += part.fit_info.train_seconds
            else:
                part.fit(data)
        self.n_items = data.split.n_items
        best = self.choose_weights(*data.split.valid())
        self.fitted = True
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start + elsewhere,
            best_valid_ndcg10=best,
            extra={
                "weights": {k: v for k, v in asdict(self.weights).items() if k != "grid"},
                "sequence_members": [
                    {"model": m.name, "seed": m.training.seed, "valid_NDCG@10": m.fit_info.best_valid_ndcg10}
                    for m in self.members
                ],
            },
        )
        return self

    def choose_weights(self, histories: Sequence[np.ndarray], targets: np.ndarray) -> float:
        """Pick β, α, γ from the config's candidates by NDCG@10 of these (validation) users, with
        every part fitted; sets :attr:`weights` (with the whole grid) and returns the best NDCG@10."""
        z = {
            "sequence": self.sequence_scores(histories),
            "cf": self._normalise(self.cf.score(histories), histories),
            "content": self._normalise(self.content.score(histories), histories),
        }
        ease_weights = self.config.ease_weights if self.config.uses_ease else (0.0,)
        if self.config.uses_ease:
            z["ease"] = self._normalise(self.ease.score(histories), histories)
        best, grid = (-1.0, (0.0, 0.0, 0.0)), []
        candidates = itertools.product(self.config.cf_weights, self.config.content_weights, ease_weights)
        for cf, content, ease in candidates:
            blended = z["sequence"] + cf * z["cf"] + content * z["content"]
            if ease:
                blended += ease * z["ease"]
            ndcg = metrics_from_ranks(target_ranks(mask_seen(blended, histories), targets))["NDCG@10"]
            grid.append({"cf": cf, "content": content, "ease": ease, "valid_NDCG@10": round(ndcg, 5)})
            if ndcg > best[0]:
                best = (ndcg, (cf, content, ease))
        self.weights = HybridWeights(1.0, *best[1], grid)
        return best[0]

    def _normalise(self, scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        if self.config.normalise == "rank":
            return rank_scores(scores, histories)
        return standardise(scores)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.score_parts(histories).all()

    def score_parts(self, histories: Sequence[np.ndarray]) -> PartScores:
        """Every part's raw scores, fused by :class:`PartScores` (:meth:`score` fuses them all)."""
        w = self.weights
        seen = [visible(h) for h in histories]  # the parts that ignore order never see a HIDDEN slot
        share = w.sequence / len(self.members)  # the sequence part is the members' mean
        calls: list[tuple[float, Callable[[], np.ndarray]]] = [
            (share, partial(member.score, histories)) for member in self.members
        ]
        for weight, part in ((w.cf, self.cf), (w.content, self.content), (w.ease, self.ease)):
            if weight:
                calls.append((weight, partial(part.score, histories if reads_positions(part) else seen)))
        scores = run_parts([call for _, call in calls])
        return PartScores([(weight, s) for (weight, _), s in zip(calls, scores, strict=True)], seen,
                          self.config.normalise)  # fmt: skip

    def add_items(self, item_vectors: np.ndarray) -> None:
        """Pass new items to every part (each ranks them as it ranks items unseen in training)."""
        for part in self.parts().values():
            part.add_items(item_vectors)  # type: ignore[attr-defined]
        self.n_items += len(item_vectors)

    def save(self, directory: Path) -> None:
        for name, part in self.parts().items():
            sub = directory / f"hybrid_{name}"
            sub.mkdir(parents=True, exist_ok=True)
            part.save(sub)
        meta: dict[str, Any] = {
            "config": self.config.to_dict(),
            "weights": asdict(self.weights),
            "n_items": self.n_items,
            "sequence_members": [m.name for m in self.members],
        }
        (directory / "hybrid_config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        meta = json.loads((directory / "hybrid_config.json").read_text())
        try:
            config = HybridConfig.from_dict(meta["config"])
            names = list(meta["sequence_members"])
        except (KeyError, ValueError) as error:
            raise RunError(
                f"{directory}: the hybrid's saved settings do not fit this version ({error})"
            ) from None
        model = cls(config)
        model.members = [
            MEMBERS[name].load(directory / f"hybrid_sequence_{i}", item_vectors)
            for i, name in enumerate(names)
        ]
        model.cf = ItemKNN.load(directory / "hybrid_cf", item_vectors)
        model.content = ContentModel.load(directory / "hybrid_content", item_vectors)
        if (directory / "hybrid_ease").is_dir():
            model.ease = EASE.load(directory / "hybrid_ease", item_vectors)
        model.weights = HybridWeights(**meta["weights"])
        model.n_items = meta["n_items"]
        model.fitted = True
        return model
