"""Config -> model, for either family, and a model config back from its dict."""

from __future__ import annotations

from typing import Any

from torch import nn

from xtune.models.heads import HeadConfig
from xtune.models.lstm import LSTMConfig, LSTMModel
from xtune.models.xlstm import XLSTMConfig, XLSTMModel

ModelConfig = LSTMConfig | XLSTMConfig


def build_model(config: ModelConfig) -> nn.Module:
    if isinstance(config, LSTMConfig):
        return LSTMModel(config)
    return XLSTMModel(config)


def width_depth(config: ModelConfig) -> tuple[int, int]:
    """A model's width (LSTM hidden size / xLSTM embedding) and depth (layers / blocks): what
    the caps' ``max_hidden`` and ``max_layers`` bound, and what a distilled student shrinks."""
    if isinstance(config, LSTMConfig):
        return config.hidden, config.layers
    return config.embed, config.blocks


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Inverse of ``dataclasses.asdict`` on either family's config."""
    m = dict(d)
    m["head"] = HeadConfig(**m["head"])
    if m["family"] == "lstm":
        return LSTMConfig(**m)
    m["slstm_at"] = tuple(m["slstm_at"])
    return XLSTMConfig(**m)
