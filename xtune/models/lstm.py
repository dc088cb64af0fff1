"""Stacked LSTM: the dependable baseline. ``nn.LSTM`` exports to one ONNX ``LSTM`` op per layer.

The bars go into the LSTM as they come: the features are already scaled on the training rows,
and the LSTM's input weights and biases are a per-feature affine of their own. A LayerNorm over
the features of each bar would subtract the bar's mean over its features and divide by their
spread: one feature becomes the constant 0, two keep only the sign of their difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from xtune.errors import SpecError
from xtune.models.heads import HeadConfig, Heads, check_norm_width


@dataclass(frozen=True)
class LSTMConfig:
    """Attributes:
    n_features: inputs per bar.
    hidden: LSTM hidden size.
    layers: stacked LSTM layers.
    dropout: between layers and before the heads.
    layernorm: LayerNorm on the last hidden state (over ``hidden`` units: at least
        :data:`~xtune.models.heads.MIN_NORM_WIDTH`).
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
        if self.layernorm:
            check_norm_width("LSTM hidden", self.hidden)


class LSTMModel(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
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
        y, _ = self.lstm(x)  # [B, T, hidden]
        return self.heads(self.norm_out(y[:, -1]))  # [B, H, C], [B, H]
