"""``xtune certify`` (trading PC, no torch or optuna): is this PC fit to run this bundle?"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from xtune.cli._app import app, out
from xtune.errors import XtuneError

if TYPE_CHECKING:
    from xtune.runtime.certify import CertifyReport

REPORT = "certify.json"


@app.command()
def certify(
    bundle_dir: Annotated[
        Path, typer.Argument(help="Bundle directory from `xtune export`.", show_default=False)
    ],
    bars: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet bars at the model's interval to time the Predictor on (the "
            "last history + 200 are used); default: the bars the bundle stores."
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help=f"Where to write {REPORT} (a file or a folder); default: here."),
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Check this cap (ms per window) instead of the study's."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON, not a summary.")
    ] = False,
) -> None:
    """Certify a bundle on this PC (the trading PC) before a bot trades with it.

    Verifies the checksums; re-checks onnxruntime fp32 against torch's probabilities (within
    1e-4) and int8 against fp32 (99%+ of classes; else the Predictor uses fp32 here) on test
    windows stored at export; times the Predictor per bar (features included, p50/p99) and the
    bare model; compares with the study's latency cap and with the latency measured at export;
    names the CPU's vector instructions. Writes certify.json (never into the bundle). Exit 0:
    certified; 1: a check failed; 2: bad input. Needs neither torch nor optuna.
    """
    from xtune.runtime.certify import certify as run_certify

    target = report_target(out_path, bundle_dir)  # before any work
    report = run_certify(bundle_dir, bars, max_latency_ms)
    write_report(report.to_json(), target)
    if as_json:
        print(report.to_json())
    else:
        _print(report, target)
    if not report.passed:
        raise typer.Exit(1)


def report_target(out_path: Path | None, bundle_dir: Path) -> Path:
    """Where certify.json goes: never into the bundle, never over a file xtune did not write."""
    target = Path.cwd() / REPORT if out_path is None else out_path
    if target.is_dir():
        target = target / REPORT
    if not target.parent.is_dir():
        raise XtuneError(
            f"--out {target}: the folder {target.parent} does not exist; create it first."
        )
    if bundle_dir.is_dir() and target.parent.resolve() == bundle_dir.resolve():
        raise XtuneError(
            f"--out {target}: that is inside the bundle, which must stay exactly as exported "
            "(its checksums would no longer cover every file). Write the report elsewhere."
        )
    if target.is_symlink() or (target.exists() and not _ours(target)):
        raise XtuneError(
            f"--out {target}: a file xtune did not write is there; xtune never overwrites it. "
            "Choose another --out."
        )
    return target


def _ours(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("format") == "xtune-certify")
    except (OSError, ValueError, AttributeError):
        return False


def write_report(text: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(target)  # atomic: a reader sees the old report or the new one


def _print(report: CertifyReport, target: Path) -> None:
    from xtune.runtime.certify import VECTOR_FLAGS

    cpu = report.cpu
    vector = (
        "unknown"
        if cpu.vector is None
        else ", ".join(cpu.vector) or "none of " + ", ".join(VECTOR_FLAGS)
    )
    out.print(
        f"{escape(report.bundle)} (bundle format {report.format_version}) on {escape(cpu.name)}"
    )
    out.print(f"vector instructions: {vector}")
    table = Table(show_header=True)
    for col in ("check", "result", "detail"):
        table.add_column(col)
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[yellow]n/a[/]"}
    for c in report.checks:
        table.add_row(c.name, marks[c.ok], escape(c.detail))
    out.print(table)
    b = report.bar_ms
    out.print(f"per bar, features included (Predictor.update): p50 {b.p50:.3f} ms, p99 "
              f"{b.p99:.3f} ms over {b.calls} bars of {escape(report.bars)}")  # fmt: skip
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
    verdict = "[bold green]CERTIFIED[/]" if report.passed else "[bold red]NOT CERTIFIED[/]"
    out.print(f"{verdict} — report written to {escape(str(target))}")
