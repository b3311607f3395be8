"""SASRec (self-attentive sequential recommendation) and its masked-item variant, BERT4Rec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from whyrec.models.config import ArchitectureConfig, ItemEmbeddingConfig, TrainingConfig, setting
from whyrec.models.nets import ItemEmbedding, SASRecNet
from whyrec.models.sequence import SequenceModel, SequenceNet


@dataclass(frozen=True)
class SASRecConfig(ArchitectureConfig):
    n_layers: int = setting(2, ge=1)
    n_heads: int = setting(2, ge=1)
    # "causal": predict each next item (SASRec); "masked": predict random items replaced by
    # [MASK], attending both ways (BERT4Rec)
    objective: Literal["causal", "masked"] = "causal"
    mask_prob: float = setting(0.2, gt=0, lt=1)  # masked objective only

    def check(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")


class SASRec(SequenceModel):
    """Self-attentive sequential recommendation, full-softmax cross-entropy.

    ``SASRecConfig(objective="masked")`` trains it BERT4Rec-style: bidirectional attention,
    random items replaced by [MASK] and predicted (self-supervised).
    """

    name = "sasrec"
    config_type = SASRecConfig
    # lr, schedule and max_epochs were chosen on ml-100k validation NDCG@10 (bench/sweep.py;
    # bench/results/sweep-sasrec-ml-100k.json): as accurate as a constant 1e-3, in about half the time
    default_training = TrainingConfig()
    config: SASRecConfig

    @property
    def masked(self) -> bool:
        return self.config.objective == "masked"

    def _mask_prob(self) -> float:
        return self.config.mask_prob

    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        c = self.config
        return SASRecNet(items, c.dim, c.max_len, c.n_layers, c.n_heads, c.dropout, causal=not self.masked)


class BERT4Rec(SASRec):
    """SASRec trained with the masked-item objective (a named shortcut for the command line)."""

    name = "bert4rec"
    # the masked objective learns more slowly: a constant 1e-3 for up to 200 epochs (not
    # re-tuned when SASRec's defaults changed)
    default_training = TrainingConfig(lr=1e-3, schedule="constant", max_epochs=200)

    def __init__(
        self,
        config: SASRecConfig | None = None,
        training: TrainingConfig | None = None,
        items: ItemEmbeddingConfig | None = None,
    ) -> None:
        if config is not None and config.objective != "masked":
            raise ValueError("bert4rec is SASRec with objective='masked'; for the causal one use sasrec")
        super().__init__(config or SASRecConfig(objective="masked"), training, items)
