"""What became of a trial, in one vocabulary, and whether bars are the ones a trial saw.

Every count, filter and guard asks these predicates (``status``, the Pareto front, the budget,
the luck guard's N, export and replay); none compares status strings of its own. A trial's
fate is its Optuna state and the status xtune recorded (:mod:`xtune.search.record`):

=============  ===========  ============  ========================================  ======
kind           state        status        what it is                                budget
=============  ===========  ============  ========================================  ======
trained        COMPLETE     ``ok``        trained to its end: real validation       1
                                          scores
diverged       COMPLETE     ``diverged``  the loss stopped being finite;            1
                                          placeholder scores, worst values to the
                                          sampler
stopped early  COMPLETE     ``stopped``   early stopping ended it; scores of its    share
                                          rung
over a cap     PRUNED or    infeasible    over a cap before training; not trained   0
               COMPLETE                   (see :func:`over_cap_state`)
refused        FAIL         ``refused``   an enqueued setup beyond the hard caps    0
failed         FAIL         other         training raised, or its worker died       0
=============  ===========  ============  ========================================  ======

Only a trained trial can reach the front, be exported or be replayed. The luck guard's N
counts every configuration tried (trained, diverged, stopped early); the spread of Sharpe
ratios it deflates by comes from the trials with real scores (trained, stopped early).
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

from xtune.features.bars import Bars
from xtune.search.record import DataRecord, status_of
from xtune.search.study_record import StudyRecord


def is_trained(trial: FrozenTrial) -> bool:
    """Trained to its end, with real validation scores: what the front, export and replay
    may use."""
    return trial.state == TrialState.COMPLETE and status_of(trial) == "ok"


def is_diverged(trial: FrozenTrial) -> bool:
    """Trained until its loss stopped being finite: its scores are placeholders."""
    return trial.state == TrialState.COMPLETE and status_of(trial) == "diverged"


def is_stopped(trial: FrozenTrial) -> bool:
    """Ended by early stopping at a rung; its values are the rung's."""
    return trial.state == TrialState.COMPLETE and status_of(trial) == "stopped"


def is_over_cap(trial: FrozenTrial) -> bool:
    """Over a parameter, latency or feature-count cap before training: never trained."""
    ended = trial.state in (TrialState.PRUNED, TrialState.COMPLETE)
    return ended and status_of(trial) == "infeasible"


# Samplers that learn from a PRUNED trial's constraints as from a COMPLETE one's: TPE puts
# every trial over a constraint below the feasible ones whatever its state and values, and
# random sampling reads nothing. GP and NSGA-II read COMPLETE trials only.
_READ_PRUNED_CONSTRAINTS = ("tpe", "random")


def over_cap_state(sampler: str) -> TrialState:
    """How a trial over a cap is stored, so that ``sampler`` still learns where the cap is.

    PRUNED (no values) where the sampler reads the constraints of pruned trials: nothing
    made up is stored, and optuna-dashboard's plots, which draw the values of COMPLETE
    trials, show trained trials only. COMPLETE with the worst value of each objective for GP
    and NSGA-II, which would otherwise never see the trial and keep drawing over the cap.
    Either way the trial carries its constraint values and the status ``infeasible``.
    """
    return TrialState.PRUNED if sampler in _READ_PRUNED_CONSTRAINTS else TrialState.COMPLETE


def is_refused(trial: FrozenTrial) -> bool:
    """An enqueued setup beyond the hard caps (width, depth): refused before training."""
    return trial.state == TrialState.FAIL and status_of(trial) == "refused"


def is_failed(trial: FrozenTrial) -> bool:
    """Failed for another reason: training raised, or its worker died (the sweep's
    ``orphaned``)."""
    return trial.state == TrialState.FAIL and status_of(trial) != "refused"


def ran_in_full(trial: FrozenTrial) -> bool:
    """Trained to its end, whether it diverged or not: one trial of the budget."""
    return is_trained(trial) or is_diverged(trial)


def is_tried(trial: FrozenTrial) -> bool:
    """A configuration the best was picked from (the luck guard's N): trained, diverged or
    stopped early."""
    return ran_in_full(trial) or is_stopped(trial)


def has_scores(trial: FrozenTrial) -> bool:
    """Its validation scores are measured, not placeholders: trained or stopped early."""
    return is_trained(trial) or is_stopped(trial)


def same_bars(data: DataRecord, bars: Bars) -> bool:
    """``bars`` are the ones a trial recorded (:meth:`DataRecord.same`: times, OHLCV and the
    precomputed columns it read): the test replay and export both apply."""
    return data.same(bars)


def other_bars(data: DataRecord, created: StudyRecord | None) -> bool:
    """A trial trained on other bars than its study was created with (``--allow-other-data``);
    the study records the hash of the bars' times and OHLCV only."""
    return created is not None and data.sha256 != created.data_sha256
