"""The note optuna-dashboard shows at the top of each trial's page, under its state: what
became of the trial and the figures a trader weighs it by, each under its objective's name.

The dashboard lists a trial's values without their names, and its ~40 user attributes in
the order the storage returns them (the order of first writes on a journal file; on
PostgreSQL a rewritten attribute moves to the end), so no key name can put the edge first.
The note can: the worker writes it once the trial is stored (:class:`NoteTrials`).

Example:
    >>> over = TrialRecord(status="infeasible", reason="over the cap: params; not trained")
    >>> note(TrialState.PRUNED, None, over, ("accuracy", "loss")).split(". ")[0]
    '**over a cap**: over the cap: params; not trained'
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtune.search.record import TrialRecord, read

# optuna-dashboard's keys for a trial's note (optuna_dashboard._note: note_ver_key,
# note_str_key_prefix), written directly: its save_note reads every study system attribute
# twice per call, a cost that grows with the study. One chunk holds this note.
_VERSION, _BODY = "dashboard:{}:note_ver", "dashboard:{}:note_str:0"
_CHUNK = 2045


def _figures(record: TrialRecord, names: Sequence[str], values: Sequence[float] | None) -> str:
    shown = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, values or (), strict=False))
    if record.metrics is None:
        return shown
    val = record.metrics.val
    return (
        f"{shown} (validation); majority baseline {val.baseline:.4f}, "
        f"edge {val.edge:+.4f}, Sharpe {val.sharpe:.2f}"
    )


def note(
    state: TrialState, values: Sequence[float] | None, record: TrialRecord, names: Sequence[str]
) -> str:
    """One Markdown paragraph: the trial's fate in bold, then its figures or its reason."""
    status, why = record.status, record.reason or "no reason recorded"
    if status == "ok":
        return f"**trained**, within every cap: {_figures(record, names, values)}."
    if status == "stopped":
        return (
            f"**stopped early** ({why}): {_figures(record, names, values)}, at the rung "
            "where it stopped; never on the front."
        )
    if status == "infeasible":
        stored = (
            "Stored PRUNED with no values, so the plots leave it out."
            if state == TrialState.PRUNED
            else "Its values are placeholders (the worst), drawn grey as infeasible."
        )
        return f"**over a cap**: {why}. {stored}"
    if status == "diverged":
        return f"**diverged** ({why}): its values are placeholders (the worst), not scores."
    fate = state.name.lower() if status in (None, "running") else status  # interrupted: FAIL
    return f"**{fate}**: {why}."


def save(study: optuna.Study, trial: FrozenTrial, body: str) -> None:
    """Write ``body`` as the trial's note, as optuna-dashboard's ``save_note`` stores it."""
    storage, key = study._storage, trial._trial_id
    storage.set_study_system_attr(study._study_id, _BODY.format(key), body[:_CHUNK])
    storage.set_study_system_attr(study._study_id, _VERSION.format(key), 1)


class NoteTrials:
    """An after-trial callback: the trial's note, from its stored state, values and record."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)  # the study's objectives (reading them costs a query)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        save(study, trial, note(trial.state, trial.values, read(trial), self.names))
