"""Search: a multi-objective Optuna study over architecture, features, window and training,
under a hard resource cap for the trading PC."""

from __future__ import annotations

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
