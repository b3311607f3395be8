"""One model trained by several processes: what a sequence model's training loop needs from
torch.distributed, and nothing when it runs alone.

The process group is set up by whoever launched the processes (``whyrec.training.distributed``,
or ``torchrun``); a model trains in it when ``torch.distributed`` is initialised. Every process
holds the same windows and draws the same order of them each epoch; each global batch of
``batch_size`` windows is split across the processes (rank r takes every world-th window from the
r-th, as ``DistributedSampler`` does), and DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from whyrec.models.nets import GRU4RecNet, SASRecNet


class Step(nn.Module):
    """A net's forward pass with its item table, as one module: DistributedDataParallel sees
    every parameter that the loss uses (the item table is part of the loss, not only the input)."""

    def __init__(self, net: SASRecNet | GRU4RecNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, chosen: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Hidden states (B, L, D), the item table, and if the net has a wide part its logits at
        the CHOSEN (B, L) positions (T, n_items). With ROWS (sorted distinct indices that include
        0 and every index in X) the table holds only those rows, in that order."""
        wide = None if self.net.wide is None else self.net.wide(x, chosen)
        if rows is None:
            table = self.net.items.table()
            return self.net(x, table), table, wide
        table = self.net.items.table(rows)
        return self.net(torch.searchsorted(rows, x.contiguous()), table), table, wide


class Processes:
    """The processes training one model: this one alone unless torch.distributed is initialised."""

    def __init__(self) -> None:
        self.active = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1

    @property
    def main(self) -> bool:
        """The process that reports progress and writes files (rank 0)."""
        return self.rank == 0

    def wrap(self, step: Step) -> nn.Module:
        if not self.active:
            return step
        device = next(step.parameters()).device
        return DistributedDataParallel(step, device_ids=[device] if device.type == "cuda" else None)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch."""
        return batch[self.rank :: self.world]

    def total(self, value: float, device: torch.device | None = None) -> float:
        """VALUE summed over the processes."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return float(tensor.item())

    def gather(self, values: np.ndarray) -> np.ndarray:
        """Every process's VALUES, concatenated in rank order."""
        if not self.active:
            return values
        parts: list[np.ndarray | None] = [None] * self.world
        dist.all_gather_object(parts, values)
        return np.concatenate([p for p in parts if p is not None])
