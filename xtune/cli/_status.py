"""What ``xtune status`` (and the end of ``xtune search``) prints from a
:class:`~xtune.search.StudySummary`: the counts, the feasible Pareto front as a table that
fits the terminal, the luck guard and the trader's own setups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape
from rich.table import Table

from xtune.cli._app import err, out

if TYPE_CHECKING:
    from xtune.search import StudySummary
    from xtune.search.report import FrontRow

# Headers for objectives whose names would widen the table for 5-character numbers.
SHORT = {"balanced_accuracy": "bal.acc", "confident_accuracy": "conf.acc", "max_drawdown": "max.dd"}
# Columns past the objectives, in the order they are dropped when the table is too wide.
OPTIONAL = ("feats", "win", "ms", "model", "params")
Cell = Callable[["FrontRow"], str]
EXTRA: dict[str, Cell] = {
    "model": lambda r: r.family,
    "params": lambda r: f"{r.params:,}",
    "ms": lambda r: f"{r.latency_ms:.1f}",
    "win": lambda r: str(r.window),
    "feats": lambda r: str(r.features),
}


def print_summary(info: StudySummary) -> None:
    """The counts line, then the front table, its key and the luck guard, then the setups."""
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(info.states.items()))
    out.print(
        f"[bold]{escape(info.study)}[/]: {states} | trained {info.trained}, diverged "
        f"{info.diverged}, stopped early {info.stopped} (budget spent: "
        f"{info.budget_spent:g} trials' training), over a cap {info.infeasible} (not "
        f"trained), refused {info.refused}, failed {info.failed}"
    )
    front = list(info.pareto_front)
    if not front:
        out.print("no feasible trained trial yet.")
        _print_seeded(info)
        return
    table, dropped = front_table(front, list(info.objectives), out.width)
    out.print(table)
    out.print(_key(dropped), highlight=False)
    _print_luck(front)
    _print_seeded(info)
    if any(row.other_bars for row in front):
        err.print(
            "[yellow]*[/] trained on other bars than the study was created with "
            "(--allow-other-data): compare such trials with care."
        )


def _key(dropped: tuple[str, ...]) -> str:
    left = f" Left out at this width: {', '.join(dropped)} (in --json)." if dropped else ""
    return (
        "All figures are validation; the test part is never touched by the search. base = "
        "always guessing the majority class; edge = accuracy - base (~: not distinguishable "
        "from luck); params = weights; ms = latency per window on the trading PC; win = "
        f"window (bars); feats = features.{left}"
    )


def _columns(names: list[str]) -> dict[str, Cell]:
    """Header -> cell of each column: the trial, the objectives, then base and edge unless an
    objective is already one of them, then the model's columns."""
    cols: dict[str, Cell] = {"trial": lambda r: f"{r.trial}{'*' if r.other_bars else ''}"}
    for name in names:
        cols[SHORT.get(name, name)] = _objective_cell(name)
    cols["base"] = lambda r: f"{r.baseline_accuracy:.3f}"
    if "edge" not in names:
        cols["edge"] = _objective_cell("edge")
    return cols | EXTRA


def _objective_cell(name: str) -> Cell:
    if name == "edge":  # signed, and marked where the luck guard cannot tell it from chance
        return lambda r: f"{r.edge:+.3f}{'~' if r.luck.lucky else ' '}"
    return lambda r: f"{r.values[name]:.3f}"


def front_table(
    front: list[FrontRow], names: list[str], width: int
) -> tuple[Table, tuple[str, ...]]:
    """The front as a table no wider than ``width``: the model's columns are dropped, the
    least telling first (:data:`OPTIONAL`), until every number fits whole. Returns the table
    and the columns dropped."""
    from rich.console import Console

    cols, labelled = _columns(names), any(row.label for row in front)
    dropped: list[str] = []
    while True:
        table = _table(front, {k: v for k, v in cols.items() if k not in dropped}, labelled)
        fits = Console(width=10_000).measure(table).minimum <= width  # the label may wrap
        spare = [c for c in OPTIONAL if c not in dropped]
        if fits or not spare:
            return table, tuple(dropped)
        dropped.append(spare[0])


def _table(front: list[FrontRow], cols: dict[str, Cell], labelled: bool) -> Table:
    table = Table(
        title="feasible Pareto front (validation)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for header in cols:
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    if labelled:  # the trader's own setups: the label may wrap, the numbers never
        table.add_column("setup", ratio=1)
    for row in front:
        cells = [cell(row) for cell in cols.values()]
        table.add_row(*cells, *([escape(row.label or "")] if labelled else []))
    return table


def _print_seeded(info: StudySummary) -> None:
    """One line per trader's own setup ([[enqueue]], `xtune enqueue`): how it fared."""
    for row in info.seeded:
        done = row.status or row.state.lower()
        values = ", ".join(f"{n} {v:.3f}" for n, v in row.values.items())
        where = "on the front" if row.on_front else "not on the front"
        out.print(
            f'your setup "{escape(row.label)}": trial {row.trial}, {done}'
            f"{', ' + values if values else ''}, {where}",
            highlight=False,
        )


def _print_luck(front: list[FrontRow]) -> None:
    best = max(front, key=lambda row: row.edge).luck
    out.print(
        f"luck: picking the best of {best.trials} tried trials inflates the best edge by "
        f"about {best.expected_best_edge:+.3f} on its own (noise {best.noise:.3f} per "
        f"trial); an edge up to {best.edge_bar:+.3f} is not distinguishable from luck "
        "(marked ~, 95%). Deflated Sharpe of each trial: `status --format json`."
    )
