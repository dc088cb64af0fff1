"""Search: a multi-objective Optuna study over architecture, features, window and training,
under a hard resource cap for the trading PC.

The names below are imported on first use, so a process that needs only a light part of the
package (``xtune storage-proxy``: the storage modules, no torch) does not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xtune.errors import CapError, SeedError, StudyNotFound
    from xtune.search._replay import ReplayResult, replay, trial_inputs
    from xtune.search._sweep import sweep
    from xtune.search.config import StudyConfig, StudyError, load_study_config
    from xtune.search.objective import Objective
    from xtune.search.plots import write_plots
    from xtune.search.record import Plan, TrialRecord, read
    from xtune.search.report import StudySummary, is_feasible, pareto_front, summary
    from xtune.search.run import prepare_inputs, run_search
    from xtune.search.seeds import enqueue, load_entries, seed_study
    from xtune.search.space import Replay, suggest
    from xtune.search.storage import mask, open_storage, resolve_storage
    from xtune.search.study import create_study, make_sampler, open_study
    from xtune.search.study_record import StudyRecord, read_study

# Each public name and the module that defines it: imported on first use, so a process that
# needs only part of the package (the storage proxy) does not import torch.
_HOME = {
    "CapError": "xtune.errors",
    "Objective": "xtune.search.objective",
    "Plan": "xtune.search.record",
    "Replay": "xtune.search.space",
    "ReplayResult": "xtune.search._replay",
    "SeedError": "xtune.errors",
    "StudyConfig": "xtune.search.config",
    "StudyError": "xtune.search.config",
    "StudyNotFound": "xtune.errors",
    "StudyRecord": "xtune.search.study_record",
    "StudySummary": "xtune.search.report",
    "TrialRecord": "xtune.search.record",
    "create_study": "xtune.search.study",
    "enqueue": "xtune.search.seeds",
    "is_feasible": "xtune.search.report",
    "load_entries": "xtune.search.seeds",
    "load_study_config": "xtune.search.config",
    "make_sampler": "xtune.search.study",
    "mask": "xtune.search.storage",
    "open_storage": "xtune.search.storage",
    "open_study": "xtune.search.study",
    "pareto_front": "xtune.search.report",
    "prepare_inputs": "xtune.search.run",
    "read": "xtune.search.record",
    "read_study": "xtune.search.study_record",
    "replay": "xtune.search._replay",
    "resolve_storage": "xtune.search.storage",
    "run_search": "xtune.search.run",
    "seed_study": "xtune.search.seeds",
    "suggest": "xtune.search.space",
    "summary": "xtune.search.report",
    "sweep": "xtune.search._sweep",
    "trial_inputs": "xtune.search._replay",
    "write_plots": "xtune.search.plots",
}

__all__ = [
    "CapError",
    "Objective",
    "Plan",
    "Replay",
    "ReplayResult",
    "SeedError",
    "StudyConfig",
    "StudyError",
    "StudyNotFound",
    "StudyRecord",
    "StudySummary",
    "TrialRecord",
    "create_study",
    "enqueue",
    "is_feasible",
    "load_entries",
    "load_study_config",
    "make_sampler",
    "mask",
    "open_storage",
    "open_study",
    "pareto_front",
    "prepare_inputs",
    "read",
    "read_study",
    "replay",
    "resolve_storage",
    "run_search",
    "seed_study",
    "suggest",
    "summary",
    "sweep",
    "trial_inputs",
    "write_plots",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value
