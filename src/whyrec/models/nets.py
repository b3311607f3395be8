"""Pure tensor math for the sequence models. Training, IDs and devices live in ``sequence.py``.

Index conventions inside the nets: 0 is padding, items are 1..n_items, n_items + 1 is [MASK].
"""

from __future__ import annotations

import math

import torch
from torch import nn

_BYTE_RANGE = (-(2**31), 2**31 - 1)  # int32 draws viewed as four random bytes each


def byte_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout whose mask comes from random bytes: the same expectation as ``nn.functional.dropout``
    (p rounded to a multiple of 1/256), but several times cheaper on CPU, where drawing one
    Bernoulli per element dominated a training step."""
    if not training or p <= 0.0:
        return x
    threshold = round(p * 256)
    if threshold >= 256:
        return torch.zeros_like(x)
    n = x.numel()
    words = torch.randint(*_BYTE_RANGE, ((n + 3) // 4,), dtype=torch.int32)
    keep = words.view(torch.uint8)[:n].view(x.shape) >= threshold
    return x * keep.to(x.dtype).mul_(256.0 / (256 - threshold))


class Block(nn.Module):
    """One pre-norm Transformer layer: self-attention then a feed-forward net, each residual.

    Written out (rather than ``nn.TransformerEncoderLayer``) so every dropout is ``byte_dropout``.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff1, self.ff2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        nn.init.xavier_uniform_(self.qkv.weight)  # as nn.MultiheadAttention initialises them
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, blocked: torch.Tensor | None, last_only: bool = False) -> torch.Tensor:
        """h (B, L, D); blocked broadcastable to (B, heads, L, L), True where a query may not look.
        LAST_ONLY: the last position's output alone, (B, 1, D) (it attends to every position, but
        no other position is computed: what scoring needs from the last layer)."""
        head = h.shape[2] // self.n_heads
        q, k, v = self._heads(h)
        if last_only:
            q, h = q[:, :, -1:], h[:, -1:]
            blocked = blocked[..., -1:, :] if blocked is not None and blocked.shape[-2] > 1 else blocked
        if self.training:
            scores = (q @ k.transpose(-1, -2)) * (head**-0.5)
            if blocked is not None:
                scores = scores.masked_fill(blocked, float("-inf"))
            weights = byte_dropout(scores.softmax(-1), self.dropout, self.training)
            attended = weights @ v
        else:  # inference: torch's fused attention kernel, the same function without dropout
            allowed = None if blocked is None else ~blocked
            attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self._feed_forward(h, attended)

    def extend(
        self, h: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None, last_only: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Causal inference over the last S positions of a sequence whose earlier positions were
        computed before: H (B, S, D) their inputs, PAST the keys and values of the P positions
        before them ((B, heads, P, head) each) or None. Returns this layer's output at the S
        positions (LAST_ONLY: at the last alone), and the keys and values of all P + S positions."""
        q, k, v = self._heads(h)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        if last_only:
            q, h = q[:, :, -1:], h[:, -1:]
        # the query at position P + i may look at keys up to P + i
        queries, keys = q.shape[2], k.shape[2]
        allowed = torch.ones(queries, keys, dtype=torch.bool, device=q.device).tril(keys - queries)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self._feed_forward(h, attended), (k, v)

    def _heads(self, h: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values of H (B, S, D): (3, B, heads, S, head)."""
        batch, length, dim = h.shape
        return (
            self.qkv(self.norm1(h))
            .view(batch, length, 3, self.n_heads, dim // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )

    def _feed_forward(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The rest of the layer after attention: ATTENDED (B, heads, S, head) for H (B, S, D)."""
        batch, length, dim = h.shape
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        h = h + byte_dropout(self.out(attended), self.dropout, self.training)
        inner = nn.functional.relu(self.ff1(self.norm2(h)), inplace=not self.training)
        inner = byte_dropout(inner, self.dropout, self.training)
        return h + byte_dropout(self.ff2(inner), self.dropout, self.training)


class Whitening(nn.Module):
    """UniSRec's parametric whitening of frozen LM vectors, ``(x - b) W``, optionally a mixture of
    such experts weighted by a learned softmax gate on ``x``."""

    def __init__(self, text_dim: int, dim: int, experts: int = 1) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(experts, text_dim))
        self.weight = nn.Parameter(torch.randn(experts, text_dim, dim) * 0.05)
        self.gate = nn.Linear(text_dim, experts, bias=False) if experts > 1 else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)  # experts start equally weighted

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, text_dim) -> (N, dim)
        out = torch.einsum("nei,eid->ned", x[:, None, :] - self.bias[None], self.weight)
        if self.gate is None:
            return out[:, 0]
        return (out * self.gate(x).softmax(-1)[:, :, None]).sum(dim=1)


class ItemEmbedding(nn.Module):
    """An item's representation: a learned ID embedding plus a learned projection of its LM vector.

    Items that never occur in training have no ID embedding of their own: they share one learned
    "unknown ID" vector, so their representation comes from their text (they are cold, not
    random). With ``id_dropout`` > 0, a share of the items in each training step is shown the same
    way, which trains the text projection and that shared vector for exactly this use. With
    ``cold_neighbours`` = k > 0, a cold item instead borrows, at inference, the ID embeddings of
    the k seen items whose LM vectors are closest to its own (weighted by that cosine similarity).
    With ``use_ids`` false there is no ID part at all: every item is its projected text. The
    projection is a linear map, or (``adaptor="whitening"``) a parametric whitening (:class:`Whitening`).
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        text_vectors: torch.Tensor | None,
        seen: torch.Tensor,
        id_dropout: float = 0.0,
        cold_neighbours: int = 0,
        *,
        use_ids: bool = True,
        adaptor: str = "linear",
        experts: int = 1,
    ) -> None:
        super().__init__()
        if not use_ids and text_vectors is None:
            raise ValueError("an item representation without IDs needs text vectors")
        self.n_items = n_items
        self.cold_neighbours = cold_neighbours
        self.use_ids = use_ids
        # in training, the share of items whose ID part is hidden for a step (text only), so the
        # text projection alone learns to place items: what cold items have at inference
        self.id_dropout = id_dropout
        self.ids = nn.Embedding(n_items + 2, dim, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=0.05)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        if not use_ids:
            self.ids.weight.requires_grad_(False)
        # (n_items + 2,) 1 for items seen in training, 0 for padding, mask token and cold items
        self.seen: torch.Tensor
        self.text_vectors: torch.Tensor
        self.register_buffer("seen", seen.float())
        # the ID part of an item without one (cold, or ID-dropped in a training step)
        self.unknown = nn.Parameter(torch.zeros(dim), requires_grad=use_ids)
        self.text: nn.Module | None = None
        if text_vectors is not None:
            padded = torch.zeros(n_items + 2, text_vectors.shape[1])
            padded[1 : n_items + 1] = text_vectors
            self.register_buffer("text_vectors", padded, persistent=False)  # frozen LM vectors
            if adaptor == "whitening":
                self.text = Whitening(text_vectors.shape[1], dim, experts)
            else:
                self.text = nn.Linear(text_vectors.shape[1], dim, bias=False)
                nn.init.normal_(self.text.weight, std=0.05)
        self.mask_weight = nn.Parameter(torch.zeros(dim))

    def table(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The representation of every index, (n_items + 2, dim): padding (zero), the items, the
        mask token. With ROWS (indices) only those rows, in that order: a training step on a large
        catalogue needs the rows of its window's items and its softmax candidates, not a million."""
        if rows is not None and not self.training and self.cold_neighbours > 0:
            return self.table()[rows]  # borrowing reads every seen item's row
        index = torch.arange(len(self.seen), device=self.seen.device) if rows is None else rows
        real = (index > 0).to(self.seen.dtype)  # padding stays zero
        if self.use_ids:
            keep = self.seen[index] * real
            if self.training and self.id_dropout > 0 and self.text is not None:
                keep = keep * (torch.rand(len(keep), device=keep.device) >= self.id_dropout)
            ids = self.ids.weight
            if not self.training and self.cold_neighbours > 0 and self.text is not None:
                ids, keep = self._borrowed_ids(ids, keep)
            ids = ids if rows is None else ids[rows]
            weight = ids * keep[:, None] + ((real - keep)[:, None] * self.unknown[None])
        else:
            weight = torch.zeros(len(index), self.ids.weight.shape[1], device=index.device)
        if self.text is not None:
            weight = weight + self.text(self.text_vectors[index]) * real[:, None]
        # the mask token has its own learned vector
        is_mask = index == len(self.seen) - 1
        return torch.where(is_mask[:, None], self.mask_weight[None], weight)

    def extend(self, text_vectors: torch.Tensor) -> None:
        """Add items after the last one (before the mask token) from their LM vectors alone: they
        have no ID embedding (unseen in training), exactly as cold items are represented."""
        if self.text is None:
            raise ValueError("a model without text cannot take new items")
        n_new = len(text_vectors)
        dim = self.ids.weight.shape[1]
        with torch.no_grad():
            ids = torch.cat([self.ids.weight[:-1], torch.zeros(n_new, dim), self.ids.weight[-1:]])
            self.ids.weight = nn.Parameter(ids, requires_grad=self.use_ids)
            self.ids.num_embeddings = len(ids)
            self.seen = torch.cat([self.seen[:-1], torch.zeros(n_new), self.seen[-1:]])
            vectors = text_vectors.to(self.text_vectors.dtype)
            self.text_vectors = torch.cat([self.text_vectors[:-1], vectors, self.text_vectors[-1:]])
        self.n_items += n_new

    def _borrowed_ids(self, ids: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """IDS with each cold item's row replaced by the similarity-weighted mean of its
        ``cold_neighbours`` textually closest seen items' rows, and KEEP with those rows kept."""
        inner = self.seen[1 : self.n_items + 1]
        cold = torch.nonzero(inner == 0).squeeze(1) + 1
        warm = torch.nonzero(inner > 0).squeeze(1) + 1
        if not len(cold) or not len(warm):
            return ids, keep
        similarity = self.text_vectors[cold] @ self.text_vectors[warm].T  # the LM vectors are unit length
        top = similarity.topk(min(self.cold_neighbours, len(warm)), dim=1)
        weights = top.values.clamp(min=1e-6)
        weights = weights / weights.sum(dim=1, keepdim=True)
        ids, keep = ids.clone(), keep.clone()
        ids[cold] = (weights[:, :, None] * ids[warm[top.indices]]).sum(dim=1)
        keep[cold] = 1.0
        return ids, keep

    def forward(self, table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, D)
        return nn.functional.embedding(x, table)


class ItemItem(nn.Module):
    """The wide part of a sequence model: a learned weight from every item to every item, so the
    logit of item i after a window is the sum of ``weight[j, i]`` over the window's items j (a
    full-rank item-to-item term beside the Transformer's low-rank ``hidden · item`` one, trained
    with it by the same loss). In training a share ``dropout`` of the window's items is left out
    of the sums (the rest weighted up to keep their expectation). Memory: (n_items + 2) x n_items
    floats; time: one row per item in each sum (``embedding_bag``), never a dense (B, L, n_items).
    Items added after training have no weight to or from them: the output covers the trained
    items only, and the model adds nothing for the others."""

    def __init__(self, n_items: int, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.weight = nn.Parameter(torch.zeros(n_items + 2, n_items))  # rows: padding, items, [MASK]

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) item indices -> (T, n_items): for each of the T True entries of POSITIONS (B, L),
        in row-major order, the sum over the items up to and including that position; by default
        the last position of every row (the whole window): (B, n_items)."""
        length = x.shape[1]
        if positions is None:
            positions = torch.zeros_like(x, dtype=torch.bool)
            positions[:, -1] = True
        # items added after training (and the mask token) have no weight: they count as padding
        x = x.masked_fill(x > self.weight.shape[1], 0)
        real = x > 0
        scale = 1.0
        if self.training and self.dropout > 0:
            real = real & (torch.rand(x.shape, device=x.device) >= self.dropout)
            scale = 1.0 / (1.0 - self.dropout)
        earlier = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()  # (t, s): s <= t
        member = positions[:, :, None] & earlier[None] & real[:, None, :]  # (B, L, L)
        sizes = member.sum(dim=2)[positions]  # (T,) items in each sum
        rows, _, cols = member.nonzero(as_tuple=True)  # row-major: the sums come out in order
        offsets = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        weights = torch.full(rows.shape, scale, device=x.device) if scale != 1.0 else None
        return nn.functional.embedding_bag(
            x[rows, cols], self.weight, offsets, mode="sum", per_sample_weights=weights
        )


# sharing states among rows that begin alike (SASRecNet.last_states): from this many rows, when
# it computes at most this share of the plain pass's positions, in this many groups of rows
_SHARED_MIN_ROWS, _SHARED_MAX_COST, _SHARED_GROUPS = 8, 0.8, 3  # more groups: more calls, fewer positions


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
        self.blocks = nn.ModuleList(Block(dim, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = dropout
        self.causal_mask: torch.Tensor
        self.register_buffer("causal_mask", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1))
        self.wide: ItemItem | None = None  # set by the model when configured (``item_item``)

    def forward(
        self, x: torch.Tensor, table: torch.Tensor | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """(B, L) left-padded item indices -> (B, L, D) hidden states (L <= max_len); LAST_ONLY:
        (B, 1, D), the last position's alone (its last layer computes nothing else)."""
        table = self.items.table() if table is None else table
        length = x.shape[1]
        h = self._inputs(table, x)
        if self.causal:
            blocked = self.causal_mask[:length, :length]
        else:
            # padding keys are masked; the last key never is, so every row's softmax stays finite
            pad = x == 0
            pad[:, -1] = False
            blocked = pad[:, None, None, :]
        for n, block in enumerate(self.blocks):
            h = block(h, blocked, last_only and n == len(self.blocks) - 1)
        return self.norm(h)

    def _inputs(self, table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The first layer's input: item representations plus positions, (B, L, D)."""
        h = self.items(table, x) * math.sqrt(self.dim) + self.positions.weight[-x.shape[1] :]
        return byte_dropout(h, self.dropout, self.training)

    def last_states(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, D), ``forward(x, table, last_only=True)[:, -1]``: what scoring reads.

        A causal net's state at a position depends on the items up to it alone, so rows that begin
        as a reference row does share its states there. A history and its occluded variants (the
        batch an explanation scores) share most of theirs: then the reference row is computed
        once, keeping each layer's keys and values, and the other rows, in groups by how far they
        agree with it, compute only their positions from the first that differs."""
        last = len(self.blocks) - 1
        if not self.causal or self.training or len(x) < _SHARED_MIN_ROWS:
            return self(x, table, last_only=True)[:, -1]
        length = x.shape[1]
        # the reference: of the first, middle and last rows, the one the others agree with longest
        candidates = torch.tensor([0, len(x) // 2, len(x) - 1], device=x.device)
        agree = (x[candidates, None, :] == x[None, :, :]).cumprod(dim=2).sum(dim=2)  # (3, B) prefixes
        best = int(agree.sum(dim=1).argmax())
        ref = int(candidates[best])
        shared = agree[best].clamp(max=length - 1)  # every row computes its last position at least
        order = shared.argsort(stable=True)
        groups = order.tensor_split(_SHARED_GROUPS)
        starts = [int(shared[rows].min()) for rows in groups]  # where each group's rows differ
        cost = length + sum(len(rows) * (length - start) for rows, start in zip(groups, starts, strict=True))
        if cost > _SHARED_MAX_COST * x.numel():  # little in common: the plain pass
            return self(x, table, last_only=True)[:, -1]
        h = self._inputs(table, x)
        blocks: list[Block] = list(self.blocks)  # type: ignore[arg-type]
        cache, h_ref = [], h[ref : ref + 1]  # each layer's keys and values of the reference
        for n, block in enumerate(blocks):
            h_ref, kv = block.extend(h_ref, None, last_only=n == last)
            cache.append(kv)
        out = h.new_empty(len(x), h.shape[2])  # every row, the reference too, is in a group
        for rows, start in zip(groups, starts, strict=True):
            h_rows = h[rows, start:]
            for n, block in enumerate(blocks):
                keys, values = cache[n]
                past = (keys[:, :, :start].expand(len(rows), -1, -1, -1),
                        values[:, :, :start].expand(len(rows), -1, -1, -1)) if start else None  # fmt: skip
                h_rows, _ = block.extend(h_rows, past, last_only=n == last)
            out[rows] = h_rows[:, -1]
        return self.norm(out)


class GRU4RecNet(nn.Module):
    """A recurrent sequence encoder (GRU4Rec) over the same item representation."""

    def __init__(self, items: ItemEmbedding, dim: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.items, self.dim = items, dim
        self.dropout = dropout
        self.gru = nn.GRU(dim, dim, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)
        self.wide: ItemItem | None = None  # set by the model when configured (``item_item``)

    def forward(
        self, x: torch.Tensor, table: torch.Tensor | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """(B, L) left-padded item indices -> (B, L, D); LAST_ONLY: (B, 1, D), the last position's."""
        table = self.items.table() if table is None else table
        h, _ = self.gru(byte_dropout(self.items(table, x), self.dropout, self.training))
        return self.norm(h[:, -1:] if last_only else h)

    def last_states(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, D): the last position's state, what scoring reads."""
        return self(x, table, last_only=True)[:, -1]
