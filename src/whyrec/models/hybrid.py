"""A hybrid that blends sequence, collaborative and content scores, weights tuned on validation.

Its sequence part is a small ensemble: SASRec and GRU4Rec, each trained from several seeds, their
rank-normalised scores averaged. Single networks on datasets of this size differ by about a
standard error of NDCG@10 from seed to seed; the average is steadier and better than any one."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Self

import numpy as np

from whyrec.eval.metrics import mask_seen, metrics_from_ranks, target_ranks
from whyrec.models.base import FitData, FitInfo, Scorer
from whyrec.models.sequence import _SequenceModel
from whyrec.models.simple import ContentModel, ItemKNN

SEQUENCE_MODELS = {"sasrec", "bert4rec", "gru4rec"}


@dataclass(frozen=True)
class HybridConfig:
    # candidate weights of the CF and content parts; the sequence part has weight 1
    cf_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
    content_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
    # how each part's scores are put on one scale before they are added:
    # "rank": -log(1 + rank among the user's unseen items), robust to each part's score shape;
    # "zscore": per-user standardisation of the raw scores
    normalise: Literal["rank", "zscore"] = "rank"
    # the sequence part: the mean of these models' normalised scores, each trained from seeds
    # 0..seeds-1 (chosen on ml-100k validation: bench/results/ensemble-ml-100k.json)
    sequence_models: tuple[str, ...] = ("sasrec", "gru4rec")
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.normalise not in ("rank", "zscore"):
            raise ValueError(f"normalise must be 'rank' or 'zscore', not {self.normalise!r}")
        unknown = set(self.sequence_models) - SEQUENCE_MODELS
        if unknown or not self.sequence_models:
            raise ValueError(
                f"sequence_models must be some of {sorted(SEQUENCE_MODELS)}, not {self.sequence_models}"
            )
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, not {self.seeds}")


@dataclass
class HybridWeights:
    sequence: float = 1.0
    cf: float = 0.0
    content: float = 0.0
    grid: list[dict[str, float]] = field(default_factory=list)  # validation NDCG@10 per candidate


def _rank_scores(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """-log(1 + rank) of each item among the user's unseen items (seen items rank last)."""
    masked = mask_seen(scores.astype(np.float64, copy=True), histories)
    order = np.argsort(-masked, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return -np.log1p(ranks).astype(np.float32)


def _standardise(scores: np.ndarray) -> np.ndarray:
    """Per-user z-scores, so parts on different scales can be added."""
    scores = scores.astype(np.float32, copy=False)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-6)


class Hybrid:
    """score = 1·n(sequence) + β·n(item-kNN) + α·n(content), with n a per-user normalisation
    (by default rank fusion: n = -log(1 + the item's rank among the user's unseen items)).

    The content part is the cosine between the user's LM profile and the item's LM vector; β and
    α are picked by validation NDCG@10. Parts already fitted (for example a SASRec trained in the
    same ``evaluate`` run) are reused as they are.
    """

    name = "hybrid"

    def __init__(
        self,
        config: HybridConfig | None = None,
        sequence: Scorer | Sequence[Scorer] | None = None,
        cf: ItemKNN | None = None,
        content: ContentModel | None = None,
    ) -> None:
        """``sequence``: models to reuse as the seed-0 members (for example a SASRec trained in the
        same ``evaluate`` run); the other members are built from ``config``."""
        from whyrec.models.registry import model_class

        self.config = config or HybridConfig()
        given = [sequence] if isinstance(sequence, _SequenceModel) else list(sequence or [])  # type: ignore[arg-type]
        reuse: dict[str, _SequenceModel] = {m.name: m for m in given}  # type: ignore[misc]
        self.members: list[Scorer] = []
        for name in self.config.sequence_models:
            first = reuse.pop(name) if name in reuse else model_class(name)()
            self.members.append(first)
            self.members += [first.reseeded(seed) for seed in range(1, self.config.seeds)]
        if reuse:
            raise ValueError(
                f"sequence models {sorted(reuse)} are not in sequence_models {self.config.sequence_models}"
            )
        self.cf = cf or ItemKNN()
        self.content = content or ContentModel()
        self.weights = HybridWeights()
        self.n_items = 0
        self.fit_info = FitInfo()

    def parts(self) -> dict[str, Scorer]:
        members = {f"sequence_{i}": m for i, m in enumerate(self.members)}
        return {**members, "cf": self.cf, "content": self.content}

    def _sequence_scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        total = self._normalise(self.members[0].score(histories), histories)
        for member in self.members[1:]:
            total += self._normalise(member.score(histories), histories)
        return total / len(self.members)

    def fit(self, data: FitData) -> Self:
        start = time.perf_counter()
        trained = 0.0  # seconds spent by parts fitted elsewhere (reused), counted in the total
        for part in self.parts().values():
            if part.n_items != data.split.n_items:
                part.fit(data)
            else:
                trained += part.fit_info.train_seconds
        self.n_items = data.split.n_items
        histories, targets = data.split.valid()
        z = {
            "sequence": self._sequence_scores(histories),
            "cf": self._normalise(self.cf.score(histories), histories),
            "content": self._normalise(self.content.score(histories), histories),
        }
        best, grid = (-1.0, (0.0, 0.0)), []
        for cf, content in itertools.product(self.config.cf_weights, self.config.content_weights):
            blended = z["sequence"] + cf * z["cf"] + content * z["content"]
            ndcg = metrics_from_ranks(target_ranks(mask_seen(blended, histories), targets))["NDCG@10"]
            grid.append({"cf": cf, "content": content, "valid_NDCG@10": round(ndcg, 5)})
            if ndcg > best[0]:
                best = (ndcg, (cf, content))
        self.weights = HybridWeights(1.0, best[1][0], best[1][1], grid)
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start + trained,
            best_valid_ndcg10=best[0],
            extra={
                "weights": {"sequence": 1.0, "cf": best[1][0], "content": best[1][1]},
                "sequence_members": [
                    {"model": m.name, "seed": m.config.seed, "valid_NDCG@10": m.fit_info.best_valid_ndcg10}  # type: ignore[attr-defined]
                    for m in self.members
                ],
            },
        )
        return self

    def _normalise(self, scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        if self.config.normalise == "rank":
            return _rank_scores(scores, histories)
        return _standardise(scores)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        w = self.weights
        out = w.sequence * self._sequence_scores(histories)
        if w.cf:
            out += w.cf * self._normalise(self.cf.score(histories), histories)
        if w.content:
            out += w.content * self._normalise(self.content.score(histories), histories)
        return out

    def save(self, directory: Path) -> None:
        for name, part in self.parts().items():
            sub = directory / f"hybrid_{name}"
            sub.mkdir(parents=True, exist_ok=True)
            part.save(sub)
        meta = {
            "config": asdict(self.config),
            "weights": asdict(self.weights),
            "n_items": self.n_items,
            "sequence_members": [m.name for m in self.members],
        }
        (directory / "hybrid_config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        from whyrec.models.registry import model_class

        meta = json.loads((directory / "hybrid_config.json").read_text())
        saved = meta["config"]
        members = meta.get("sequence_members")
        paths = [directory / f"hybrid_sequence_{i}" for i in range(len(members or []))]
        if members is None:  # written before the sequence part became an ensemble: one member
            members, paths = [meta["sequence_model"]], [directory / "hybrid_sequence"]
        config = HybridConfig(
            cf_weights=tuple(saved["cf_weights"]),
            content_weights=tuple(saved["content_weights"]),
            normalise=saved.get("normalise", "zscore"),
            sequence_models=tuple(dict.fromkeys(members)),
            seeds=saved.get("seeds", 1),
        )
        model = cls.__new__(cls)
        model.config = config
        model.members = [
            model_class(name).load(path, item_vectors) for name, path in zip(members, paths, strict=True)
        ]
        model.cf = ItemKNN.load(directory / "hybrid_cf", item_vectors)
        model.content = ContentModel.load(directory / "hybrid_content", item_vectors)
        model.weights = HybridWeights(**meta["weights"])
        model.n_items = meta["n_items"]
        model.fit_info = FitInfo()
        return model
