"""Robust scaling as a pure function trio (fit / transform / inverse) with JSON round trip.

Fit it on the training rows only; the same parameters go into the export manifest so the
trading PC scales live bars exactly as training did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xtune.errors import SpecError

_IQR_TO_STD = 1.349  # IQR of a standard normal: makes the scale comparable to a std


@dataclass(frozen=True)
class RobustScaler:
    """``z = clip((x - center) / scale, -clip, clip)``, per column."""

    columns: tuple[str, ...]
    center: np.ndarray  # [F] float64
    scale: np.ndarray  # [F] float64, > 0
    clip: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "robust",
            "columns": list(self.columns),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "clip": float(self.clip),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustScaler:
        if data.get("kind") != "robust":
            raise SpecError(f"unknown scaler kind {data.get('kind')!r}; expected 'robust'.")
        center = np.asarray(data["center"], np.float64)
        scale = np.asarray(data["scale"], np.float64)
        columns = tuple(data["columns"])
        if not (len(columns) == len(center) == len(scale)) or (scale <= 0).any():
            raise SpecError("scaler parameters are inconsistent (lengths or non-positive scale).")
        return cls(columns, center, scale, float(data["clip"]))


def fit_robust(x: np.ndarray, columns: Sequence[str], clip: float = 5.0) -> RobustScaler:
    """Median and IQR per column of ``x`` [rows, F] (training rows only!).

    A column whose IQR is 0 (e.g. a candlestick pattern that is mostly 0) falls back to its
    largest absolute deviation, then to 1 for a constant column, so nothing divides by zero.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != len(columns) or len(x) == 0:
        raise SpecError(
            f"fit_robust needs a non-empty [rows, {len(columns)}] array, got {x.shape}."
        )
    if clip <= 0:
        raise SpecError(f"scaler clip must be > 0, got {clip}.")
    center = np.median(x, axis=0)
    q25, q75 = np.percentile(x, [25, 75], axis=0)
    scale = (q75 - q25) / _IQR_TO_STD
    maxdev = np.abs(x - center).max(axis=0)
    scale = np.where(scale > 1e-12, scale, np.where(maxdev > 1e-12, maxdev, 1.0))
    return RobustScaler(tuple(columns), center, scale, float(clip))


def transform(x: np.ndarray, scaler: RobustScaler) -> np.ndarray:
    """Scaled, clipped float32 copy of ``x`` [rows, F], C-contiguous."""
    z = (np.asarray(x, np.float64) - scaler.center) / scaler.scale
    np.clip(z, -scaler.clip, scaler.clip, out=z)
    return np.ascontiguousarray(z, dtype=np.float32)


def inverse(z: np.ndarray, scaler: RobustScaler) -> np.ndarray:
    """Undo :func:`transform` (exact for values that were not clipped)."""
    out: np.ndarray = np.asarray(z, np.float64) * scaler.scale + scaler.center
    return out
