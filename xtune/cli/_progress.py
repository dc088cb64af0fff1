"""``xtune search``'s progress bar, and the one line Ctrl-C leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xtune.cli._app import err, out

T = TypeVar("T")


class TrialsBar:
    """Trials done of the budget, and the feasible front's size. :meth:`update` is the
    search's ``on_progress``; its first call comes once the bars and features passed: only then
    are the header and the bar printed, so bad input is the one line printed, as for every
    command."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[front]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.task = self.progress.add_task("search", total=None, front="")

    def update(self, done: float, target: int, front: int) -> None:
        if not self.progress.live.is_started:
            out.print(self.header)
            self.progress.start()
        text = f"feasible Pareto front: {front}"
        self.progress.update(self.task, completed=done, total=target, front=text)

    def run(self, search: Callable[[], T]) -> T:
        """``search()``, with the bar ended however it ends; Ctrl-C: one line, exit 130."""
        try:
            return search()
        except KeyboardInterrupt:
            self.stop()
            err.print(
                "[yellow]interrupted[/]: the running trial(s) are marked FAIL; finished trials "
                "are stored. Run the same command to resume."
            )
            raise typer.Exit(130) from None
        finally:
            self.stop()

    def stop(self) -> None:
        """End the bar if it began (stopping one that never began prints an empty line)."""
        if self.progress.live.is_started:
            self.progress.stop()
