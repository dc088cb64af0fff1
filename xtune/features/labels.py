"""Labels: forward log return and direction over one or more horizons.

Row t's label for horizon h is about the move from close[t] to close[t + h]: the window that
ends at bar t predicts it. The last h rows have no label (NaN return, class -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtune.errors import SpecError

MISSING = -1


@dataclass(frozen=True)
class LabelSpec:
    """What to predict.

    Attributes:
        horizons: bars ahead, e.g. ``(1, 4)``; one direction head and one return head each.
        dead_zone: log-return threshold of the "flat" class (3 classes only).
        classes: 2 (0 = down or unchanged, 1 = up) or 3 (0 = down, 1 = flat, 2 = up).
    """

    horizons: tuple[int, ...] = (1,)
    dead_zone: float = 0.0
    classes: int = 2

    def __post_init__(self) -> None:
        if not self.horizons or any(int(h) != h or h < 1 for h in self.horizons):
            raise SpecError(f"labels.horizons must be positive integers, got {self.horizons}.")
        if len(set(self.horizons)) != len(self.horizons):
            raise SpecError(f"labels.horizons has duplicates: {self.horizons}.")
        if self.classes not in (2, 3):
            raise SpecError(f"labels.classes must be 2 or 3, got {self.classes}.")
        if self.classes == 3 and not self.dead_zone > 0:
            raise SpecError("labels.classes = 3 needs labels.dead_zone > 0 (the flat band).")
        if self.classes == 2 and self.dead_zone != 0:
            raise SpecError(
                "labels.dead_zone only applies to 3 classes; set classes = 3 or dead_zone = 0."
            )

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("down", "up") if self.classes == 2 else ("down", "flat", "up")


def forward_returns(close: np.ndarray, horizons: tuple[int, ...]) -> np.ndarray:
    """[rows, H] float64 log(close[t + h] / close[t]); NaN where t + h is past the end."""
    log_close = np.log(np.asarray(close, np.float64))
    out = np.full((len(log_close), len(horizons)), np.nan)
    for j, h in enumerate(horizons):
        out[:-h, j] = log_close[h:] - log_close[:-h]
    return out


def directions(returns: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """[rows, H] int64 class ids from forward returns; MISSING (-1) where the return is NaN."""
    known = np.isfinite(returns)
    safe = np.where(known, returns, 0.0)
    if spec.classes == 2:
        out = (safe > 0).astype(np.int64)
    else:
        out = np.where(safe > spec.dead_zone, 2, np.where(safe < -spec.dead_zone, 0, 1))
    return np.where(known, out, MISSING).astype(np.int64)
