"""Watching a study that worker processes fill: its trials, waiting for a state, and picking
trials out by state. Shared by the fault tests on PostgreSQL and through the proxy."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtune.search import StudyConfig, open_storage, read


def trials_of(config: StudyConfig, url: str) -> list[FrozenTrial]:
    """The study's trials now, through a fresh storage on ``url``."""
    storage = open_storage(url)
    return optuna.load_study(study_name=config.study.name, storage=storage).get_trials()


def wait_for(
    config: StudyConfig,
    url: str,
    ready: Callable[[list[FrozenTrial]], bool],
    seconds: float = 240,
) -> list[FrozenTrial]:
    """Poll the study until ``ready(trials)``; the trials at that moment."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            trials = trials_of(config, url)
        except KeyError:  # not created yet
            continue
        if ready(trials):
            return trials
    raise AssertionError("the workers never reached the state the test waits for")


def states(trials: list[FrozenTrial], *wanted: TrialState) -> list[FrozenTrial]:
    return [t for t in trials if t.state in wanted]


def owned_running(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """RUNNING trials that have drawn their parameters and recorded their worker."""
    return [
        t for t in states(trials, TrialState.RUNNING) if t.params and read(t).worker is not None
    ]
