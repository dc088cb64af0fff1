"""The trial and study records: full round trips, and records cut off mid-write."""

from __future__ import annotations

import math
from typing import Any

import pytest
from optuna.trial import create_trial

from xtune.errors import XtuneError
from xtune.features import DataSpec
from xtune.models import EpochRecord, LSTMConfig, Metrics, Params, Resources, Scores, TrainLog
from xtune.search.device import DeviceRecord
from xtune.search.record import DataRecord, Plan, TrialRecord, Worker
from xtune.search.states import is_trained
from xtune.search.study_record import StudyRecord

FULL = TrialRecord(
    status="ok",
    reason="",
    worker=Worker("host", 12, 7, 99, "pid:[4]"),
    plan=Plan(
        DataSpec(("ret_1", "rsi_14"), window=16, first_row=33), Params(LSTMConfig(2)), ("returns",)
    ),
    data=DataRecord("ab" * 32, "bars.csv", 1500, "2020-01-01 .. 2020-03-03", "cd" * 32),
    resources=Resources(4269, 0.2),
    feasible=True,
    threads=2,
    device=DeviceRecord("cpu", "fp32", "2.13.0+cpu"),
    metrics=Metrics(
        Scores(0.55, 0.68, 0.51, (0.55,), 1.5, 300),
        TrainLog((EpochRecord(1, 0.7, 0.68, 0.55, 1e-3),), 1, 1, 0.5, "ran all 1 epochs"),
    ),
    retry_of=3,
    attempt=1,
)


def _trained(attrs: dict[str, Any]) -> bool:
    """Whether a finished trial with these attributes counts as trained."""
    return is_trained(create_trial(values=[0.5, 0.7], user_attrs=attrs))


def test_a_full_record_round_trips() -> None:
    assert TrialRecord.from_attrs(FULL.to_attrs()) == FULL
    assert _trained(FULL.to_attrs())


def test_a_record_from_before_the_columns_hash_still_reads() -> None:
    """``data/columns`` came later: a stored trial without it reads, with no columns hash,
    and then checks the bars' OHLCV only."""
    old = {k: v for k, v in FULL.to_attrs().items() if k != "data/columns"}
    record = TrialRecord.from_attrs(old)
    assert _trained(old) and record.data == DataRecord(
        "ab" * 32, "bars.csv", 1500, "2020-01-01 .. 2020-03-03")  # fmt: skip


def test_a_diverged_trial_keeps_its_infinite_loss() -> None:
    assert FULL.metrics is not None
    diverged = TrialRecord(status="diverged", metrics=Metrics(
        Scores(0.0, math.inf, 0.5, (), 0.0, 10), TrainLog((), 0, 0, 0.1, "", "non-finite loss")))  # fmt: skip
    again = TrialRecord.from_attrs(diverged.to_attrs())
    assert again.metrics is not None and again.metrics.val.loss == math.inf


@pytest.mark.parametrize("cut", [1, 5, 12, 20, 30])
def test_a_record_cut_off_mid_write_reads_without_error_and_is_not_trained(cut: int) -> None:
    """A worker killed while it stores its record leaves some keys: readers must not crash."""
    attrs = dict(list(FULL.to_attrs().items())[:cut])
    TrialRecord.from_attrs(attrs)  # no KeyError
    assert not _trained(attrs)  # the status comes last, after everything it vouches for


def test_a_swept_trial_reads_as_orphaned_unless_its_owner_finished() -> None:
    swept = {"train/status": "running", "sweep/reason": "worker died"}
    assert TrialRecord.from_attrs(swept).status == "orphaned"
    finished = FULL.to_attrs() | {"sweep/reason": "worker died"}  # its owner won the race
    assert TrialRecord.from_attrs(finished).status == "ok"


def test_a_study_from_an_older_xtune_is_one_clear_error() -> None:
    record = StudyRecord(("accuracy", "loss"), {"max_params": 1}, 8, "ab" * 32, "bars.csv", 0)
    assert StudyRecord.from_attrs(record.to_attrs()) == record
    assert StudyRecord.from_attrs({}) is None
    old = {"xtune/objectives": ["accuracy", "loss"], "xtune/caps": {}, "xtune/budget": 8}
    with pytest.raises(XtuneError, match="created by an older xtune"):
        StudyRecord.from_attrs(old)
