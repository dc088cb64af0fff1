"""``xtune data ...`` and ``xtune features ...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from xtune.cli._app import (
    DATA,
    Command,
    DataOpt,
    Format,
    FormatOpt,
    HorizonOpt,
    JsonOpt,
    OldBarsArg,
    WindowOpt,
    bars_given,
    data_app,
    features_app,
    out,
    output_format,
    settings,
)
from xtune.errors import XtuneError

if TYPE_CHECKING:  # the CLI imports the heavy modules lazily, so --help stays fast
    from xtune.features import Dataset


FrameOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="File to write the feature frame to, its format by suffix: .csv, .parquet or .pq.",
        metavar="FILE",
    ),
]


@data_app.command("check", cls=Command, rich_help_panel=DATA)
def data_check(
    data: DataOpt = None,
    old_source: OldBarsArg = None,
    window: WindowOpt = 60,
    horizon: HorizonOpt = [1],  # noqa: B006 - typer reads the default, never mutates it
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """Validate bars and print rows, span, bar interval and gaps.

    Reads MetaTrader 4 and 5 exports and decimal commas as they come, and notes how it read
    them. Fails (exit 2, nothing written) with the file, column, first bad row and the fix on:
    a file without a header row, missing or non-numeric columns, NaN/inf, prices <= 0,
    high < low, open/close outside \\[low, high], negative volume, duplicate or unsorted times,
    values above 1e12, and too few bars for the whole catalog's warm-up + window + horizon +
    splits.
    """
    from xtune.features import DataSpec, LabelSpec, load_bars, summarize

    source = bars_given(data, old_source, "xtune data check")
    fmt = output_format(fmt, as_json)
    bars = load_bars(source)
    summary = summarize(bars)
    spec = DataSpec(window=window, labels=LabelSpec(horizons=tuple(horizon)))
    need = spec.min_bars()
    if len(bars) < need:
        raise XtuneError(
            f"{bars.source}: {len(bars)} bars pass validation, but window {window} and "
            f"horizon {max(horizon)} with the full feature catalog need at least {need}. "
            "Use more bars or a shorter --window."
        )
    info = summary.to_dict() | {"source": bars.source, "sha256": bars.sha256, "min_bars": need}
    if fmt is Format.json:
        out.print_json(json.dumps(info))
        return
    table = Table(title=f"{bars.source}: OK", show_header=False)
    for key in (
        "rows",
        "start",
        "end",
        "interval",
        "gaps",
        "largest_gap",
        "largest_gap_at",
        "zero_volume_rows",
        "min_bars",
        "sha256",
    ):
        table.add_row(key.replace("_", " "), str(info[key]))
    frame = bars.frame
    for col in frame.columns:
        table.add_row(f"{col} min..max", f"{frame[col].min():.6g} .. {frame[col].max():.6g}")
    out.print(table)
    for note in summary.notes:
        out.print(f"[yellow]note[/]: {escape(note)}", highlight=False)


@features_app.command("list", rich_help_panel=DATA)
def features_list(
    group: Annotated[list[str] | None, typer.Option(help="Only these groups (repeatable).")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """Print the feature catalog: name, group, warm-up, memory.

    Warm-up and memory in bars, and what each feature is."""
    from xtune.features import CATALOG, resolve

    names = resolve(groups=group) if group else tuple(CATALOG)
    if output_format(fmt, as_json) is Format.json:
        rows = [
            {
                "name": n,
                "group": CATALOG[n].group,
                "warmup": CATALOG[n].warmup,
                "memory": CATALOG[n].memory,
                "doc": CATALOG[n].doc,
                "params": dict(CATALOG[n].params),
            }
            for n in names
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(names)} features")
    for col in ("name", "group", "warm-up", "memory", "description"):
        table.add_column(col)
    for n in names:
        f = CATALOG[n]
        table.add_row(n, f.group, str(f.warmup), str(f.memory), f.doc)
    out.print(table)


@features_app.command("build", cls=Command, rich_help_panel=DATA)
def features_build(
    data: DataOpt = None,
    old_source: OldBarsArg = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="Feature name (repeatable).")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="Feature group (repeatable).")] = None,
    window: WindowOpt = 60,
    horizon: HorizonOpt = [1],  # noqa: B006
    out_path: FrameOutOpt = None,
    cache: Annotated[bool, typer.Option(help="Use the feature cache ($XTUNE_CACHE_DIR).")] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a feature frame xtune wrote at --out.")
    ] = False,
) -> None:
    """Build features on bars and cut them into windows.

    Default: all features, cut into train/val/test windows. Shows each feature's range after
    warm-up and the sizes of the chronological split, so you see what a search would train on.
    The test part is counted, never used. --out never replaces a file xtune did not write, nor
    the bars, nor anything in a bundle."""
    import numpy as np

    from xtune.features import CATALOG, DataSpec, LabelSpec, load_bars, prepare, resolve
    from xtune.outputs import FEATURES, as_inputs, check_output_file

    source = bars_given(data, old_source, "xtune features build")
    names = resolve(feature, group)
    inputs = as_inputs(source)
    if out_path is not None:  # before any work
        check_output_file(out_path, FEATURES, inputs=inputs, overwrite=overwrite)
    bars = load_bars(source)
    spec = DataSpec(features=names, window=window, labels=LabelSpec(horizons=tuple(horizon)))
    ds = prepare(
        bars, spec, cache_dir=settings().cache_dir, use_cache=cache, progress=sys.stderr.isatty()
    )
    table = Table(title=f"{len(names)} features on {bars.source}")
    for col in ("feature", "group", "min", "median", "max"):
        table.add_column(col)
    for j, name in enumerate(ds.features):
        values = ds.raw[:, j]
        table.add_row(
            name,
            CATALOG[name].group,
            f"{values.min():.4g}",
            f"{float(np.median(values)):.4g}",
            f"{values.max():.4g}",
        )
    out.print(table)
    info = ds.summary()
    out.print(
        f"rows {info['rows']} after warm-up | window {window} | train {info['train']} "
        f"| val {info['val']} | test {info['test']} (untouched) | purge gap {info['gap']} rows "
        f"| windows share one {info['window_bytes'] / 1e6:.1f} MB array"
    )
    if out_path is not None:
        _write_frame(ds, out_path, inputs, overwrite)
        out.print(f"wrote {out_path}")


def _write_frame(ds: Dataset, path: Path, inputs: tuple[Path, ...], overwrite: bool) -> None:
    import pandas as pd

    from xtune.outputs import FEATURES, INDEX, save_frame, write_file

    frame = pd.DataFrame(ds.raw, index=ds.times.rename(INDEX), columns=list(ds.features))
    write_file(
        path,
        FEATURES,
        lambda tmp: save_frame(frame, tmp, path.suffix),
        inputs=inputs,
        overwrite=overwrite,
    )
