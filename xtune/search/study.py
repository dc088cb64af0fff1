"""Creating a study: its sampler, its note for the dashboard, and its record.

The parent creates the schema and the study before any worker starts (many processes creating
tables at once on a fresh database fail); workers then ``load_study`` it.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

from xtune.errors import StudyNotFound
from xtune.features import Bars
from xtune.search.config import StudyConfig, StudyError
from xtune.search.seeds import seed_study
from xtune.search.space import parameter_space
from xtune.search.states import over_cap_state
from xtune.search.storage import is_database, mask, open_storage
from xtune.search.study_record import StudyRecord, read_study, write_space, write_study
from xtune.settings import Settings


def fresh_seed() -> int:
    """A sampler seed no other worker or run has (with overwhelming probability)."""
    return secrets.randbelow(2**31)


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
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
        f"Caps for the trading PC: width <= {c.max_width}, depth <= {c.max_depth} "
        f"(hard bounds of the space), parameters <= {c.max_params:,}, latency <= "
        f"{c.max_latency_ms} ms per window (batch 1, one CPU thread, measured on the search machine"
        + (f" x latency_scale {c.latency_scale}" if c.latency_scale != 1.0 else "")
        + ").\n\n"
        "Each trial's **note** (at the top of its page) says what became of it, with its "
        "values under the objectives' names, its majority baseline and its edge.\n\n"
        + _states_note(config.study.sampler)
        + "Each trial's accuracy sits beside `metrics/baseline` (always guessing the majority "
        "class); a trial is only interesting above it. Learning curves are artifacts."
    )


def _states_note(sampler: str) -> str:
    """How the dashboard shows trials over a cap and stopped ones."""
    if over_cap_state(sampler) == TrialState.PRUNED:
        over = (
            "**Infeasible trials** (over a cap, never trained) are PRUNED with no values, "
            "so the plots leave them out; "
        )
    else:
        over = (
            "**Infeasible trials** (over a cap, never trained) are COMPLETE with worst-case "
            f"values, so that the {sampler} sampler learns the cap; the plots draw them grey; "
        )
    return (
        over + "each has the user attribute `resources/feasible = false`. This dashboard does "
        "not read constraints when it marks best trials: run `xtune status STUDY.toml` for the "
        "true feasible Pareto front.\n\n"
        "**Stopped trials** (`train/status = stopped`, early stopping) are COMPLETE with the "
        "values they had at the rung where they were stopped (`train/reason`); they were "
        "dominated there and never belong on the front, even where this dashboard draws them "
        "on it.\n\n"
    )


def artifacts_dir(storage: str, override: str | None, settings: Settings) -> Path:
    if override:
        return Path(override)
    if settings.artifacts is not None:
        return settings.artifacts
    if not is_database(storage):
        return Path(storage).with_suffix(".artifacts")
    return Path("xtune-artifacts")


def _open_or_create(
    config: StudyConfig, storage: optuna.storages.BaseStorage, storage_url: str
) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (of many processes racing, exactly one)."""
    for attempt in range(5):
        try:
            study = optuna.create_study(
                study_name=config.study.name, storage=storage, directions=config.directions
            )
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=config.study.name, storage=storage), False
        except sqlalchemy.exc.IntegrityError:  # a fresh database: another process won the race
            time.sleep(0.2 * (attempt + 1))
    raise StudyError(
        f"{config.path}: could not create study '{config.study.name}' in "
        f"{mask(storage_url)}: other processes kept creating it at the same time."
    )


def _record_of(
    study: optuna.Study, storage: optuna.storages.BaseStorage, created: bool
) -> StudyRecord | None:
    """The study's record; a study another process is creating gets a few seconds to write it."""
    for _ in range(25):
        record = read_study(study)
        if record is not None or created:
            return record
        time.sleep(0.2)
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    return None


def _check_same(
    config: StudyConfig, url: str, record: StudyRecord, bars: Bars, other: bool
) -> None:
    """Refuse a run that would mix results: other objectives, or (without ``other``) other bars."""
    name = config.study.name
    if record.objectives != config.study.objectives:
        raise StudyError(
            f"{config.path}: study '{name}' in {mask(url)} was created with objectives "
            f"{list(record.objectives)}, this file asks for {list(config.study.objectives)}; "
            "their values would land in the wrong columns. Give the study a new name, or "
            "restore the old objectives."
        )
    if bars.sha256 != record.data_sha256 and not other:
        raise StudyError(
            f"{bars.source}: not the bars study '{name}' searches ({record.data_source}, sha256 "
            f"{record.data_sha256[:12]} vs {bars.sha256[:12]}); their trials would share one "
            "Pareto front. Use a new study name, or pass --allow-other-data to add them on "
            "purpose (each trial records its bars; status marks those on other bars)."
        )


def create_study(
    config: StudyConfig,
    storage_url: str,
    settings: Settings,
    bars: Bars,
    *,
    other_data: bool = False,
) -> tuple[optuna.Study, bool]:
    """Create the study if needed (schema first), or check that the existing one matches its
    objectives and bars; then queue the study file's ``[[enqueue]]`` setups it does not hold
    yet. Returns the study and whether this call created it."""
    storage = open_storage(storage_url, settings)
    study, created = _open_or_create(config, storage, storage_url)
    record = _record_of(study, storage, created)
    if record is not None:
        _check_same(config, storage_url, record, bars, other_data)
        write_space(study, parameter_space(config))
        seed_study(study, config)
        return study, False
    if not created:
        raise StudyError(
            f"{config.path}: study '{config.study.name}' in {mask(storage_url)} was "
            "not created by xtune; give the study a new name."
        )
    study.set_metric_names(list(config.study.objectives))
    write_space(study, parameter_space(config))  # before the record: once it is there, all is
    write_study(
        study,
        StudyRecord(
            config.study.objectives,
            vars(config.caps),
            config.study.trials,
            bars.sha256,
            bars.source,
            config.study.seed,
        ),
    )
    from optuna_dashboard import save_note

    save_note(study, study_note(config))
    seed_study(study, config)  # after the record: a queued trial belongs to a finished study
    return study, True


def open_study(
    name: str,
    storage_url: str,
    settings: Settings,
    *,
    study_file: object = "STUDY.toml",
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Load an existing study, or say in one line where it was looked for and what to run.

    Raises:
        StudyNotFound: with the storage (password hidden) and the command that creates it.
    """
    try:
        return optuna.load_study(
            study_name=name, storage=storage or open_storage(storage_url, settings)
        )
    except KeyError:
        raise StudyNotFound(
            f"no study '{name}' in {mask(storage_url)}; run `xtune search {study_file}` first "
            "(or pass the --storage it was searched in)."
        ) from None
