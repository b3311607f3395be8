"""Soft next-item targets from a closed-form teacher, for training a sequence model.

On short, sparse histories a recency-weighted EASE (:mod:`whyrec.models.ease`) ranks the next item
better than a Transformer trained on one-hot targets alone: it pools co-occurrence evidence across
every user in closed form. With ``TrainingConfig.distill = a`` the network learns from both. Each
training position's target is the mixture

    (1 − a)·onehot(next item) + a·softmax(s·z),

where z is the teacher's score of every item for the prefix up to that position, standardised per
prefix (mean 0, standard deviation 1), the prefix's own items excluded, and s is
``distill_sharpness`` (knowledge distillation, Hinton et al. 2015; here the teacher sees only the
training split and is chosen on validation like any EASE). The teacher is used in training only:
the trained network scores, explains and is saved alone.

The prefix ending at position t scores Σ_{p ≤ t} decay^(t−p)·B[x_p], as the item-item models
score a history (:mod:`whyrec.models.itemitem`): the prefixes of a batch are one sparse
(prefixes × items) matrix of recency weights times B, so a step costs the number of (prefix, item)
pairs times the catalogue, not the padding of the windows.
"""

from __future__ import annotations

import torch
from torch import nn


class Teacher:
    """Soft targets from an item-item matrix WEIGHTS (n × n, zero diagonal) read with DECAY."""

    def __init__(self, weights: torch.Tensor, decay: float, share: float, sharpness: float) -> None:
        self.weights = weights.float()
        self.decay, self.share, self.sharpness = decay, share, sharpness

    def probabilities(self, x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """(T, n) the teacher's distribution over the next item at each CHOSEN position of the
        windows X (B, L; 0 padding, items from 1), the prefix's own items at probability 0."""
        n = len(self.weights)
        window, end = chosen.nonzero(as_tuple=True)  # the T prefixes, in the order of x[chosen]
        prefixes = x[window]  # (T, L)
        ages = end[:, None] - torch.arange(x.shape[1])[None, :]  # slots after each position
        row, position = ((ages >= 0) & (prefixes > 0)).nonzero(as_tuple=True)
        items = prefixes[row, position] - 1
        recency = self.decay ** ages[row, position].double()
        users = torch.sparse_coo_tensor(
            torch.stack([row, items]), recency.float(), (len(window), n), check_invariants=True
        )
        scores = torch.sparse.mm(users.coalesce(), self.weights)  # a repeated item's slots summed
        mean = scores.mean(dim=1, keepdim=True)
        std = scores.std(dim=1, keepdim=True).clamp(min=1e-6)
        z = (scores - mean) / std * self.sharpness
        z[row, items] = float("-inf")  # the prefix's own items
        return torch.softmax(z, dim=1)

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        x: torch.Tensor,
        chosen: torch.Tensor,
        columns: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Summed cross-entropy of LOGITS (T, C) against the mixed targets: TARGETS (T,) are
        column indices; COLUMNS, when the softmax covers some items only, names each column's item
        (the teacher's mass on the other items is dropped and the rest renormalised)."""
        soft = self.probabilities(x.cpu(), chosen.cpu()).to(logits.device)
        if columns is not None:
            soft = soft[:, columns]
            soft = soft / soft.sum(dim=1, keepdim=True).clamp(min=1e-12)
        log_p = nn.functional.log_softmax(logits, dim=1)
        hard = nn.functional.nll_loss(log_p, targets, reduction="sum")
        return (1 - self.share) * hard - self.share * (soft * log_p).sum()
