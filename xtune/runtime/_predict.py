"""Predict with a bundle on raw bars, exactly as training prepared them. Torch-free.

Imports numpy, pandas, onnxruntime and xtune's feature code only, so the trading PC installs
``xtune[runtime]`` without torch or optuna.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xtune.errors import BundleError, DataError
from xtune.features._windows import windows
from xtune.features.bars import Bars
from xtune.features.build import build_features, feature_specs, latest_features
from xtune.features.scaler import RobustScaler, transform
from xtune.features.summary import summarize
from xtune.runtime.bundle import Bundle
from xtune.runtime.reference import choose_model
from xtune.runtime.session import open_session, run_model


def check_features(bundle: Bundle) -> None:
    """Refuse a bundle whose features this installation would compute differently."""
    names = bundle.features
    missing = [n for n in names if n not in bundle.feature_set]
    if missing:
        raise BundleError(
            f"{bundle.folder}: features {missing} are unknown to this xtune; install the exporting version."
        )
    recorded = {f.name: f for f in bundle.manifest.features}
    ours = {f["name"]: f for f in feature_specs(names, bundle.feature_set)}
    for name in names:
        if (
            ours[name]["params"] != recorded[name].params
            or ours[name]["warmup"] != recorded[name].warmup
            or ours[name].get("origin", "") != recorded[name].origin
        ):
            raise BundleError(
                f"{bundle.folder}: feature {name!r} is defined differently here than when the model "
                f"was trained ({recorded[name]} vs {ours[name]}). Install the exporting xtune version."
            )


def history_needed(bundle: Bundle) -> int:
    """Bars the newest window needs so that no feature depends on where the bars begin: the
    manifest's (a version 2 bundle predates it: this catalog's, whose definitions
    :func:`check_features` matched against the bundle's)."""
    recorded = bundle.manifest.history
    if recorded is not None:
        return recorded
    return bundle.feature_set.history_of(bundle.features) + bundle.window


def check_history(
    bundle: Bundle, source: str, have: int, fix: str = "Pass a longer history."
) -> None:
    """Refuse fewer bars than :func:`history_needed`, saying how many and why."""
    need = history_needed(bundle)
    if have < need:
        raise DataError(
            f"{source}: {have} bars, but this model needs at least {need}: "
            f"{need - bundle.window} for its features to warm up and forget where the bars "
            f"begin + a window of {bundle.window}. {fix}"
        )


def bundle_scaler(bundle: Bundle) -> RobustScaler:
    """The scaler training fit, from the manifest, checked against the feature list."""
    try:
        scaler = RobustScaler.from_dict(bundle.manifest.scaler)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"{bundle.folder}: the manifest's scaler is unusable ({exc}). Export again."
        ) from None
    if scaler.columns != bundle.features:
        raise BundleError(f"{bundle.folder}: the scaler's columns do not match the feature list.")
    return scaler


def feature_matrix(bundle: Bundle, bars: Bars) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Scaled [rows, F] float32 features and their bar times, as training computed them.

    Raises:
        DataError: fewer bars than :func:`history_needed`, saying how many.
    """
    check_features(bundle)
    check_history(bundle, bars.source, len(bars))
    # no cache: live bars change every call
    frame = build_features(bars, bundle.features, feature_set=bundle.feature_set, use_cache=False)
    return transform(frame.to_numpy(), bundle_scaler(bundle)), pd.DatetimeIndex(frame.index)


def latest_window(bundle: Bundle, bars: Bars, scaler: RobustScaler) -> np.ndarray:
    """The live bot's newest window: scaled [L, F] float32 features, each computed over only
    the bars its memory needs (its features and ``scaler`` checked once, by the caller). Equal
    to the last window of :func:`feature_matrix` to 1e-6 of each feature's scale."""
    check_history(bundle, bars.source, len(bars))
    frame = latest_features(bars, bundle.features, bundle.window, feature_set=bundle.feature_set)
    return transform(frame.to_numpy(), scaler)


def show_interval(seconds: float) -> str:
    return str(pd.Timedelta(seconds=seconds)).replace("0 days ", "")


def check_interval(bundle: Bundle, bars: Bars) -> None:
    """Refuse bars at another interval than the model was trained on (a daily model fed
    15-minute bars computes every feature over the wrong time scale, without a word)."""
    trained = bundle.manifest.data.interval_s
    live = summarize(bars).interval.total_seconds()
    if trained > 0 and live > 0 and abs(live / trained - 1.0) > 0.01:
        raise DataError(
            f"{bars.source}: bars every {show_interval(live)}, but this model was trained on bars every "
            f"{show_interval(trained)}. Resample the bars to {show_interval(trained)}, or pass "
            "--allow-other-interval if you mean it."
        )


def predict(
    bundle: Bundle,
    bars: Bars,
    *,
    last: bool = False,
    model: Path | None = None,
    allow_other_interval: bool = False,
) -> pd.DataFrame:
    """Per bar with a full window: class probabilities and predicted return for each horizon.

    Columns: ``h{h}_p_{class}`` probabilities, ``h{h}_direction`` (the likeliest class name) and
    ``h{h}_return`` (predicted forward log return), indexed by the time of the window's last bar.

    Raises:
        DataError: bars at another interval than training's (unless ``allow_other_interval``),
            or too short a history.
    """
    if not allow_other_interval:
        check_interval(bundle, bars)
    x, times = feature_matrix(bundle, bars)
    w = windows(x, bundle.window)  # [N, L, F] view
    if last:
        w, times = w[-1:], times[-1:]
    else:
        times = times[bundle.window - 1 :]
    m = bundle.manifest
    if model is None:  # the model the live bot runs here: int8 only where it agrees on this CPU
        session, file, _ = choose_model(bundle)
    else:
        session, file = open_session(bundle, model), m.model.fp32
    # int8 quantizes each batch's activations with that batch's own range: one window at a
    # time, so every bar's answer is what the live bot (batch 1) gets, whatever else is there.
    step = 1 if file != m.model.fp32 else 2048
    probs, returns = run_model(bundle, session, w, step)
    out: dict[str, np.ndarray] = {}
    for j, h in enumerate(m.horizons):
        for c, name in enumerate(m.class_names):
            out[column(h, f"p_{name}")] = probs[:, j, c]
        out[column(h, "direction")] = np.asarray(m.class_names)[probs[:, j].argmax(-1)]
        out[column(h, "return")] = returns[:, j]
    return pd.DataFrame(out, index=pd.DatetimeIndex(times, name="time"))


def column(horizon: int, what: str) -> str:
    """A prediction's name: ``h{h}_p_{class}``, ``h{h}_direction``, ``h{h}_return``."""
    return f"h{horizon}_{what}"
