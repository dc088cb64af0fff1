"""Creating a study: its sampler, its note for the dashboard, and its record.

The parent creates the schema and the study before any worker starts (many processes creating
tables at once on a fresh database fail); workers then ``load_study`` it.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from xtune.search.config import StudyConfig, StudyError
from xtune.search.record import StudyRecord, read_study, write_study
from xtune.search.storage import is_database, mask, open_storage
from xtune.settings import Settings


def make_sampler(config: StudyConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    seed = config.study.seed + worker
    name = config.study.sampler
    if name == "tpe":
        startup = min(10, max(3, config.study.trials // 4))
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, seed=seed, n_startup_trials=startup
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, config.study.trials // 4))
        )
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def study_note(config: StudyConfig) -> str:
    c = config.caps
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(config.study.objectives, config.directions, strict=True)
    )
    return (
        f"# xtune study `{config.study.name}`\n\n"
        f"Objectives: {objectives}, all on the validation part (chronological, purged); the test "
        "part is never touched by the search.\n\n"
        f"Caps for the trading PC: hidden/embed <= {c.max_hidden}, layers/blocks <= {c.max_layers} "
        f"(hard bounds of the space), parameters <= {c.max_params:,}, latency <= "
        f"{c.max_latency_ms} ms per window (batch 1, one CPU thread, measured on the search machine).\n\n"
        "**Infeasible trials** are stored COMPLETE with worst-case values and the user attribute "
        "`resources/feasible = false`. This dashboard does not read constraints when it marks "
        "best trials: run `xtune status STUDY.toml` for the true feasible Pareto front.\n\n"
        "Each trial's accuracy sits beside `metrics/baseline` (always guessing the majority "
        "class); a trial is only interesting above it. Learning curves are artifacts."
    )


def artifacts_dir(storage: str, override: str | None, settings: Settings) -> Path:
    if override:
        return Path(override)
    if settings.artifacts is not None:
        return settings.artifacts
    if not is_database(storage):
        return Path(storage).with_suffix(".artifacts")
    return Path("xtune-artifacts")


def create_study(config: StudyConfig, storage_url: str, settings: Settings) -> optuna.Study:
    """Create the study if needed (schema first), or check that the existing one matches."""
    study = optuna.create_study(
        study_name=config.study.name,
        storage=open_storage(storage_url, settings),
        directions=config.directions,  # type: ignore[arg-type]
        sampler=make_sampler(config),
        load_if_exists=True,
    )
    wanted = [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else optuna.study.StudyDirection.MINIMIZE
              for d in config.directions]  # fmt: skip
    if study.directions != wanted:
        raise StudyError(
            f"{config.path}: study '{config.study.name}' already exists in {mask(storage_url)} with "
            "other objectives. Give the study a new name, or restore the old objectives."
        )
    if read_study(study) is None:
        study.set_metric_names(list(config.study.objectives))
        write_study(
            study, StudyRecord(config.study.objectives, vars(config.caps), config.study.trials)
        )
        from optuna_dashboard import save_note

        save_note(study, study_note(config))
    return study
