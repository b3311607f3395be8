"""The training objectives of the sequence models: the full softmax over the catalogue, and a
sampled softmax for catalogues too large for it.

Both return the *sum* of the per-target losses and leave the division to the caller, so that
several processes training one model can divide by the number of targets of the whole batch.

The sampled softmax scores each target against a candidate set instead of every item: the
distinct targets of the batch (in-batch negatives: popular items come up often) together with
``n_uniform`` items drawn uniformly from the catalogue. Drawing candidates that way favours some
items, which the loss would learn as a bias against them; the logQ correction (Bengio & Senécal
2008; Yi et al., RecSys 2019) removes it by subtracting from each candidate's logit the log of the
probability that the candidate is in the set. With ``T`` targets in the batch, an item ``j``
that is a target with probability ``p_j`` (its share of the training interactions) and ``C``
items in the catalogue, that probability is

    q_j = 1 - (1 - p_j)^T (1 - 1/C)^n_uniform.

Each target is in the set exactly once, so no candidate is an accidental copy of a row's target.
"""

from __future__ import annotations

import torch
from torch import nn


def full_softmax(
    hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, extra: torch.Tensor | None = None
) -> torch.Tensor:
    """Summed cross-entropy of each hidden state (T, D) against every row of TABLE (C, D), with
    EXTRA (T, C) logits added when given (a model's wide part)."""
    logits = hidden @ table.T
    return nn.functional.cross_entropy(logits if extra is None else logits + extra, targets, reduction="sum")


def inclusion_log_prob(target_probs: torch.Tensor, n_targets: int, n_uniform: int) -> torch.Tensor:
    """log q_j for every item: the log-probability that item j is among the candidates when the
    candidates are the distinct targets of N_TARGETS draws with TARGET_PROBS plus N_UNIFORM
    uniform draws over the catalogue (the module docstring)."""
    n_items = len(target_probs)
    p = target_probs.double().clamp(0.0, 1.0)
    log_miss = n_targets * torch.log1p(-p) + n_uniform * torch.log1p(torch.tensor(-1.0 / n_items).double())
    # 1 - exp(log_miss), accurate when it is tiny; clamped so an impossible item has a finite log
    return torch.log((-torch.expm1(log_miss)).clamp(min=1e-30)).to(torch.float32)


def sampled_softmax(
    hidden: torch.Tensor,
    table: torch.Tensor,
    targets: torch.Tensor,
    target_probs: torch.Tensor,
    uniform: torch.Tensor,
) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of each hidden state (T, D) against the candidates: the distinct
    TARGETS and the UNIFORM draws (item indices into TABLE), each candidate's logit lowered by
    its log inclusion probability. Also returns how many candidates there were."""
    candidates, column = torch.unique(torch.cat([targets, uniform]), return_inverse=True)
    log_q = inclusion_log_prob(target_probs, len(targets), len(uniform))[candidates]
    logits = hidden @ table[candidates].T - log_q
    return nn.functional.cross_entropy(logits, column[: len(targets)], reduction="sum"), len(candidates)


def uniform_draws(n_items: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """N item indices drawn uniformly (with replacement) from N_ITEMS."""
    return torch.randint(n_items, (n,), generator=generator)
