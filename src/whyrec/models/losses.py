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


def inclusion_log_prob(
    target_probs: torch.Tensor, n_targets: int, n_uniform: int, n_items: int | None = None
) -> torch.Tensor:
    """log q_j for each item j of TARGET_PROBS: the log-probability that item j is among the
    candidates when the candidates are the distinct targets of N_TARGETS draws with the items'
    target probabilities plus N_UNIFORM uniform draws over a catalogue of N_ITEMS (by default
    ``len(target_probs)``: pass it when TARGET_PROBS holds only some of the items)."""
    n_items = len(target_probs) if n_items is None else n_items
    p = target_probs.double().clamp(0.0, 1.0)
    log_miss = n_targets * torch.log1p(-p) + n_uniform * torch.log1p(torch.tensor(-1.0 / n_items).double())
    # 1 - exp(log_miss), accurate when it is tiny; clamped so an impossible item has a finite log
    return torch.log((-torch.expm1(log_miss)).clamp(min=1e-30)).to(torch.float32)


def candidate_set(targets: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidates (the distinct TARGETS and UNIFORM draws, sorted) and each target's place
    among them."""
    candidates, column = torch.unique(torch.cat([targets, uniform]), return_inverse=True)
    return candidates, column[: len(targets)]


def candidate_softmax(
    hidden: torch.Tensor, candidate_table: torch.Tensor, column: torch.Tensor, log_q: torch.Tensor
) -> torch.Tensor:
    """Summed cross-entropy of each hidden state (T, D) against the candidates' rows (K, D), its
    target at COLUMN (T,), each candidate's logit lowered by its log inclusion probability (K,)."""
    logits = hidden @ candidate_table.T - log_q
    return nn.functional.cross_entropy(logits, column, reduction="sum")


def sampled_softmax(
    hidden: torch.Tensor,
    table: torch.Tensor,
    targets: torch.Tensor,
    target_probs: torch.Tensor,
    uniform: torch.Tensor,
) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of each hidden state (T, D) against the candidates: the distinct
    TARGETS and the UNIFORM draws (item indices into TABLE), each candidate's logit lowered by
    its log inclusion probability. Also returns how many candidates there were.

    Only the candidates' rows of TABLE are read: a trainer that can build those rows alone (as
    the sequence models do on large catalogues) calls :func:`candidate_set` and
    :func:`candidate_softmax` directly."""
    candidates, column = candidate_set(targets, uniform)
    log_q = inclusion_log_prob(target_probs[candidates], len(targets), len(uniform), len(target_probs))
    return candidate_softmax(hidden, table[candidates], column, log_q), len(candidates)


def uniform_draws(n_items: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """N item indices drawn uniformly (with replacement) from N_ITEMS."""
    return torch.randint(n_items, (n,), generator=generator)
