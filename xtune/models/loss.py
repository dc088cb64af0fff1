"""Loss: cross-entropy (optionally smoothed or focal) on direction + weight x Huber/MSE on returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from xtune.errors import SpecError


@dataclass(frozen=True)
class LossConfig:
    label_smoothing: float = 0.0
    focal_gamma: float = 0.0  # 0: plain cross-entropy; > 0 down-weights easy samples
    return_weight: float = 0.5
    return_loss: Literal["huber", "mse"] = "huber"

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 0.5:
            raise SpecError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}.")
        if self.focal_gamma < 0 or self.return_weight < 0:
            raise SpecError("focal_gamma and return_weight must be >= 0.")
        if self.return_loss not in ("huber", "mse"):
            raise SpecError(f"return_loss must be 'huber' or 'mse', got {self.return_loss!r}.")


def direction_loss(logits: torch.Tensor, target: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """Mean over samples and horizons. logits [B, H, C], target [B, H] int64."""
    flat = logits.reshape(-1, logits.shape[-1]).float()  # [B*H, C]
    y = target.reshape(-1)  # [B*H]
    ce = F.cross_entropy(flat, y, reduction="none", label_smoothing=config.label_smoothing)
    if config.focal_gamma > 0:
        p_true = torch.softmax(flat, dim=-1).gather(1, y[:, None]).squeeze(1)
        ce = (1.0 - p_true).pow(config.focal_gamma) * ce
    return ce.mean()


def return_loss(pred: torch.Tensor, target: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """pred, target [B, H], both in units of the training returns' std."""
    if config.return_loss == "mse":
        return F.mse_loss(pred.float(), target)
    return F.huber_loss(pred.float(), target, delta=1.0)


def total_loss(
    logits: torch.Tensor,
    ret_pred: torch.Tensor,
    direction: torch.Tensor,
    ret_target: torch.Tensor,
    config: LossConfig,
) -> torch.Tensor:
    loss = direction_loss(logits, direction, config)
    if config.return_weight > 0:
        loss = loss + config.return_weight * return_loss(ret_pred, ret_target, config)
    return loss
