"""``xtune replay``: retrain one trial from its stored record and compare its metrics."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xtune.cli._app import SEARCH, Format, FormatOpt, app, data_option, err, open_study_file, out
from xtune.cli._search import StorageOpt, StudyArg

if TYPE_CHECKING:
    from xtune.models import Scores
    from xtune.search._replay import ReplayResult


@app.command(rich_help_panel=SEARCH)
def replay(
    study_file: StudyArg,
    trial: Annotated[int, typer.Option(help="Trial number to retrain.")],
    storage: StorageOpt = None,
    data: Annotated[str | None, data_option("The bars, if they moved since the search.")] = None,
    tolerance: Annotated[float, typer.Option(help="Largest allowed metric difference.")] = 1e-6,
    fmt: FormatOpt = Format.table,
) -> None:
    """Retrain one trial from its record and compare metrics.

    On CPU, from the trial's stored record alone; exit 1 when a metric differs by more than
    --tolerance."""
    from xtune.search import replay as run_replay
    from xtune.search._replay import COMPARED

    opened = open_study_file(study_file, storage)
    trading, features = opened.config.trading, opened.config.features.feature_set
    result = run_replay(
        opened.study,
        trial,
        features,
        data=data,
        fee=trading.fee,
        confident_share=trading.confident_share,
        cache_dir=opened.settings.cache_dir,
    )
    if fmt is Format.json:
        _replay_json(result, tolerance)
        return
    table = Table(title=f"trial {trial}: stored vs replayed (validation)")
    for col in ("metric", "stored", "replayed"):
        table.add_column(col)
    for key in COMPARED:
        stored, again = getattr(result.stored, key), getattr(result.replayed, key)
        table.add_row(key, f"{stored:.10f}", f"{again:.10f}")
    out.print(table)
    if result.max_difference > tolerance:
        err.print(
            f"[bold red]mismatch[/]: largest difference {result.max_difference:.3g} > {tolerance:g}"
        )
        raise typer.Exit(1)
    out.print(f"reproduced: largest difference {result.max_difference:.3g} <= {tolerance:g}")


def _replay_json(result: ReplayResult, tolerance: float) -> None:
    """Stored and replayed metrics as JSON; exit 1 on a mismatch, as for the table."""
    from xtune.search._replay import COMPARED

    def metrics(scores: Scores) -> dict[str, float]:
        return {key: float(getattr(scores, key)) for key in COMPARED}

    reproduced = result.max_difference <= tolerance
    info = {
        "trial": result.trial,
        "stored": metrics(result.stored),
        "replayed": metrics(result.replayed),
        "max_difference": result.max_difference,
        "tolerance": tolerance,
        "reproduced": reproduced,
    }
    out.print_json(json.dumps(info))
    if not reproduced:
        raise typer.Exit(1)
