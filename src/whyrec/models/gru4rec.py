"""GRU4Rec: session-based recurrent recommendation with whyrec's item representation."""

from __future__ import annotations

from dataclasses import dataclass

from whyrec.models.config import ArchitectureConfig, TrainingConfig, setting
from whyrec.models.nets import GRU4RecNet, ItemEmbedding
from whyrec.models.sequence import SequenceModel, SequenceNet


@dataclass(frozen=True)
class GRU4RecConfig(ArchitectureConfig):
    n_layers: int = setting(1, ge=1)


class GRU4Rec(SequenceModel):
    """A GRU over the history; its last hidden state scores every item (full softmax)."""

    name = "gru4rec"
    config_type = GRU4RecConfig
    default_training = TrainingConfig(lr=1e-3, schedule="constant", max_epochs=200)
    config: GRU4RecConfig

    def _build_net(self, items: ItemEmbedding) -> SequenceNet:
        c = self.config
        return GRU4RecNet(items, c.dim, c.n_layers, c.dropout)
