"""``xtune consensus``: bundles together on their common untouched test period, and a
consensus bundle that ``xtune predict`` and ``Predictor`` take like a single bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xtune.cli._app import EXPORT, Format, FormatOpt, JsonOpt, app, data_option, out, output_format

if TYPE_CHECKING:
    from xtune.runtime.consensus_score import ConsensusReport


RuleOpt = Annotated[
    str,
    typer.Option(
        help="unanimous: a position only when all agree; majority: when more than half "
        "agree; mean: the likeliest class of the mean probabilities."
    ),
]
ConsensusOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Folder to write a consensus bundle to (default: none).", metavar="FOLDER"
    ),
]


@app.command(rich_help_panel=EXPORT)
def consensus(
    bundles: Annotated[
        list[Path], typer.Argument(help="Bundle folders (two or more).", show_default=False)
    ],
    data: Annotated[
        str, data_option("The bars the bundles were trained on (or a file holding them).")
    ],
    rule: RuleOpt = "unanimous",
    threshold: Annotated[
        float, typer.Option(help="mean rule: flat unless the mean's top probability is this.")
    ] = 0.0,
    fee: Annotated[
        float | None, typer.Option(help="Fee per unit of position change (default: manifests').")
    ] = None,
    out_dir: ConsensusOutOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a bundle xtune wrote at --out.")
    ] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """Score bundles alone and together; write a consensus bundle.

    Scores on their common untouched test period. The bundles must come from the same bars (the
    recorded hashes) and predict the same labels; --data must hold those bars. Prints, per
    horizon, for each bundle and the consensus: the share of bars with a position, its accuracy
    there, the majority-class baseline on those bars, and the Sharpe ratio of going long/short
    (flat without a position) after fees."""
    from xtune.features import load_bars
    from xtune.runtime.consensus import Consensus, check_members, load_member
    from xtune.runtime.consensus_score import score_consensus

    fmt = output_format(fmt, as_json)
    chosen = Consensus(None, rule, threshold, tuple(load_member(b) for b in bundles))
    check_members(chosen.members)
    if out_dir is not None:  # before any work: never over, around or into a member
        from xtune.export.consensus import member_folders
        from xtune.export.replace import check_target

        check_target(out_dir, overwrite, member_folders(chosen))
    report = score_consensus(chosen, load_bars(data, columns=chosen.columns), fee)
    if out_dir is not None:
        from xtune.export.consensus import write_consensus

        write_consensus(chosen, out_dir, overwrite=overwrite)
    if fmt is Format.json:
        out.print_json(json.dumps(report.to_dict()))
        return
    _print_report(report)
    if out_dir is not None:
        out.print(f"wrote the consensus bundle {out_dir} (xtune predict {out_dir} --data BARS)")


def _show(value: float | None, digits: str = ".4f") -> str:
    return "-" if value is None else format(value, digits)


def _print_report(report: ConsensusReport) -> None:
    title = (
        f"{report.bars} common test bars {report.period[0]} .. {report.period[1]}, "
        f"fee {report.fee:g}"
    )
    table = Table(title=title)
    for col in ("h", "model", "coverage", "accuracy", "baseline", "edge", "sharpe"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for s in report.scores:
        edge = None if s.accuracy is None or s.baseline is None else s.accuracy - s.baseline
        table.add_row(
            str(s.horizon),
            s.name,
            f"{s.coverage:.3f}",
            _show(s.accuracy),
            _show(s.baseline),
            _show(edge, "+.4f"),
            f"{s.sharpe:.2f}",
        )
    out.print(table)
