"""Output heads shared by every model: direction logits and a return per horizon."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xtune.errors import SpecError

# The narrowest axis a LayerNorm may normalize. It maps its input onto a sphere of dimension
# width - 2 in the zero-mean plane: width 1 gives the constant 0 (no information), width 2 one
# bit (which of the two is larger); from width 3 on, a continuous direction survives.
MIN_NORM_WIDTH = 3


def check_norm_width(what: str, width: int) -> None:
    """Refuse a LayerNorm over fewer than :data:`MIN_NORM_WIDTH` units.

    Raises:
        SpecError: ``width`` is below it; the message names ``what`` was normalized.
    """
    if width < MIN_NORM_WIDTH:
        raise SpecError(
            f"{what} is {width}: a LayerNorm over fewer than {MIN_NORM_WIDTH} units discards "
            f"what they carry (1 unit: a constant; 2: one sign). Use at least {MIN_NORM_WIDTH}."
        )


@dataclass(frozen=True)
class HeadConfig:
    """One direction head (``classes`` logits) and one return head per horizon."""

    horizons: int = 1
    classes: int = 2

    def __post_init__(self) -> None:
        if self.horizons < 1 or self.classes not in (2, 3):
            raise SpecError(f"heads need horizons >= 1 and classes 2 or 3, got {self}.")


class Heads(nn.Module):
    """[B, E] -> (logits [B, H, C], returns [B, H]); returns are in units of the training std."""

    def __init__(self, embed: int, config: HeadConfig, dropout: float = 0.0) -> None:
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(dropout)
        self.direction = nn.Linear(embed, config.horizons * config.classes)
        self.ret = nn.Linear(embed, config.horizons)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dropout(h)  # [B, E]
        logits = self.direction(h).view(-1, self.config.horizons, self.config.classes)  # [B, H, C]
        return logits, self.ret(h)  # [B, H]
