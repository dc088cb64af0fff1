"""Models: LSTM and xLSTM (sLSTM + mLSTM blocks) with direction and return heads, the
training function the search calls, and probes for the resource cap."""

from __future__ import annotations

from xtune.models.factory import ModelConfig, build_model
from xtune.models.heads import HeadConfig, Heads
from xtune.models.loss import LossConfig
from xtune.models.lstm import LSTMConfig, LSTMModel
from xtune.models.onnx_export import export_onnx, onnx_parity
from xtune.models.probe import count_params, cpu_latency_ms
from xtune.models.train import (
    EpochRecord,
    Metrics,
    Params,
    TrainConfig,
    fit_final,
    train,
    train_and_evaluate,
)
from xtune.models.xlstm import XLSTMConfig, XLSTMModel

__all__ = [
    "EpochRecord",
    "HeadConfig",
    "Heads",
    "LSTMConfig",
    "LSTMModel",
    "LossConfig",
    "Metrics",
    "ModelConfig",
    "Params",
    "TrainConfig",
    "XLSTMConfig",
    "XLSTMModel",
    "build_model",
    "count_params",
    "cpu_latency_ms",
    "export_onnx",
    "fit_final",
    "onnx_parity",
    "train",
    "train_and_evaluate",
]
