"""Retrain a stored trial from its record alone and compare the metrics (``xtune replay``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import optuna

from xtune.errors import XtuneError
from xtune.features import Bars, Dataset, FeatureSet, load_bars, prepare
from xtune.features.reads import changed_file
from xtune.models import Params, Scores
from xtune.models._train import train_and_evaluate
from xtune.search.record import Plan, TrialRecord, read
from xtune.search.states import is_trained, same_bars

COMPARED = ("accuracy", "loss", "baseline")


def trial_inputs(
    record: TrialRecord, bars: Bars, feature_set: FeatureSet, cache_dir: Path | None = None
) -> tuple[Plan, Params, Dataset]:
    """A trial's plan, training settings and dataset, rebuilt from its record (replay, export),
    its features computed by ``feature_set`` (the study's).

    On the bars it was searched on, the dataset starts at the plan's first row, as in the
    search, so the splits are the same; on other bars it starts after its own warm-up. The
    training thread count is the recorded one, because float results depend on it.
    """
    if record.plan is None or record.data is None:
        raise XtuneError("this trial has no stored plan; it never started training.")
    plan = record.plan
    spec = plan.data if same_bars(record.data, bars) else replace(plan.data, first_row=0)
    dataset = prepare(bars, spec, feature_set=feature_set, cache_dir=cache_dir)
    train = plan.params.train
    if record.threads:
        train = replace(train, threads=record.threads)
    return plan, Params(plan.params.model, train), dataset


def check_plugins(record: TrialRecord, number: int, feature_set: FeatureSet) -> None:
    """Refuse, in one line naming the file, when a plugin the trial's features came from, or a
    file it read while it computed, is not what the trial recorded: export and replay run only
    code and data the search validated. A trial from before plugins were recorded passes.

    Raises:
        XtuneError: the plugin's bytes differ (or ``feature_set`` does not hold it), or a file
            it read differs or is missing.
    """
    for rec in record.plugins or ():
        loaded = feature_set.plugins_of(rec.features)
        if not any(p.sha256 == rec.sha256 for p in loaded):
            where, now = (loaded[0].label, loaded[0].sha256[:12]) if loaded else (rec.label, "none")
            raise XtuneError(
                f"{where}: this plugin is not the one trial {number} was searched with (sha256 "
                f"{now} vs {rec.sha256[:12]}); only code a trial validated is replayed or "
                "exported. Restore the file the search ran, or search again with this one."
            )
        changed = changed_file(rec.reads)
        if changed is not None:
            raise XtuneError(
                f"{changed[0]}: the file plugin {Path(rec.label).name} reads is not the one trial "
                f"{number} was searched with ({changed[1]}). Restore that file, or search again "
                "with this one."
            )


def find_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of the study, or a one-line error listing the numbers it has."""
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.number == number:
            return trial
    have = f"0..{len(trials) - 1}" if trials else "none yet"
    raise XtuneError(f"study '{study.study_name}' has no trial {number} (trials: {have}).")


def trained_record(study: optuna.Study, number: int) -> TrialRecord:
    """The record of a trained trial, or a one-line error saying why there is none."""
    trial = find_trial(study, number)
    record = read(trial)
    if not is_trained(trial):
        raise XtuneError(
            f"trial {number} was not trained ({record.status or trial.state.name}: "
            f"{record.reason or 'no result'}); nothing to replay or export."
        )
    return record


@dataclass(frozen=True)
class ReplayResult:
    trial: int
    stored: Scores
    replayed: Scores

    @property
    def max_difference(self) -> float:
        pairs = zip(self.stored.values(COMPARED), self.replayed.values(COMPARED), strict=True)
        return max(abs(a - b) for a, b in pairs)


def replay(
    study: optuna.Study,
    number: int,
    feature_set: FeatureSet,
    *,
    data: str | None = None,
    fee: float = 0.0,
    confident_share: float = 0.3,
    cache_dir: Path | None = None,
) -> ReplayResult:
    """Retrain trial ``number`` on CPU from its stored plan and data record, its features
    computed by ``feature_set`` (the study's: the catalog, its plugins and columns)."""
    record = trained_record(study, number)
    assert record.data is not None and record.metrics is not None  # trained
    assert record.plan is not None  # trained
    check_plugins(record, number, feature_set)  # before any work
    columns = feature_set.columns_of(record.plan.data.features)
    bars = load_bars(data or record.data.source, columns=columns)
    if not same_bars(record.data, bars):
        raise XtuneError(
            f"{bars.source}: these bars differ from the ones trial {number} trained on "
            f"({record.data.difference(bars)}). Pass --data with the original file."
        )
    params, dataset = trial_inputs(record, bars, feature_set, cache_dir)[1:]
    metrics = train_and_evaluate(
        params, dataset, device="cpu", fee=fee, confident_share=confident_share
    )
    return ReplayResult(number, record.metrics.val, metrics.val)
