"""xLSTM stack (Beck et al. 2024): mLSTM and sLSTM blocks in a pre-LN residual stack.

Config nests as the modules nest: :class:`XLSTMConfig` holds the block settings and says
which block indices are sLSTM (``slstm_at``); all others are mLSTM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from xtune.errors import SpecError
from xtune.models.heads import HeadConfig, Heads
from xtune.models.mlstm import MLSTMBlock, MLSTMConfig
from xtune.models.slstm import SLSTMBlock, SLSTMConfig


@dataclass(frozen=True)
class XLSTMConfig:
    """Attributes:
    n_features: inputs per bar.
    embed: width of the residual stream.
    heads: heads of every block.
    blocks: number of blocks.
    slstm_at: indices of sLSTM blocks (the rest are mLSTM), e.g. ``(1,)`` for [m, s, m].
    proj_factor: mLSTM up-projection factor.
    conv_kernel: causal conv width in both block types (0 disables it in sLSTM).
    dropout: inside blocks and before the heads.
    head: output heads.
    """

    n_features: int
    embed: int = 64
    heads: int = 4
    blocks: int = 2
    slstm_at: tuple[int, ...] = (1,)
    proj_factor: float = 2.0
    conv_kernel: int = 4
    dropout: float = 0.0
    head: HeadConfig = field(default_factory=HeadConfig)
    family: Literal["xlstm"] = "xlstm"

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.embed < 1 or self.blocks < 1:
            raise SpecError(f"xLSTM sizes must be >= 1, got {self}.")
        bad = [i for i in self.slstm_at if not 0 <= i < self.blocks]
        if bad or len(set(self.slstm_at)) != len(self.slstm_at):
            raise SpecError(
                f"slstm_at {self.slstm_at} must be distinct indices below blocks={self.blocks}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"dropout must be in [0, 1), got {self.dropout}.")
        self.mlstm  # noqa: B018 - validates divisibility now, not at first forward
        self.slstm  # noqa: B018

    @property
    def mlstm(self) -> MLSTMConfig:
        return MLSTMConfig(
            self.embed, self.heads, self.proj_factor, self.conv_kernel, dropout=self.dropout
        )

    @property
    def slstm(self) -> SLSTMConfig:
        return SLSTMConfig(self.embed, self.heads, self.conv_kernel, self.dropout)


class XLSTMModel(nn.Module):
    def __init__(self, config: XLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.n_features, config.embed)
        self.blocks = nn.ModuleList(
            SLSTMBlock(config.slstm) if i in config.slstm_at else MLSTMBlock(config.mlstm)
            for i in range(config.blocks)
        )
        self.norm = nn.LayerNorm(config.embed)
        self.heads = Heads(config.embed, config.head, config.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x)  # [B, T, E]
        for block in self.blocks:
            h = block(h)  # [B, T, E]
        return self.heads(self.norm(h[:, -1]))  # [B, H, C], [B, H]
