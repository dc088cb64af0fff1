"""Stacked LSTM: the dependable baseline. ``nn.LSTM`` exports to one ONNX ``LSTM`` op per layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from xtune.errors import SpecError
from xtune.models.heads import HeadConfig, Heads


@dataclass(frozen=True)
class LSTMConfig:
    """Attributes:
    n_features: inputs per bar.
    hidden: LSTM hidden size.
    layers: stacked LSTM layers.
    dropout: between layers and before the heads.
    layernorm: LayerNorm on the input and on the last hidden state.
    head: output heads.
    """

    n_features: int
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.0
    layernorm: bool = True
    head: HeadConfig = field(default_factory=HeadConfig)
    family: Literal["lstm"] = "lstm"

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.hidden < 1 or self.layers < 1:
            raise SpecError(f"LSTM sizes must be >= 1, got {self}.")
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"dropout must be in [0, 1), got {self.dropout}.")


class LSTMModel(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.norm_in = nn.LayerNorm(config.n_features) if config.layernorm else nn.Identity()
        self.lstm = nn.LSTM(
            config.n_features,
            config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.norm_out = nn.LayerNorm(config.hidden) if config.layernorm else nn.Identity()
        self.heads = Heads(config.hidden, config.head, config.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, _ = self.lstm(self.norm_in(x))  # [B, T, hidden]
        return self.heads(self.norm_out(y[:, -1]))  # [B, H, C], [B, H]
