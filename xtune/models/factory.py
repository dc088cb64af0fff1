"""Config -> model, for any family in :data:`~xtune.models.families.FAMILIES`, and a model
config back from its dict."""

from __future__ import annotations

from typing import Any

from torch import nn

from xtune.errors import SpecError
from xtune.models.families import FAMILIES, family_of
from xtune.models.lstm import LSTMConfig
from xtune.models.xlstm import XLSTMConfig

# The built-in families' configs; a registered family's config travels under this name too.
ModelConfig = LSTMConfig | XLSTMConfig


def build_model(config: ModelConfig) -> nn.Module:
    return family_of(config).build(config)


def width_depth(config: ModelConfig) -> tuple[int, int]:
    """A model's width (LSTM hidden size / xLSTM embedding) and depth (layers / blocks): what
    the caps' ``max_width`` and ``max_depth`` bound, and what a distilled student shrinks."""
    width, depth = family_of(config).width_depth(config)
    return width, depth


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Inverse of ``dataclasses.asdict`` on any family's config."""
    if d.get("family") not in FAMILIES:
        raise SpecError(f"unknown model family {d.get('family')!r}; known: {', '.join(FAMILIES)}.")
    config: ModelConfig = FAMILIES[d["family"]].config_from_dict(d)
    return config
