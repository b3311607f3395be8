"""Sequence models (SASRec, BERT4Rec-style masked training, GRU4Rec): training and scoring.

The nets in ``nets.py`` are pure tensor math; this module owns batching, the training loop,
early stopping on validation NDCG@10, seeds, saving and loading.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from whyrec.eval.metrics import metrics_from_ranks, rank_targets
from whyrec.models.base import FitData, FitInfo
from whyrec.models.nets import GRU4RecNet, ItemEmbedding, SASRecNet

SequenceNet = SASRecNet | GRU4RecNet


@dataclass(frozen=True)
class SASRecConfig:
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.2
    objective: Literal["causal", "masked"] = "causal"
    mask_prob: float = 0.2  # masked objective only
    use_text: bool = True  # add the projected LM vector to each item's ID embedding
    # share of items shown by text alone in a training step (cold start): 0.3 lifted held-out
    # items on Scientific and its validation NDCG@10 a little, but lowered ml-100k's, so 0
    id_dropout: float = 0.0
    # False: items never seen in training are left out of the training softmax, as items that
    # arrive after training would be, instead of being pushed down as negatives at every step.
    # On Scientific with 5% of the items held out of training (bench/cold_start.py): the same
    # validation NDCG@10, and those items' median rank about 430 instead of 3,700 of 4,385
    unseen_negatives: bool = False
    # k > 0: at inference an item never seen in training borrows the ID embeddings of the k seen
    # items with the closest text (0: it has the shared "unknown ID" vector and its text). k = 3
    # helped cold items into the top 10 on Scientific but not on ml-100k, so it is off by default
    cold_neighbours: int = 0
    batch_size: int = 128
    # lr, schedule and max_epochs were chosen on ml-100k validation NDCG@10 (bench/sweep.py;
    # bench/results/sweep-sasrec-ml-100k.json): as accurate as a constant 1e-3, in about half the time
    lr: float = 5e-3
    weight_decay: float = 0.0
    max_epochs: int = 15
    patience: int = 10  # epochs without a better validation NDCG@10
    window_stride: int | None = None  # None: non-overlapping windows of max_len cover each history
    # "cosine": the learning rate falls from lr to 0 along a half cosine over max_epochs
    schedule: Literal["constant", "cosine"] = "cosine"
    seed: int = 0

    def __post_init__(self) -> None:
        _check_schedule(self.schedule)
        if self.objective not in ("causal", "masked"):
            raise ValueError(f"objective must be 'causal' or 'masked', not {self.objective!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")


@dataclass(frozen=True)
class GRU4RecConfig:
    dim: int = 64
    n_layers: int = 1
    max_len: int = 50
    dropout: float = 0.2
    use_text: bool = True
    id_dropout: float = 0.0
    unseen_negatives: bool = False  # see SASRecConfig
    cold_neighbours: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 200
    patience: int = 10
    window_stride: int | None = None
    # "cosine": the learning rate falls from lr to 0 along a half cosine over max_epochs
    schedule: Literal["constant", "cosine"] = "constant"
    seed: int = 0
    objective: Literal["causal"] = "causal"

    def __post_init__(self) -> None:
        _check_schedule(self.schedule)


def _check_schedule(schedule: str) -> None:
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")


def _left_pad(history: np.ndarray, length: int) -> np.ndarray:
    """Last ``length`` items of a history (0-based indices) as 1-based ids, zero-padded on the left."""
    out = np.zeros(length, dtype=np.int64)
    tail = history[-length:] if length else history[:0]
    if len(tail):
        out[-len(tail) :] = tail + 1
    return out


class _SequenceModel:
    """Shared wrapper: owns the net, trains it with full-softmax cross-entropy, scores histories."""

    name = "sequence"
    config: SASRecConfig | GRU4RecConfig

    def __init__(self) -> None:
        self.n_items = 0
        self.net: SequenceNet | None = None
        self.fit_info = FitInfo()
        self._table: torch.Tensor | None = None  # cached item table for scoring
        # training with unseen_negatives=False: the softmax's columns (items seen in training)
        # and each item's column (-1 for the others)
        self._columns: torch.Tensor | None = None
        self._column_of: torch.Tensor | None = None

    def reseeded(self, seed: int) -> Self:
        """An untrained copy with the same settings and another seed (for ensembles)."""
        return type(self)(replace(self.config, seed=seed))  # type: ignore[call-arg]

    # -- building ---------------------------------------------------------------------------
    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        raise NotImplementedError

    def _make_net(self, item_vectors: np.ndarray, seen: np.ndarray) -> SequenceNet:
        n_items = len(item_vectors)
        seen_padded = np.zeros(n_items + 2, dtype=np.float32)
        seen_padded[1 : n_items + 1] = seen
        text = torch.from_numpy(np.asarray(item_vectors, np.float32)) if self.config.use_text else None
        items = ItemEmbedding(
            n_items,
            self.config.dim,
            text,
            torch.from_numpy(seen_padded),
            self.config.id_dropout,
            self.config.cold_neighbours,
        )
        return self._build_net(items)

    # -- training ---------------------------------------------------------------------------
    def _windows(self, histories: list[np.ndarray]) -> np.ndarray:
        """Training windows of max_len + 1 items (1-based, left-padded) covering every history."""
        size = self.config.max_len + 1
        stride = self.config.window_stride or self.config.max_len
        rows = []
        for history in histories:
            if len(history) < 2:
                continue
            end = len(history)
            while True:
                rows.append(_left_pad(history[max(0, end - size) : end], size))
                if end - size <= 0:
                    break
                end -= stride
        return np.stack(rows)

    def _loss(self, net: SequenceNet, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        table = net.items.table()
        logits_table = table[1 : self.n_items + 1]  # (n_items, D)
        if self.config.objective == "masked":
            x = batch[:, 1:].clone()
            real = x > 0
            chosen = (torch.rand(x.shape, generator=generator) < self.config.mask_prob) & real
            chosen[:, -1] |= real[:, -1]  # always train on the last position: it is what we predict
            targets = x[chosen] - 1
            x[chosen] = self.n_items + 1
            hidden = net(x, table)[chosen]
        else:
            x, y = batch[:, :-1], batch[:, 1:]
            keep = y > 0
            hidden = net(x, table)[keep]
            targets = y[keep] - 1
        if self._columns is not None and self._column_of is not None:  # only items seen in training
            logits_table, targets = logits_table[self._columns], self._column_of[targets]
        return nn.functional.cross_entropy(hidden @ logits_table.T, targets)

    def fit(self, data: FitData) -> Self:
        config = self.config
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        split = data.split
        self.n_items = split.n_items
        seen = (split.train_item_counts() > 0).astype(np.float32)
        net = self._make_net(data.item_vectors, seen)
        self._columns = self._column_of = None
        if not config.unseen_negatives and not seen.all():  # targets are always seen items
            columns = torch.from_numpy(np.flatnonzero(seen))
            column_of = torch.full((self.n_items,), -1, dtype=torch.long)
            column_of[columns] = torch.arange(len(columns))
            self._columns, self._column_of = columns, column_of
        self.net = net
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        windows = torch.from_numpy(self._windows(split.train()))
        steps = config.max_epochs * math.ceil(len(windows) / config.batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            (lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
            if config.schedule == "cosine"
            else (lambda step: 1.0),
        )
        valid_histories, valid_targets = split.valid()
        start = time.perf_counter()
        best, best_epoch, best_state, seconds_to_best = -1.0, -1, None, 0.0
        curve: list[float] = []  # validation NDCG@10 after each epoch
        curve_seconds: list[float] = []  # and the training seconds at that point
        bar = tqdm(
            range(config.max_epochs),
            desc=f"training {self.name}" + (f" (seed {config.seed})" if config.seed else ""),
            unit="epoch",
            disable=not data.progress,
            leave=False,
        )
        for epoch in bar:
            net.train()
            self._table = None
            order = torch.from_numpy(rng.permutation(len(windows)))
            total, batches = 0.0, 0
            for begin in range(0, len(order), config.batch_size):
                loss = self._loss(net, windows[order[begin : begin + config.batch_size]], generator)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                scheduler.step()
                total, batches = total + loss.item(), batches + 1
            ranks, _ = rank_targets(self, valid_histories, valid_targets)
            valid = metrics_from_ranks(ranks)["NDCG@10"]
            curve.append(round(valid, 5))
            curve_seconds.append(round(time.perf_counter() - start, 2))
            if data.log:
                data.log(f"{self.name}/train_loss", total / max(batches, 1), epoch)
                data.log(f"{self.name}/valid_NDCG@10", valid, epoch)
            bar.set_postfix(loss=f"{total / max(batches, 1):.3f}", valid_ndcg10=f"{valid:.4f}")
            if valid > best:
                best, best_epoch = valid, epoch
                best_state = copy.deepcopy(net.state_dict())
                seconds_to_best = time.perf_counter() - start
            elif epoch - best_epoch >= config.patience:
                break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._table = None
        self.fit_info = FitInfo(
            train_seconds=time.perf_counter() - start,
            best_epoch=best_epoch,
            seconds_to_best=seconds_to_best,
            best_valid_ndcg10=best,
            extra={
                "epochs_run": epoch + 1,
                "windows": len(windows),
                "valid_curve": curve,
                "valid_seconds": curve_seconds,
            },
        )
        return self

    # -- scoring ----------------------------------------------------------------------------
    def _inputs(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        length = self.config.max_len
        if self.config.objective == "masked":  # predict a [MASK] appended to the history
            rows = np.stack([_left_pad(np.asarray(h)[-(length - 1) :], length) for h in histories])
            rows = np.concatenate([rows[:, 1:], np.full((len(rows), 1), self.n_items + 1)], axis=1)
            return torch.from_numpy(rows)
        return torch.from_numpy(np.stack([_left_pad(np.asarray(h), length) for h in histories]))

    def user_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(B, D) the interest representation: the net's last hidden state."""
        net = self._require_net()
        with torch.inference_mode():
            return net(self._inputs(histories), self._item_table())[:, -1].numpy()

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if not len(histories):
            return np.zeros((0, self.n_items), dtype=np.float32)
        net = self._require_net()
        was_training = net.training
        net.eval()
        with torch.inference_mode():
            table = self._item_table()
            hidden = net(self._inputs(histories), table)[:, -1]  # (B, D)
            scores = (hidden @ table[1 : self.n_items + 1].T).numpy()
        net.train(was_training)
        return scores

    def _item_table(self) -> torch.Tensor:
        net = self._require_net()
        if net.training or self._table is None:
            with torch.no_grad():
                table = net.items.table()
            if net.training:
                return table
            self._table = table
        return self._table

    def _require_net(self) -> SequenceNet:
        if self.net is None:
            raise RuntimeError(f"{self.name} is not trained: call fit() or load() first")
        return self.net

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        net = self._require_net()
        torch.save(net.state_dict(), directory / f"{self.name}_weights.pt")
        meta: dict[str, Any] = {"config": asdict(self.config), "n_items": self.n_items}
        (directory / f"{self.name}_config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        meta = json.loads((directory / f"{cls.name}_config.json").read_text())
        model = cls(cls._config_type()(**meta["config"]))  # type: ignore[call-arg]
        model.n_items = meta["n_items"]
        state = torch.load(directory / f"{cls.name}_weights.pt", weights_only=True)
        net = model._make_net(item_vectors, np.ones(model.n_items, dtype=np.float32))
        # runs saved before the shared "unknown ID" vector existed gave cold items a zero ID part
        state.setdefault("items.unknown", torch.zeros(model.config.dim))
        net.load_state_dict(state)
        net.eval()
        model.net = net
        return model

    @classmethod
    def _config_type(cls) -> type:
        raise NotImplementedError


class SASRec(_SequenceModel):
    """Self-attentive sequential recommendation, full-softmax cross-entropy.

    ``SASRecConfig(objective="masked")`` trains it BERT4Rec-style: bidirectional attention,
    random items replaced by [MASK] and predicted (self-supervised).
    """

    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None) -> None:
        super().__init__()
        self.config = config or SASRecConfig()

    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        c = self.config
        assert isinstance(c, SASRecConfig)
        return SASRecNet(
            items, c.dim, c.max_len, c.n_layers, c.n_heads, c.dropout, causal=c.objective == "causal"
        )

    @classmethod
    def _config_type(cls) -> type:
        return SASRecConfig


class BERT4Rec(SASRec):
    """SASRec trained with the masked-item objective (a named shortcut for the CLI)."""

    name = "bert4rec"

    def __init__(self, config: SASRecConfig | None = None) -> None:
        # the masked objective learns more slowly: by default a constant 1e-3 for up to 200 epochs
        # (its settings were not re-tuned when SASRec's defaults changed)
        default = SASRecConfig(lr=1e-3, schedule="constant", max_epochs=200)
        super().__init__(replace(config or default, objective="masked"))


class GRU4Rec(_SequenceModel):
    """Session-based recurrent recommendation (GRU4Rec) with the same item representation."""

    name = "gru4rec"

    def __init__(self, config: GRU4RecConfig | None = None) -> None:
        super().__init__()
        self.config = config or GRU4RecConfig()

    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        c = self.config
        return GRU4RecNet(items, c.dim, c.n_layers, c.dropout)

    @classmethod
    def _config_type(cls) -> type:
        return GRU4RecConfig
