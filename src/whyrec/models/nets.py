"""Pure tensor math for the sequence models. Training, IDs and devices live in ``sequence.py``.

Index conventions inside the nets: 0 is padding, items are 1..n_items, n_items + 1 is [MASK].
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ItemEmbedding(nn.Module):
    """An item's representation: a learned ID embedding plus a learned projection of its LM vector.

    Items that never occur in training keep a zero ID part, so their representation comes from
    text alone (they are cold, not random).
    """

    def __init__(self, n_items: int, dim: int, text_vectors: torch.Tensor | None, seen: torch.Tensor) -> None:
        super().__init__()
        self.n_items = n_items
        self.ids = nn.Embedding(n_items + 2, dim, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=0.05)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        # (n_items + 2,) 1 for items seen in training, 0 for padding, mask token and cold items
        self.seen: torch.Tensor
        self.text_vectors: torch.Tensor
        self.register_buffer("seen", seen.float())
        self.text: nn.Linear | None = None
        if text_vectors is not None:
            padded = torch.zeros(n_items + 2, text_vectors.shape[1])
            padded[1 : n_items + 1] = text_vectors
            self.register_buffer("text_vectors", padded, persistent=False)  # frozen LM vectors
            self.text = nn.Linear(text_vectors.shape[1], dim, bias=False)
            nn.init.normal_(self.text.weight, std=0.05)
        self.mask_weight = nn.Parameter(torch.zeros(dim))

    def table(self) -> torch.Tensor:  # (n_items + 2, dim)
        weight = self.ids.weight * self.seen[:, None]
        if self.text is not None:
            weight = weight + self.text(self.text_vectors)
        # the mask token has its own learned vector; padding stays zero
        return torch.cat([weight[:-1], self.mask_weight[None]], dim=0)

    def forward(self, table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, D)
        return nn.functional.embedding(x, table)


class SASRecNet(nn.Module):
    """A pre-norm Transformer encoder over item sequences; causal, or bidirectional for the
    masked (BERT4Rec-style) objective."""

    def __init__(
        self,
        items: ItemEmbedding,
        dim: int,
        max_len: int,
        n_layers: int,
        n_heads: int,
        dropout: float,
        causal: bool,
    ) -> None:
        super().__init__()
        self.items, self.dim, self.max_len, self.causal = items, dim, max_len, causal
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.05)
        layer = nn.TransformerEncoderLayer(dim, n_heads, 4 * dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.causal_mask: torch.Tensor
        self.register_buffer("causal_mask", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1))

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) left-padded item indices -> (B, L, D) hidden states (L <= max_len)."""
        table = self.items.table() if table is None else table
        length = x.shape[1]
        h = self.items(table, x) * math.sqrt(self.dim) + self.positions.weight[-length:]
        h = self.dropout(h)
        mask = self.causal_mask[:length, :length] if self.causal else None
        # padding keys are masked too; a fully padded row keeps its first key so softmax stays finite
        pad = x == 0
        pad[:, -1] = False
        h = self.encoder(h, mask=mask, src_key_padding_mask=pad if not self.causal else None)
        return self.norm(h)


class GRU4RecNet(nn.Module):
    """A recurrent sequence encoder (GRU4Rec) over the same item representation."""

    def __init__(self, items: ItemEmbedding, dim: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.items, self.dim = items, dim
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) left-padded item indices -> (B, L, D)."""
        table = self.items.table() if table is None else table
        h, _ = self.gru(self.dropout(self.items(table, x)))
        return self.norm(h)
