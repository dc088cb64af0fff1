"""Export: the winning trial becomes a slim, verified bundle for the trading PC."""

from __future__ import annotations

from xtune.errors import DistillError, ExportError
from xtune.export.build import ExportReport, export_bundle
from xtune.export.distill import DistillReport, distill_bundle
from xtune.export.pick import RULES, pick_trial
from xtune.export.quantize import ort_latency_ms, quantize_int8
from xtune.export.student import StudentCap

__all__ = [
    "RULES",
    "DistillError",
    "DistillReport",
    "ExportError",
    "ExportReport",
    "StudentCap",
    "distill_bundle",
    "export_bundle",
    "ort_latency_ms",
    "pick_trial",
    "quantize_int8",
]
