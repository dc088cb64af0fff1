"""Search: a multi-objective Optuna study over architecture, features, window and training,
under a hard resource cap for the trading PC.

The names below are imported on first use, so a process that needs only a light part of the
package (``xtune storage-proxy``: the storage modules, no torch) does not import the rest.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xtune.search.config import StudyConfig, StudyError, load_study_config
    from xtune.search.objective import CapError, Objective
    from xtune.search.record import Plan, TrialRecord, read
    from xtune.search.replay import ReplayResult, replay, trial_inputs
    from xtune.search.report import is_feasible, pareto_front, summary, write_plots
    from xtune.search.run import prepare_inputs, run_search
    from xtune.search.seeds import SeedError, enqueue, load_entries, seed_study
    from xtune.search.space import Replay, suggest
    from xtune.search.storage import mask, open_storage, resolve_storage
    from xtune.search.study import StudyNotFound, create_study, make_sampler, open_study
    from xtune.search.study_record import StudyRecord, read_study
    from xtune.search.sweep import sweep

# Each public name and the module that defines it.
_HOME = {
    "CapError": "objective",
    "Objective": "objective",
    "Plan": "record",
    "Replay": "space",
    "ReplayResult": "replay",
    "SeedError": "seeds",
    "StudyConfig": "config",
    "StudyError": "config",
    "StudyNotFound": "study",
    "StudyRecord": "study_record",
    "TrialRecord": "record",
    "create_study": "study",
    "enqueue": "seeds",
    "is_feasible": "report",
    "load_entries": "seeds",
    "load_study_config": "config",
    "make_sampler": "study",
    "mask": "storage",
    "open_storage": "storage",
    "open_study": "study",
    "pareto_front": "report",
    "prepare_inputs": "run",
    "read": "record",
    "read_study": "study_record",
    "replay": "replay",
    "resolve_storage": "storage",
    "run_search": "run",
    "seed_study": "seeds",
    "suggest": "space",
    "summary": "report",
    "sweep": "sweep",
    "trial_inputs": "replay",
    "write_plots": "report",
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
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Keeps ``xtune.search.sweep`` and ``xtune.search.replay`` the functions: importing a
    submodule of the same name would otherwise set the package's attribute to the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOME.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
