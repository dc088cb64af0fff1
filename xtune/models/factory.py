"""Config -> model, for either family."""

from __future__ import annotations

from torch import nn

from xtune.models.lstm import LSTMConfig, LSTMModel
from xtune.models.xlstm import XLSTMConfig, XLSTMModel

ModelConfig = LSTMConfig | XLSTMConfig


def build_model(config: ModelConfig) -> nn.Module:
    if isinstance(config, LSTMConfig):
        return LSTMModel(config)
    return XLSTMModel(config)
