"""`xtune status`: the typed summary and its JSON, the front table at the terminal's width, and
the plots, which draw measured values only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from tests.search_tests.studies import write_study
from tests.search_tests.test_states import PLAN, _add_one_of_each, _merged, _metrics
from xtune.cli._status import front_table
from xtune.features import Bars, load_bars
from xtune.models import Resources
from xtune.search import StudySummary, create_study, load_study_config, resolve_storage, summary
from xtune.search.plots import Drawn, pareto_figures, write_plots
from xtune.search.record import DataRecord, TrialRecord
from xtune.settings import Settings

# The keys `status --format json` prints, in order: a consumer reads these.
KEYS = ["study", "objectives", "directions", "states", "feasible", "infeasible", "trained",
        "diverged", "stopped", "budget_spent", "refused", "failed", "pareto_front", "seeded"]  # fmt: skip
ROW = ["trial", "accuracy", "loss", "baseline_accuracy", "edge", "sharpe", "validation", "family",
       "params", "latency_ms", "window", "features", "units", "other_bars", "label", "luck",
       "parameters"]  # fmt: skip
LUCK = ["trials", "noise", "expected_best_edge", "edge_bar", "lucky", "deflated_sharpe",
        "bars_per_year"]  # fmt: skip
SEEDED = ["trial", "label", "state", "status", "on_front", "accuracy", "loss"]


def _study(bars: Bars, study: optuna.Study | None = None) -> optuna.Study:
    """One trial of each kind (:func:`_add_one_of_each`), and a trader's own setup, trained
    and dominated by trial 0."""
    if study is None:
        study = optuna.create_study(directions=["maximize", "minimize"])
        study.set_metric_names(["accuracy", "loss"])
    data = DataRecord.of(bars)
    _add_one_of_each(study, data)
    base = TrialRecord(plan=PLAN, data=data, resources=Resources(500, 0.1), feasible=True)
    mine = TrialRecord(status="ok", metrics=_metrics(0.55), label="live model A")
    study.add_trial(_merged(base, mine, [0.55, 0.69]))
    return study


def test_the_summary_round_trips_to_the_same_json(bars: Bars) -> None:
    info = summary(_study(bars)).with_plots(["report/pareto_front.png"])
    text = info.to_json()
    raw = json.loads(text)
    assert list(raw) == [*KEYS, "plots"]
    assert list(raw["pareto_front"][0]) == ROW and list(raw["pareto_front"][0]["luck"]) == LUCK
    assert list(raw["seeded"][0]) == SEEDED and raw["seeded"][0]["on_front"] is False
    again = StudySummary.from_json(text)
    assert again == info and again.to_json() == text
    assert "plots" not in json.loads(summary(_study(bars)).to_json())


def _render(info: StudySummary, width: int) -> tuple[str, tuple[str, ...]]:
    table, dropped = front_table(list(info.pareto_front), list(info.objectives), width)
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text(), dropped


def test_an_edge_objective_is_one_column_and_keeps_its_luck_mark(bars: Bars) -> None:
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"])
    study.set_metric_names(["accuracy", "loss", "edge"])
    base = TrialRecord(plan=PLAN, data=DataRecord.of(bars), resources=Resources(500, 0.1),
                       feasible=True)  # fmt: skip
    study.add_trial(_merged(base, TrialRecord(status="ok", metrics=_metrics(0.56)),
                            [0.56, 0.68, 0.06]))  # fmt: skip
    text, _ = _render(summary(study), 120)
    header = next(line for line in text.splitlines() if line.startswith("trial"))
    assert header.split().count("edge") == 1, header
    assert "+0.060~" in text  # signed, marked: not distinguishable from luck


def test_the_front_table_drops_columns_not_digits_to_fit(bars: Bars) -> None:
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"])
    study.set_metric_names(["accuracy", "loss", "balanced_accuracy"])
    base = TrialRecord(plan=PLAN, data=DataRecord.of(bars), resources=Resources(123_456, 0.1),
                       feasible=True)  # fmt: skip
    study.add_trial(_merged(base, TrialRecord(status="ok", metrics=_metrics(0.56)),
                            [0.56, 0.68, 0.55]))  # fmt: skip
    wide, none = _render(summary(study), 120)
    narrow, dropped = _render(summary(study), 80)
    assert none == () and "feats" in wide and "123,456" in wide
    assert dropped and "feats" not in narrow and "bal.acc" in narrow
    for text, width in ((wide, 120), (narrow, 80)):
        assert "…" not in text and max(map(len, text.splitlines())) <= width, text
        assert all(n in text for n in ("0.560", "0.680", "0.550", "0.500", "+0.060~"))


@pytest.mark.parametrize("columns", [80, 120])
def test_status_fits_the_terminal_with_every_number_whole(tmp_path: Path, columns: int) -> None:
    study_file = write_study(tmp_path, objectives='["accuracy", "loss", "sharpe"]')
    config = load_study_config(study_file)
    bars = load_bars(str(tmp_path / "bars.csv"))
    study, _ = create_study(config, resolve_storage(config, None, Settings()), Settings(), bars)
    base = TrialRecord(plan=PLAN, data=DataRecord.of(bars), resources=Resources(98_765, 0.42),
                       feasible=True)  # fmt: skip
    study.add_trial(_merged(base, TrialRecord(status="ok", metrics=_metrics(0.56)),
                            [0.56, 0.68, 0.3]))  # fmt: skip
    text = subprocess.run(
        [sys.executable, "-m", "xtune", "status", str(study_file), "--no-plots"],
        capture_output=True, text=True, timeout=300,
        env=os.environ | {"COLUMNS": str(columns), "NO_COLOR": "1"},
    ).stdout  # fmt: skip
    assert "…" not in text and max(map(len, text.splitlines())) <= columns, text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("0 "))
    assert row.split()[:5] == ["0", "0.560", "0.680", "0.300", "0.500"], row
    assert "+0.060~" in row and "98,765" in row, row
    header = next(line for line in text.splitlines() if line.startswith("trial"))
    assert ("feats" in header) == (columns == 120), text  # dropped first, at 80 columns


def test_the_pareto_plot_draws_measured_values_only(bars: Bars, tmp_path: Path) -> None:
    """Placeholders (accuracy 0, loss 10) of over-cap and diverged trials would squeeze every
    trained trial into one corner: they are left out, and counted in the title."""
    study = _study(bars)
    data = DataRecord.of(bars)
    base = TrialRecord(plan=PLAN, data=data, resources=Resources(500, 0.1))
    old = TrialRecord(status="infeasible", reason="over the cap: params", feasible=False)
    study.add_trial(_merged(base, old, [0.0, 10.0]))  # over a cap, stored as older studies did
    drawn = Drawn.of(study)
    fig, g = pareto_figures(["accuracy", "loss"], drawn)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > 0.5 and ax.get_xlim()[1] < 1.0, ax.get_xlim()
    assert ax.get_ylim()[0] > 0.0 and ax.get_ylim()[1] < 1.0, ax.get_ylim()
    plotted = [(x, y) for trace in g.data for x, y in zip(trace.x, trace.y, strict=True)]
    assert plotted and all(x > 0.5 and y < 1.0 for x, y in plotted), plotted
    assert "2 over a cap (never trained), 1 diverged (no scores)" in g.layout.title.text
    assert [t.number for t in drawn.stopped] == [2]  # marked, at its rung's values
    written = write_plots(study, tmp_path / "report")
    assert tmp_path / "report" / "pareto_front.png" in written
