"""The reference sample a bundle carries (format 4): the untouched test part's last windows,
scaled, with torch's fp32 probabilities for them, and the data's last bars. Export writes it on
the research PC; ``xtune certify`` and the :class:`~xtune.runtime.predictor.Predictor` re-check
the ONNX models against it on the trading PC, whose CPU may run them differently (int8 kernels
differ with VNNI, AVX-512 or neither). Torch-free.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xtune.errors import BundleError
from xtune.features._windows import windows
from xtune.features.bars import Bars, load_bars
from xtune.runtime.bundle import Bundle
from xtune.runtime.manifest import ReferenceEntry
from xtune.runtime.session import open_session, run_model

PARITY_TOL = 1e-4  # onnxruntime fp32 vs torch: largest absolute difference (export and certify)
INT8_MIN_AGREEMENT = 0.99  # int8 vs fp32: share of equal predicted classes
WINDOWS = 256  # reference windows: contiguous, so they cost window + 255 rows, not 256 windows
LATENCY_BARS = 200  # bars ``xtune certify`` times the Predictor on, after the history
ROWS, EXPECTED, BARS = "reference_rows.npy", "reference_torch_probs.npy", "reference_bars.csv"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    x: np.ndarray  # [N, L, F] float32 windows (a view over the stored rows)
    expected: np.ndarray  # [N, H, C] torch's fp32 probabilities


def write_reference(
    folder: Path, x: np.ndarray, expected: np.ndarray, bars: pd.DataFrame
) -> ReferenceEntry:
    """Store consecutive windows ``x`` [N, L, F] as their N + L - 1 rows, torch's
    probabilities ``expected`` [N, H, C] for them, and ``bars`` (OHLCV indexed by time)."""
    if len(x) > 1 and not np.array_equal(x[1:, :-1], x[:-1, 1:]):
        raise ValueError("reference windows must be consecutive (each one bar after the last)")
    rows = np.concatenate([x[0], x[1:, -1]])  # [N + L - 1, F]
    np.save(folder / ROWS, np.ascontiguousarray(rows, np.float32), allow_pickle=False)
    np.save(folder / EXPECTED, np.ascontiguousarray(expected, np.float32), allow_pickle=False)
    bars.to_csv(folder / BARS)
    return ReferenceEntry(ROWS, EXPECTED, len(x), BARS)


def _npy(bundle: Bundle, name: str) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(bundle.read(name)), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BundleError(f"{bundle.folder}: {name} is not a numpy array ({exc}).") from None
    return np.asarray(array)


def load_reference(bundle: Bundle) -> Reference | None:
    """The reference windows and torch's probabilities; None for a bundle older than format 4.

    Raises:
        BundleError: a reference file changed since export, or has the wrong shape.
    """
    entry, m = bundle.manifest.reference, bundle.manifest
    if entry is None:
        return None
    rows, expected = _npy(bundle, entry.rows), _npy(bundle, entry.expected)
    shapes = (
        (entry.windows + m.window - 1, len(m.features)),
        (entry.windows, len(m.horizons), m.classes),
    )
    if (rows.shape, expected.shape) != shapes or rows.dtype != np.float32 or entry.windows < 1:
        raise BundleError(
            f"{bundle.folder}: the reference arrays are {rows.shape} and {expected.shape}, not "
            f"{shapes[0]} and {shapes[1]}. Export the bundle again."
        )
    return Reference(windows(rows, m.window), expected)


def reference_bars(bundle: Bundle) -> Bars | None:
    """The bars export stored for per-bar latency; None for a bundle older than format 4."""
    entry = bundle.manifest.reference
    if entry is None:
        return None
    frame = pd.read_csv(io.BytesIO(bundle.read(entry.bars)))
    return load_bars(frame, name=f"{bundle.folder / entry.bars}", columns=bundle.manifest.columns)


FP32_BATCH = 16  # small: the bot's peak memory (RSS) is set by the largest batch it ever ran


def probabilities(bundle: Bundle, session: Any, x: np.ndarray, *, int8: bool) -> np.ndarray:
    """[N, H, C]; int8 one window per call, as the live bot runs it (its activation ranges
    are the batch's own), fp32 in small batches (the load-time check runs in the bot's own
    process: 256 windows at once grew its peak RSS by about 100 MB)."""
    return run_model(bundle, session, x, 1 if int8 else FP32_BATCH)[0]


def parity(bundle: Bundle, ref: Reference, fp32: Any) -> float:
    """Largest absolute difference between this CPU's fp32 probabilities and torch's."""
    return float(np.abs(probabilities(bundle, fp32, ref.x, int8=False) - ref.expected).max())


def agreement(bundle: Bundle, ref: Reference, fp32: Any, int8: Any) -> float:
    """Share of (window, horizon) whose predicted class int8 and fp32 agree on, here."""
    a = probabilities(bundle, fp32, ref.x, int8=False).argmax(-1)  # [N, H]
    b = probabilities(bundle, int8, ref.x, int8=True).argmax(-1)
    return float((a == b).mean())


_CHECKED: dict[str, float] = {}  # verified manifest's sha256 -> int8 agreement in this process


def _int8_agreement_here(bundle: Bundle, fp32: Any, int8: Any) -> float:
    """int8's agreement with fp32 on the reference windows, measured once per process and
    bundle: the verified manifest pins every file's hash, so the same key is the same models
    on the same CPU (batch ``predict`` on an int8 bundle re-ran 512 windows on every call)."""
    key = bundle.manifest_sha256  # "" for a Bundle built by hand: nothing pins it, no cache
    if key in _CHECKED:
        return _CHECKED[key]
    ref = load_reference(bundle)
    if ref is None:
        raise BundleError(f"{bundle.folder}: the manifest lists no reference windows.")
    share = agreement(bundle, ref, fp32, int8)
    if key:
        _CHECKED[key] = share
    return share


def choose_model(bundle: Bundle, threads: int = 1) -> tuple[Any, str, float | None]:
    """The session the live bot runs, its file, and int8's agreement with fp32 here.

    int8 when export kept it and, on this CPU, it still agrees with fp32 on at least 99% of the
    reference windows' classes; else fp32. A bundle without a reference (format 2 or 3) keeps
    export's choice, unchecked (agreement None).
    """
    m = bundle.manifest.model
    session = open_session(bundle, threads=threads)
    if m.file == m.fp32 or bundle.manifest.reference is None:
        return session, m.file, None
    fp32 = open_session(bundle, threads=threads, fp32=True)
    share = _int8_agreement_here(bundle, fp32, session)
    if share >= INT8_MIN_AGREEMENT:
        return session, m.file, share
    log.warning(
        "%s: int8 agrees with fp32 on only %.2f%% of the reference windows on this CPU "
        "(< %.0f%%); predicting with fp32 (%s).",
        bundle.folder,
        100 * share,
        100 * INT8_MIN_AGREEMENT,
        m.fp32,
    )
    return fp32, m.fp32, share
