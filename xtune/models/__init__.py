"""Models: LSTM and xLSTM (sLSTM + mLSTM blocks) with direction and return heads, the
training function the search calls, and probes for the resource cap."""

from __future__ import annotations

from xtune.errors import Stopped
from xtune.models._evaluate import Scores, evaluate
from xtune.models._probe import Resources, count_params, cpu_latency_ms, probe
from xtune.models._train import Initial, fit_final, initialize, train, train_and_evaluate
from xtune.models.distill import DistillConfig, SoftLabels, fit_student, soft_labels
from xtune.models.factory import ModelConfig, build_model, width_depth
from xtune.models.heads import HeadConfig, Heads
from xtune.models.loss import LossConfig
from xtune.models.lstm import LSTMConfig, LSTMModel
from xtune.models.onnx_export import export_onnx, onnx_parity, torch_probabilities
from xtune.models.params import Params, TrainConfig
from xtune.models.results import EpochRecord, FinalFit, Fit, Metrics, Rungs, TrainLog
from xtune.models.xlstm import XLSTMConfig, XLSTMModel

__all__ = [
    "DistillConfig",
    "EpochRecord",
    "FinalFit",
    "Fit",
    "HeadConfig",
    "Heads",
    "Initial",
    "LSTMConfig",
    "LSTMModel",
    "LossConfig",
    "Metrics",
    "ModelConfig",
    "Params",
    "Resources",
    "Rungs",
    "Scores",
    "SoftLabels",
    "Stopped",
    "TrainConfig",
    "TrainLog",
    "XLSTMConfig",
    "XLSTMModel",
    "build_model",
    "count_params",
    "cpu_latency_ms",
    "evaluate",
    "export_onnx",
    "fit_final",
    "fit_student",
    "initialize",
    "onnx_parity",
    "probe",
    "soft_labels",
    "torch_probabilities",
    "train",
    "train_and_evaluate",
    "width_depth",
]
