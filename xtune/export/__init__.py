"""Export: the winning trial becomes a slim, verified bundle for the trading PC."""

from __future__ import annotations

from xtune.export.build import (
    ExportReport,
    export_bundle,
    open_study,
    ort_latency_ms,
    quantize_int8,
)
from xtune.export.pick import RULES, ExportError, pick_trial

__all__ = [
    "RULES",
    "ExportError",
    "ExportReport",
    "export_bundle",
    "open_study",
    "ort_latency_ms",
    "pick_trial",
    "quantize_int8",
]
