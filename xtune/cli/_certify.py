"""``xtune certify`` (trading PC, no torch or optuna): is this PC fit to run this bundle?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from xtune.cli._app import (
    TRADING,
    Format,
    FormatOpt,
    JsonOpt,
    app,
    data_option,
    deprecated,
    out,
    output_format,
)

if TYPE_CHECKING:
    from xtune.runtime.certify import CertifyReport, Check, Cpu
    from xtune.runtime.consensus_certify import ConsensusCertifyReport

REPORT = "certify.json"
CertifyDataOpt = Annotated[
    Path | None,
    data_option(
        "CSV or Parquet bars at the model's interval to time the Predictor on (the last "
        "history + 200 are used); default: the bars the bundle stores."
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help=f"File to write the report to (.json); default: ./{REPORT}.", metavar="FILE"
    ),
]
OldBarsOpt = Annotated[Path | None, typer.Option("--bars", hidden=True, help="Deprecated: --data.")]


@app.command(rich_help_panel=TRADING)
def certify(
    bundle_dir: Annotated[
        Path,
        typer.Argument(
            help="Bundle folder from `xtune export` (or `xtune consensus --out`).",
            show_default=False,
        ),
    ],
    data: CertifyDataOpt = None,
    out_path: ReportOpt = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Check this cap (ms per window) instead of the study's."),
    ] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    old_bars: OldBarsOpt = None,
) -> None:
    """Check that this PC runs a bundle right and fast enough.

    Run on the trading PC before a bot trades with the bundle. Verifies the checksums; re-checks
    onnxruntime fp32 against torch's probabilities (within 1e-4) and int8 against fp32 (99%+ of
    classes; else the Predictor uses fp32 here) on test windows stored at export; times the
    Predictor per bar (features included, p50/p99) and the bare model; compares with the study's
    latency cap and with the latency measured at export; names the CPU's vector instructions. A
    consensus bundle: every member so, then the consensus as the trader runs it (each bar's
    decision, timed, equal to `xtune predict`'s; the members' models together under the cap).
    Writes certify.json (never into a bundle). Exit 0: certified; 1: a check failed; 2: bad
    input. Needs neither torch nor optuna."""
    from xtune.runtime.certify import certify as run_certify
    from xtune.runtime.consensus import is_consensus
    from xtune.runtime.consensus_certify import certify_consensus

    bars = _bars(data, old_bars)
    fmt = output_format(fmt, as_json)
    target = report_target(out_path, bundle_dir, bars)  # before any work
    report: CertifyReport | ConsensusCertifyReport
    if is_consensus(bundle_dir):  # from `xtune consensus --out`: every member, and the rule
        report = certify_consensus(bundle_dir, bars, max_latency_ms)
    else:
        report = run_certify(bundle_dir, bars, max_latency_ms)
    write_report(report.to_json(), target, bundle_dir, bars)
    if fmt is Format.json:
        print(report.to_json())
    else:
        _print(report, target)
    if not report.passed:
        raise typer.Exit(1)


def _bars(data: Path | None, old: Path | None) -> Path | None:
    """``--data``, or the deprecated ``--bars``."""
    from xtune.errors import XtuneError

    if old is None:
        return data
    if data is not None:
        raise XtuneError("bars given twice (--bars and --data); pass --data only.")
    deprecated("certify --bars", "--data")
    return old


def report_target(out_path: Path | None, bundle_dir: Path, bars: Path | None = None) -> Path:
    """Where certify.json goes: never into the bundle, never over its bars or a file xtune
    did not write; an earlier report of xtune's is replaced. A folder (deprecated) gets
    certify.json in it."""
    from xtune.outputs import as_inputs, check_output_file, json_kind
    from xtune.runtime.certify import FORMAT

    target = Path.cwd() / REPORT if out_path is None else out_path
    if target.is_dir() and not target.is_symlink():
        deprecated("certify --out FOLDER", f"--out {target / REPORT}")
        target = target / REPORT
    kind = json_kind("certify report", FORMAT)
    return check_output_file(target, kind, inputs=as_inputs(bundle_dir, bars), overwrite=True)


def write_report(text: str, target: Path, bundle_dir: Path, bars: Path | None = None) -> None:
    """Write the report atomically: a reader sees the old report or the new one."""
    from xtune.outputs import as_inputs, json_kind, write_file
    from xtune.runtime.certify import FORMAT

    write_file(
        target,
        json_kind("certify report", FORMAT),
        lambda tmp: tmp.write_text(text + "\n"),
        inputs=as_inputs(bundle_dir, bars),
        overwrite=True,
    )


def _checks(checks: tuple[Check, ...]) -> None:
    table = Table(show_header=True)
    for col in ("check", "result", "detail"):
        table.add_column(col)
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[yellow]n/a[/]"}
    for c in checks:
        table.add_row(c.name, marks[c.ok], escape(c.detail))
    out.print(table)


def _vector(cpu: Cpu) -> str:
    from xtune.runtime.certify import VECTOR_FLAGS

    if cpu.vector is None:
        return "unknown"
    return ", ".join(cpu.vector) or "none of " + ", ".join(VECTOR_FLAGS)


def _print_bundle(report: CertifyReport) -> None:
    out.print(
        f"{escape(report.bundle)} (bundle format {report.format_version}) on "
        f"{escape(report.cpu.name)}"
    )
    out.print(f"vector instructions: {_vector(report.cpu)}")
    _checks(report.checks)
    b = report.bar_ms
    out.print(
        f"per bar, features included (Predictor.update): p50 {b.p50:.3f} ms, p99 "
        f"{b.p99:.3f} ms over {b.calls} bars of {escape(report.bars)}"
    )
    for name, lat in report.model_ms.items():
        out.print(
            f"bare model {name}, batch 1, one thread: p50 {lat.p50:.3f} ms, p99 {lat.p99:.3f} ms"
        )
    if report.slower is not None and report.export_ms is not None:
        here = report.model_ms[report.precision].p50
        out.print(
            f"this CPU takes {report.slower:.2f}x the research PC's time for {escape(report.model)} "
            f"({here:.3f} ms here, {report.export_ms:.3f} ms at export); for a study aimed at this "
            f"PC: \\[caps] latency_scale = {max(1.0, report.slower):.2f}"
        )
    for note in report.notes:
        out.print(f"[yellow]note[/]: {escape(note)}")


def _print_consensus(report: ConsensusCertifyReport) -> None:
    out.print(
        f"{escape(report.consensus)} (consensus of {len(report.members)} bundles, rule "
        f"{report.rule}) on {escape(report.cpu.name)}"
    )
    for k, member in enumerate(report.members, start=1):
        out.print(f"[bold]member {k}[/]: " + ("certified" if member.passed else "NOT certified"))
        _print_bundle(member)
    out.print("[bold]the consensus[/], as the trader runs it")
    _checks(report.checks)
    b = report.bar_ms
    out.print(
        f"per bar, every member and the rule (Predictor.update): p50 {b.p50:.3f} ms, p99 "
        f"{b.p99:.3f} ms over {b.calls} bars of {escape(report.bars)}"
    )


def _print(report: CertifyReport | ConsensusCertifyReport, target: Path) -> None:
    from xtune.runtime.consensus_certify import ConsensusCertifyReport

    if isinstance(report, ConsensusCertifyReport):
        _print_consensus(report)
    else:
        _print_bundle(report)
    verdict = "[bold green]CERTIFIED[/]" if report.passed else "[bold red]NOT CERTIFIED[/]"
    out.print(f"{verdict} — report written to {escape(str(target))}")
