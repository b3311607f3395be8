"""A hybrid that blends sequence, collaborative and content scores, weights tuned on validation."""

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
from whyrec.models.sequence import SASRec
from whyrec.models.simple import ContentModel, ItemKNN


@dataclass(frozen=True)
class HybridConfig:
    # candidate weights of the CF and content parts; the sequence part has weight 1
    cf_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
    content_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
    # how each part's scores are put on one scale before they are added:
    # "rank": -log(1 + rank among the user's unseen items), robust to each part's score shape;
    # "zscore": per-user standardisation of the raw scores
    normalise: Literal["rank", "zscore"] = "rank"

    def __post_init__(self) -> None:
        if self.normalise not in ("rank", "zscore"):
            raise ValueError(f"normalise must be 'rank' or 'zscore', not {self.normalise!r}")


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
        sequence: Scorer | None = None,
        cf: ItemKNN | None = None,
        content: ContentModel | None = None,
    ) -> None:
        self.config = config or HybridConfig()
        self.sequence: Scorer = sequence or SASRec()
        self.cf = cf or ItemKNN()
        self.content = content or ContentModel()
        self.weights = HybridWeights()
        self.n_items = 0
        self.fit_info = FitInfo()

    def parts(self) -> dict[str, Scorer]:
        return {"sequence": self.sequence, "cf": self.cf, "content": self.content}

    def fit(self, data: FitData) -> Self:
        start = time.perf_counter()
        for part in self.parts().values():
            if part.n_items != data.split.n_items:
                part.fit(data)
        self.n_items = data.split.n_items
        histories, targets = data.split.valid()
        z = {name: self._normalise(part.score(histories), histories) for name, part in self.parts().items()}
        best, grid = (-1.0, (0.0, 0.0)), []
        for cf, content in itertools.product(self.config.cf_weights, self.config.content_weights):
            blended = z["sequence"] + cf * z["cf"] + content * z["content"]
            ndcg = metrics_from_ranks(target_ranks(mask_seen(blended, histories), targets))["NDCG@10"]
            grid.append({"cf": cf, "content": content, "valid_NDCG@10": round(ndcg, 5)})
            if ndcg > best[0]:
                best = (ndcg, (cf, content))
        self.weights = HybridWeights(1.0, best[1][0], best[1][1], grid)
        sequence_info = self.sequence.fit_info
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start + sequence_info.train_seconds,
            best_epoch=sequence_info.best_epoch,
            seconds_to_best=sequence_info.seconds_to_best,
            best_valid_ndcg10=best[0],
            extra={"weights": {"sequence": 1.0, "cf": best[1][0], "content": best[1][1]}},
        )
        return self

    def _normalise(self, scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        if self.config.normalise == "rank":
            return _rank_scores(scores, histories)
        return _standardise(scores)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        w = self.weights
        out = w.sequence * self._normalise(self.sequence.score(histories), histories)
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
            "sequence_model": self.sequence.name,
        }
        (directory / "hybrid_config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        from whyrec.models.registry import model_class

        meta = json.loads((directory / "hybrid_config.json").read_text())
        saved = meta["config"]
        config = HybridConfig(
            cf_weights=tuple(saved["cf_weights"]),
            content_weights=tuple(saved["content_weights"]),
            normalise=saved.get("normalise", "zscore"),
        )
        model = cls(
            config,
            sequence=model_class(meta["sequence_model"]).load(directory / "hybrid_sequence", item_vectors),
            cf=ItemKNN.load(directory / "hybrid_cf", item_vectors),
            content=ContentModel.load(directory / "hybrid_content", item_vectors),
        )
        model.weights = HybridWeights(**meta["weights"])
        model.n_items = meta["n_items"]
        return model
