"""Export: the winning trial becomes a slim, verified bundle for the trading PC."""

from __future__ import annotations

from xtune.export.build import ExportReport, export_bundle
from xtune.export.pick import RULES, ExportError, pick_trial
from xtune.export.quantize import ort_latency_ms, quantize_int8

__all__ = [
    "RULES",
    "ExportError",
    "ExportReport",
    "export_bundle",
    "ort_latency_ms",
    "pick_trial",
    "quantize_int8",
]
