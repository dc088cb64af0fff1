"""Zero-copy windows over one contiguous [rows, F] float32 array.

The window that *ends* at row t covers rows t - L + 1 .. t and is ``windows(x, L)[t - L + 1]``;
it predicts row t's label (the move from bar t to bar t + h).
"""

from __future__ import annotations

import numpy as np

from xtune.errors import SpecError


def windows(x: np.ndarray, window: int) -> np.ndarray:
    """[rows - L + 1, L, F] read-only view of ``x`` [rows, F]; no data is copied."""
    if x.ndim != 2:
        raise SpecError(f"windows need a [rows, features] array, got shape {x.shape}.")
    if not 1 <= window <= len(x):
        raise SpecError(f"window {window} does not fit {len(x)} rows.")
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # [N, F, L]
    return view.transpose(0, 2, 1)  # [N, L, F], still a view


def windows_ending_at(x: np.ndarray, window: int, ends: range) -> np.ndarray:
    """Windows ending at rows ``ends`` (a contiguous range): a view, [len(ends), L, F]."""
    if ends.step != 1 or (len(ends) and ends.start < window - 1):
        raise SpecError(f"window ends {ends} must be contiguous and >= window - 1 = {window - 1}.")
    return windows(x, window)[ends.start - window + 1 : ends.stop - window + 1]
