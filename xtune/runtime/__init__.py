"""The trading PC's side: load a verified bundle and predict on raw bars, without torch or optuna."""

from __future__ import annotations

from xtune.errors import BundleError
from xtune.runtime._predict import feature_matrix, predict
from xtune.runtime.bundle import Bundle, load_bundle
from xtune.runtime.manifest import FORMAT_VERSION, Manifest
from xtune.runtime.predictor import (
    ConsensusPredictor,
    LivePredictor,
    Prediction,
    Predictor,
    open_predictor,
)

__all__ = [
    "FORMAT_VERSION",
    "Bundle",
    "BundleError",
    "ConsensusPredictor",
    "LivePredictor",
    "Manifest",
    "Prediction",
    "Predictor",
    "feature_matrix",
    "load_bundle",
    "open_predictor",
    "predict",
]
