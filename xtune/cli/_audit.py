"""``xtune features audit``: the catalog's checks, on demand, on a study's features and bars."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from xtune.cli._app import DATA, Format, FormatOpt, data_option, features_app, out

if TYPE_CHECKING:  # the CLI imports the heavy modules lazily, so --help stays fast
    from xtune.features._audit import AuditReport

DEFAULT_BARS = "sample:synthetic"
AuditDataOpt = Annotated[
    str | None, data_option("Audit on these bars instead (a file or sample:).")
]


@features_app.command("audit", rich_help_panel=DATA)
def features_audit(
    study_file: Annotated[
        Path | None,
        typer.Argument(
            help="Study file: audit its candidate features (\\[features]) on its bars (\\[data]). "
            f"Without one: the whole catalog on {DEFAULT_BARS}.",
            show_default=False,
        ),
    ] = None,
    data: AuditDataOpt = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="Only this feature (repeatable).")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="Only this group (repeatable).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Check features for look-ahead, warm-up, scale and memory.

    Look-ahead: each feature is computed on all bars and on bars cut at three points (a plugin
    feature: at many more, late, calendar and random ones, each computation a fresh run of the
    plugin on a copy of the bars); the rows before a cut must agree. Warm-up: every value after
    the declared warm-up is finite, and TA-Lib's fill values fall inside it. Scale: values stay
    below 1e3, do not change when prices are x1024 and volume x8, and do not drift with the
    price level. Memory (plugin features): values computed from later starts agree within the
    declared memory. Exits 1 when any check fails, one line per failure naming the feature and
    the first offending row or value. A feature no audit can prove causal (a precomputed
    column, or a plugin feature that opens a file while it computes) is named as such, with
    the files it read, not as a pass.
    """
    from xtune.features import CATALOG, load_bars
    from xtune.features._audit import audit

    names: tuple[str, ...] | None = None
    source, feature_set = data or DEFAULT_BARS, CATALOG
    if study_file is not None:  # first: its plugins and columns become features
        from xtune.search import load_study_config

        config = load_study_config(study_file)
        names, feature_set = config.features.candidates, config.features.feature_set
        source = data or config.data.source
    names = feature_set.resolve(feature, group) if feature or group else feature_set.resolve(names)
    bars = load_bars(source, columns=feature_set.columns_of(names))
    report = audit(names, bars, feature_set=feature_set, progress=sys.stderr.isatty())
    if fmt is Format.json:
        _print_json(report)
        return
    _print_report(report)


def _print_report(report: AuditReport) -> None:
    """The table, then each failed check (exit 1) or the verdict, naming the features no
    audit can prove causal."""
    out.print(_table(report))
    for line in report.failures:
        out.print(f"[red]{escape(line)}[/]", highlight=False, soft_wrap=True)
    if report.failures:
        out.print(f"[bold red]{len(report.failures)} check(s) failed[/]", highlight=False)
        raise typer.Exit(1)
    _print_unproven(report)
    if report.unproven:
        passed, n = len(report.features) - len(report.unproven), len(report.features)
        out.print(
            f"{passed} of {n} features pass; {len(report.unproven)} cannot be proven "
            "causal (above)",
            highlight=False,
        )
        return
    out.print(f"all {len(report.features)} features pass", highlight=False)


def _print_json(report: AuditReport) -> None:
    """The report as JSON: each feature's checks (null: passed), then the failure and
    cannot-prove lines; exit 1 when a check failed, as for the table."""
    import dataclasses
    import json

    info = dataclasses.asdict(report) | {"failures": report.failures, "unproven": report.unproven}
    out.print_json(json.dumps(info))
    if report.failures:
        raise typer.Exit(1)


def _print_unproven(report: AuditReport) -> None:
    """One line per feature the checks cannot prove causal, naming the files it read."""
    for f, line in zip(
        [f for f in report.features if f.unproven and not f.problems], report.unproven, strict=True
    ):
        if f.reads:
            line = (
                f"cannot prove {f.name}: it reads {', '.join(f.reads)} while it computes, and "
                "a lookup by bar time passes the look-ahead check whatever the file holds; "
                "each row must use only what the file knew at that bar's close."
            )
        out.print(f"[yellow]{escape(line)}[/]", highlight=False, soft_wrap=True)


def _table(report: AuditReport) -> Table:
    cuts = ", ".join(str(t) for t in report.cuts)
    own = f"; plugin features at {len(report.own_cuts)} cuts" if report.own_cuts else ""
    table = Table(
        title=f"{len(report.features)} features on {report.source} "
        f"({report.rows} bars, cut at {cuts}{own})"
    )
    for col in (
        "feature",
        "group",
        "warm-up",
        "look-ahead ok",
        "warm-up ok",
        "scale ok",
        "memory ok",
    ):
        table.add_column(col, overflow="fold")
    for f in report.features:
        checks = [_verdict(what) for what in (f.lookahead, f.warmup_check, f.scale, f.memory)]
        if f.unproven and f.lookahead is None:  # read, not computed: a column, or files it opens
            what = f"reads {_names(f.reads)}" if f.reads else f.unproven
            checks[0] = f"[yellow]cannot prove: {escape(what)}[/]"
        if f.memory is None:  # measured on plugin features; the catalog's tests check its own
            checks[3] = "-" if f.memory_need is None else f"ok (needs {f.memory_need})"
        table.add_row(f.name, f.group, str(f.warmup), *checks)
    return table


def _names(paths: tuple[str, ...]) -> str:
    return ", ".join(Path(p).name for p in paths)


def _verdict(problem: str | None) -> str:
    return "ok" if problem is None else f"[red]{escape(problem)}[/]"
