"""The shared machinery of the sequence models (SASRec, BERT4Rec, GRU4Rec): batching, the
training loop, early stopping on validation NDCG@10, seeds, saving and loading.

A sequence model is configured by three configs: its architecture (``SASRecConfig``,
``GRU4RecConfig``), how it is trained (:class:`TrainingConfig`) and how items are represented
(:class:`ItemEmbeddingConfig`). The nets in ``nets.py`` are pure tensor math.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from whyrec.errors import RunError, TrainingError, WhyrecError
from whyrec.metrics import NonFiniteScoreError, Ranks, metrics_from_ranks, rank_targets
from whyrec.models.base import FitData, FitInfo
from whyrec.models.config import (
    ITEM_ITEM_MAX_ITEMS,
    ArchitectureConfig,
    Config,
    ItemEmbeddingConfig,
    TrainingConfig,
)
from whyrec.models.ease import EASE
from whyrec.models.itemitem import search_sample
from whyrec.models.losses import (
    candidate_set,
    candidate_softmax,
    full_softmax,
    inclusion_log_prob,
    uniform_draws,
)
from whyrec.models.nets import GRU4RecNet, ItemEmbedding, ItemItem, SASRecNet
from whyrec.models.parallel import Processes, Step
from whyrec.models.teacher import Teacher
from whyrec.models.windows import left_pad, training_windows

SequenceNet = SASRecNet | GRU4RecNet

logger = logging.getLogger(__name__)


LONG_EPOCH = 500  # batches: an epoch this long shows its own progress bar


class SequenceModel:
    """Shared wrapper: owns the net, trains it (softmax cross-entropy, sampled on large catalogues),
    scores histories.

    Subclasses set ``name``, ``config_type`` (their architecture config), ``default_training`` and
    build their net in :meth:`_build_net`."""

    name = "sequence"
    reads_positions = True  # a HIDDEN slot is read as padding where the item stood
    config_type: ClassVar[type[ArchitectureConfig]] = ArchitectureConfig
    default_training: ClassVar[TrainingConfig] = TrainingConfig()

    def __init__(
        self,
        config: ArchitectureConfig | None = None,
        training: TrainingConfig | None = None,
        items: ItemEmbeddingConfig | None = None,
    ) -> None:
        config = config or self.config_type()
        if not isinstance(config, self.config_type):
            raise TypeError(f"{self.name} takes a {self.config_type.__name__}, not {type(config).__name__}")
        self.config = config
        self.training = training or self.default_training
        self.items = items or ItemEmbeddingConfig()
        if config.item_item and self.masked:
            raise ValueError("item_item works with the causal objective only")
        self.n_items = 0
        self.net: SequenceNet | None = None
        self.fit_info = FitInfo()
        self._table: torch.Tensor | None = None  # cached item table for scoring
        # training with unseen_negatives=False: the softmax's columns (items seen in training)
        # and each item's column (-1 for the others)
        self._columns: torch.Tensor | None = None
        self._column_of: torch.Tensor | None = None
        # the sampled softmax: each column's share of the training targets (None: full softmax)
        self._target_probs: torch.Tensor | None = None
        self._candidates = 0  # candidates scored over all steps (sampled softmax)
        self._teacher: Teacher | None = None  # soft targets while training with distill > 0

    @property
    def fitted(self) -> bool:
        return self.net is not None

    def configs(self) -> dict[str, Config]:
        """Everything that defines the model before training, by role."""
        return {"config": self.config, "training": self.training, "items": self.items}

    def reseeded(self, seed: int) -> Self:
        """An untrained copy with the same settings and another seed (for ensembles)."""
        return type(self)(self.config, replace(self.training, seed=seed), self.items)

    # -- building ---------------------------------------------------------------------------
    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        raise NotImplementedError

    def _make_net(self, item_vectors: np.ndarray, seen: np.ndarray) -> SequenceNet:
        n_items = len(item_vectors)
        seen_padded = np.zeros(n_items + 2, dtype=np.float32)
        seen_padded[1 : n_items + 1] = seen
        text = torch.from_numpy(np.asarray(item_vectors, np.float32)) if self.items.use_text else None
        items = ItemEmbedding(
            n_items,
            self.config.dim,
            text,
            torch.from_numpy(seen_padded),
            self.items.id_dropout,
            self.items.cold_neighbours,
            use_ids=self.items.use_ids,
            adaptor=self.items.text_adaptor,
            experts=self.items.experts,
        )
        net = self._build_net(items)
        if self.config.item_item:
            if n_items > ITEM_ITEM_MAX_ITEMS:
                raise WhyrecError(
                    f"item_item needs n_items² weights: {n_items:,} items is over the limit of "
                    f"{ITEM_ITEM_MAX_ITEMS:,}; train without it"
                )
            net.wide = ItemItem(n_items, self.config.dropout)
        return net

    # -- training ---------------------------------------------------------------------------
    def _loss(
        self, step: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, int]:
        """The summed loss of a batch of windows and how many targets it has."""
        if self.masked:
            x = batch[:, 1:].clone()
            real = x > 0
            chosen = (torch.rand(x.shape, generator=generator) < self._mask_prob()) & real
            chosen[:, -1] |= real[:, -1]  # always train on the last position: it is what we predict
            targets = x[chosen] - 1
            x[chosen] = self.n_items + 1
        else:
            x, y = batch[:, :-1], batch[:, 1:]
            chosen = y > 0
            targets = y[chosen] - 1
        device = self._device()
        x, chosen, targets = x.to(device), chosen.to(device), targets.to(device)
        if self._target_probs is not None:
            return self._sampled_loss(step, x, chosen, targets, generator)
        hidden, table, extra = step(x, chosen)  # extra: the wide part's (T, n_items) logits
        hidden, logits_table = hidden[chosen], table[1 : self.n_items + 1]  # (n_items, D)
        if self._columns is not None and self._column_of is not None:  # only items seen in training
            logits_table, targets = logits_table[self._columns], self._column_of[targets]
            extra = None if extra is None else extra[:, self._columns]
        if self._teacher is not None:
            logits = hidden @ logits_table.T
            logits = logits if extra is None else logits + extra
            return self._teacher.loss(logits, targets, x, chosen, self._columns), len(targets)
        return full_softmax(hidden, logits_table, targets, extra), len(targets)

    def _sampled_loss(
        self,
        step: nn.Module,
        x: torch.Tensor,
        chosen: torch.Tensor,
        targets: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, int]:
        """The sampled softmax of a batch (inputs X, TARGETS at the CHOSEN positions), building
        the item table's rows for the window's items and the candidates only: a step's cost does
        not grow with the catalogue."""
        assert self._target_probs is not None
        device = x.device
        columns = targets if self._column_of is None else self._column_of[targets]
        uniform = uniform_draws(len(self._target_probs), self.training.sampled_negatives, generator)
        candidates, column = candidate_set(columns, uniform.to(device))
        candidate_rows = (candidates if self._columns is None else self._columns[candidates]) + 1
        fixed = torch.tensor([0, self.n_items + 1], device=device)  # padding and the mask token
        rows = torch.unique(torch.cat([fixed, x.flatten(), candidate_rows]))
        hidden, table, _ = step(x, chosen, rows)
        log_q = inclusion_log_prob(
            self._target_probs[candidates], len(targets), len(uniform), len(self._target_probs)
        )
        candidate_table = table[torch.searchsorted(rows, candidate_rows)]
        self._candidates += len(candidates)
        return candidate_softmax(hidden[chosen], candidate_table, column, log_q), len(targets)

    @property
    def masked(self) -> bool:
        """Trained BERT4Rec-style: random items replaced by [MASK] and predicted."""
        return False

    def _mask_prob(self) -> float:
        raise NotImplementedError(f"{self.name} has no masked objective")

    def fit(self, data: FitData) -> Self:
        """Train on DATA, keeping the epoch with the best validation NDCG@10. Inside an initialised
        torch.distributed group every process trains the same model (``models/parallel.py``)."""
        config = self.training
        processes = Processes()
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)  # the order of the windows: the same in every process
        split = data.split
        self.n_items = split.n_items
        seen = (split.train_item_counts() > 0).astype(np.float32)
        if config.device == "cuda" and not torch.cuda.is_available():
            raise WhyrecError("device cuda: torch sees no CUDA GPU here")
        device = torch.device("cuda", torch.cuda.current_device()) if config.device == "cuda" else None
        net = self._make_net(data.item_vectors, seen).to(device)
        if processes.rank:  # the same initial weights, but each process its own dropout and draws
            torch.manual_seed(config.seed + 100_003 * processes.rank)
        generator = torch.Generator().manual_seed(config.seed + 100_003 * processes.rank)
        self._set_softmax_columns(split.train_item_counts(), device)
        self.net = net
        step = processes.wrap(Step(net))
        wide = None if net.wide is None else net.wide.weight
        groups: list[dict[str, Any]] = [{"params": [p for p in net.parameters() if p is not wide]}]
        if wide is not None:
            groups.append({"params": [wide], "weight_decay": self.config.item_item_decay})
        # fused: one kernel over each parameter, much cheaper on CPU over a million-row ID table
        optimiser = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        windows = torch.from_numpy(
            training_windows(split.train(), self.config.max_len, self.training.window_stride)
        )
        if len(windows) < processes.world:
            raise WhyrecError(
                f"{len(windows)} training windows cannot be shared by {processes.world} processes"
            )
        steps = config.max_epochs * math.ceil(len(windows) / config.batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            (lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
            if config.schedule == "cosine"
            else (lambda step: 1.0),
        )
        valid_histories, valid_targets = search_sample(split.valid(), config.valid_users, config.seed)
        mine = slice(processes.rank, None, processes.world)  # this process's validation users
        start = time.perf_counter()
        teacher_info = self._fit_teacher(data)  # its time counts as training time
        failure = ""  # why training stopped early on a non-finite loss or score
        best, best_epoch, best_state, seconds_to_best = -1.0, -1, None, 0.0
        curve: list[float] = []  # validation NDCG@10 after each epoch
        curve_seconds: list[float] = []  # and the training seconds at that point
        epoch_seconds: dict[str, list[float]] = {"train": [], "valid": []}  # each epoch's two parts
        bar = tqdm(
            range(config.max_epochs),
            desc=f"training {self.name}" + (f" (seed {config.seed})" if config.seed else ""),
            unit="epoch",
            disable=not data.progress or not processes.main,
            leave=False,
        )
        for epoch in bar:
            epoch_start = time.perf_counter()
            net.train()
            self._table = None
            order = torch.from_numpy(rng.permutation(len(windows)))
            total, batches = 0.0, 0
            starts: Iterable[int] = range(0, len(order), config.batch_size)
            long_epoch = math.ceil(len(order) / config.batch_size) >= LONG_EPOCH
            if long_epoch and data.progress and processes.main:  # a bar of its own
                starts = tqdm(starts, desc=f"epoch {epoch + 1}", unit="batch", leave=False)
            for begin in starts:
                batch = order[begin : begin + config.batch_size]
                if len(batch) < processes.world:  # a last batch too small to share: every process skips it
                    continue
                loss, n_targets = self._loss(step, windows[processes.shard(batch)], generator)
                # the mean over the global batch's targets (DistributedDataParallel averages gradients)
                loss = loss * (processes.world / processes.total(n_targets, device))
                # a failed epoch: its state is never kept, and every process stops together
                if processes.total(0.0 if torch.isfinite(loss) else 1.0, device) > 0:
                    failure = f"the training loss became non-finite in epoch {epoch + 1}"
                    break
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                scheduler.step()
                total, batches = total + loss.item(), batches + 1
            valid = math.nan
            valid_start = time.perf_counter()
            epoch_seconds["train"].append(round(valid_start - epoch_start, 2))
            if not failure:
                try:
                    ranks, _ = rank_targets(self, valid_histories[mine], valid_targets[mine])
                except NonFiniteScoreError:
                    failure = f"the validation scores became non-finite in epoch {epoch + 1}"
                if processes.total(1.0 if failure else 0.0, device) > 0:
                    failure = failure or f"the validation scores became non-finite in epoch {epoch + 1}"
                else:
                    everyone = Ranks(processes.gather(ranks.higher), processes.gather(ranks.tied))
                    valid = metrics_from_ranks(everyone)["NDCG@10"]  # the same in every process
            if failure:
                if best_state is None:
                    raise TrainingError(f"{self.name}: {failure}; try a lower lr (now {config.lr})")
                logger.warning("%s: %s; keeping epoch %d", self.name, failure, best_epoch + 1)
                break
            epoch_seconds["valid"].append(round(time.perf_counter() - valid_start, 2))
            curve.append(round(valid, 5))
            curve_seconds.append(round(time.perf_counter() - start, 2))
            if data.log and processes.main:
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
        self._teacher = None  # training only: the network scores alone
        if best_state is not None:
            net.load_state_dict(best_state)
        net.cpu().eval()
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
                "epoch_train_seconds": epoch_seconds["train"],
                "epoch_valid_seconds": epoch_seconds["valid"],
                "valid_users": len(valid_targets),
                **self._loss_info(processes, batches * (epoch + 1)),
                **teacher_info,
            },
        )
        return self

    def _fit_teacher(self, data: FitData) -> dict[str, Any]:
        """With ``distill`` > 0, fit the EASE teacher on the training split (λ and decay chosen
        on validation) and return what it was."""
        self._teacher = None
        share = self.training.distill
        if share == 0:
            return {}
        if self.masked:
            raise WhyrecError(f"{self.name}: distill works with the causal objective only")
        if self._target_probs is not None:
            raise WhyrecError(
                f"{self.name}: distill needs the full softmax ({self.n_items:,} items is above "
                f"sampled_softmax_above={self.training.sampled_softmax_above:,})"
            )
        teacher = EASE().fit(FitData(data.split, data.item_vectors, progress=False))
        sharpness = self.training.distill_sharpness
        self._teacher = Teacher(torch.from_numpy(teacher.weights), teacher.decay, share, sharpness)
        logger.info("%s: EASE teacher λ=%g, decay %g", self.name, teacher.l2, teacher.decay)
        info = teacher.fit_info
        return {
            "teacher": {
                "model": "ease",
                "l2": teacher.l2,
                "decay": teacher.decay,
                "valid_NDCG@10": info.best_valid_ndcg10,
                "fit_seconds": round(info.train_seconds, 2),
            }
        }

    def _set_softmax_columns(self, counts: np.ndarray, device: torch.device | None) -> None:
        """The training softmax's columns (with unseen_negatives=False only the items seen in
        training, COUNTS > 0), and with more columns than ``sampled_softmax_above`` each column's
        share of the training interactions, which the sampled softmax needs."""
        self._columns = self._column_of = self._target_probs = None
        self._candidates = 0
        if not self.items.unseen_negatives and not (counts > 0).all():  # targets are always seen items
            columns = torch.from_numpy(np.flatnonzero(counts > 0))
            column_of = torch.full((self.n_items,), -1, dtype=torch.long)
            column_of[columns] = torch.arange(len(columns))
            self._columns, self._column_of = columns.to(device), column_of.to(device)
            counts = counts[columns.numpy()]
        if len(counts) > self.training.sampled_softmax_above:
            if self.config.item_item:
                raise WhyrecError("item_item needs the full softmax: raise sampled_softmax_above")
            self._target_probs = torch.from_numpy(counts / max(counts.sum(), 1)).float().to(device)

    def _loss_info(self, processes: Processes, steps: int) -> dict[str, Any]:
        info: dict[str, Any] = {"loss": "softmax" if self._target_probs is None else "sampled_softmax"}
        if self._target_probs is not None:
            info["mean_candidates"] = round(self._candidates / max(steps, 1), 1)
            info["softmax_columns"] = len(self._target_probs)
        if processes.active:
            info["processes"] = processes.world
        return info

    def use_cold_neighbours(self, k: int) -> None:
        """Score from now on as if trained with ``cold_neighbours=k`` (it acts at inference only)."""
        net = self._require_net()
        self.items = replace(self.items, cold_neighbours=k)
        net.items.cold_neighbours = k
        self._table = None

    def add_items(self, item_vectors: np.ndarray) -> None:
        """Rank new items from now on, from their LM vectors alone (as items unseen in training)."""
        net = self._require_net()
        net.items.extend(torch.from_numpy(np.asarray(item_vectors, np.float32)))
        self.n_items += len(item_vectors)
        self._table = None

    # -- scoring ----------------------------------------------------------------------------
    def _inputs(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        length = self.config.max_len
        if self.masked:  # predict a [MASK] appended to the history
            rows = np.stack([left_pad(np.asarray(h)[-(length - 1) :], length) for h in histories])
            rows = np.concatenate([rows[:, 1:], np.full((len(rows), 1), self.n_items + 1)], axis=1)
            return torch.from_numpy(rows)
        return torch.from_numpy(np.stack([left_pad(np.asarray(h), length) for h in histories]))

    def user_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(B, D) the interest representation: the net's last hidden state."""
        net = self._require_net()
        with torch.inference_mode():
            x = self._inputs(histories).to(self._device())
            return net.last_states(x, self._item_table()).cpu().numpy()

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if not len(histories):
            return np.zeros((0, self.n_items), dtype=np.float32)
        net = self._require_net()
        was_training = net.training
        net.eval()
        with torch.inference_mode():
            table = self._item_table()
            x = self._inputs(histories).to(self._device())
            last = net.last_states(x, table)  # (B, D): only the last position is computed
            logits = last @ table[1 : self.n_items + 1].T  # (B, D) @ (D, n_items)
            if net.wide is not None:  # (B, items trained with): later items have no wide part
                wide = net.wide(x)
                logits[:, : wide.shape[1]] += wide
            scores: np.ndarray = logits.cpu().numpy()
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

    def _device(self) -> torch.device:
        return self._require_net().items.seen.device

    def _require_net(self) -> SequenceNet:
        if self.net is None:
            raise RuntimeError(f"{self.name} is not trained: call fit() or load() first")
        return self.net

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        net = self._require_net()
        torch.save(net.state_dict(), directory / f"{self.name}_weights.pt")
        meta: dict[str, Any] = {role: c.to_dict() for role, c in self.configs().items()}
        meta["n_items"] = self.n_items
        (directory / f"{self.name}_config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, item_vectors: np.ndarray) -> Self:
        meta = json.loads((directory / f"{cls.name}_config.json").read_text())
        try:
            model = cls(
                cls.config_type.from_dict(meta["config"]),
                TrainingConfig.from_dict(meta["training"]),
                ItemEmbeddingConfig.from_dict(meta["items"]),
            )
        except (KeyError, ValueError) as error:
            raise RunError(
                f"{directory}: {cls.name}'s saved settings do not fit this version ({error})"
            ) from None
        model.n_items = meta["n_items"]
        state = torch.load(directory / f"{cls.name}_weights.pt", weights_only=True)
        net = model._make_net(item_vectors, np.ones(model.n_items, dtype=np.float32))
        net.load_state_dict(state)
        net.eval()
        model.net = net
        return model
