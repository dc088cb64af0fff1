"""``xtune search``, ``create-study``, ``enqueue``, ``sweep`` and ``status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from xtune.cli._app import (
    OPERATIONS,
    SEARCH,
    Format,
    FormatOpt,
    JsonOpt,
    app,
    data_option,
    deprecated,
    open_study_file,
    out,
    output_format,
    research,
)
from xtune.cli._progress import TrialsBar
from xtune.cli._status import print_summary

StudyArg = Annotated[
    Path,
    typer.Argument(help="Study file (TOML), e.g. studies/quickstart.toml.", show_default=False),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Storage URL, e.g. postgresql+psycopg2://user@host/db (give the password in PGPASSWORD, "
        "not in the URL), or a journal file path. Default: $XTUNE_STORAGE, the study file's "
        "storage, or <name>.journal beside the study file."
    ),
]
ArtifactsOpt = Annotated[
    str | None,
    typer.Option(
        help="Artifact directory (learning curves). Default: $XTUNE_ARTIFACTS, or beside the journal file."
    ),
]

WorkersOpt = Annotated[
    str,
    typer.Option(
        help="Local worker processes on this study: a number, or auto (with --device cuda: as "
        "many per GPU as its free memory holds for the study's largest model; on cpu: 1)."
    ),
]


DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda (workers spread over all GPUs) or cuda:K.")]


@app.command(rich_help_panel=SEARCH)
def search(
    study_file: StudyArg,
    storage: StorageOpt = None,
    data: Annotated[
        str | None, data_option("Bars to search on instead of the study's \\[data] source.")
    ] = None,
    allow_other_data: Annotated[
        bool,
        typer.Option(
            "--allow-other-data",
            help="Add trials on bars other than those the study was created with (marked in status).",
        ),
    ] = False,
    n_trials: Annotated[
        int | None,
        typer.Option(help="Run this many more trials (default: up to the study's budget).", min=1),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Start no new trial after this many seconds.", min=1)
    ] = None,
    device: DeviceOpt = "cpu",
    workers: WorkersOpt = "1",
    artifacts: ArtifactsOpt = None,
) -> None:
    """Run a study's multi-objective search, or resume it.

    Objectives as the study file says (default: maximize validation accuracy, minimize
    validation loss). Creates the study if needed, then runs trials until the study's budget.
    Trials over the resource cap are stored as infeasible without training. Ctrl-C stops
    cleanly: the running trial is marked failed, every finished trial stays stored; run the
    command again to resume."""
    from xtune.search import load_study_config, mask, resolve_storage, run_search, summary
    from xtune.search.gpus import parse_workers

    count = parse_workers(workers)  # before any work
    env = research()
    config = load_study_config(study_file)
    url = resolve_storage(config, storage, env)
    header = (
        f"study [bold]{config.study.name}[/] on {mask(url)}, sampler {config.study.sampler}, "
        f"objectives {', '.join(config.study.objectives)}, {workers} worker(s) on {device}"
    )
    bar = TrialsBar(header)
    study = bar.run(
        lambda: run_search(
            config,
            url,
            env,
            n_trials=n_trials,
            timeout=timeout,
            workers=count,
            device=device,
            data=data,
            allow_other_data=allow_other_data,
            artifacts=artifacts,
            on_progress=bar.update,
        )
    )
    print_summary(summary(study))


@app.command("create-study", rich_help_panel=OPERATIONS)
def create_study_command(
    study_file: StudyArg,
    storage: StorageOpt = None,
    data: Annotated[
        str | None, data_option("Bars to create it on instead of the study's \\[data] source.")
    ] = None,
) -> None:
    """Create the study and its database schema, then exit.

    The docker-compose job that runs before the workers: many processes creating tables at
    once on a fresh database fail."""
    from xtune.features import load_bars
    from xtune.search import create_study, load_study_config, mask, resolve_storage

    env = research()
    config = load_study_config(study_file)
    url = resolve_storage(config, storage, env)
    study, _ = create_study(
        config, url, env, load_bars(data or config.data.source, columns=config.features.columns)
    )
    out.print(
        f"study '{study.study_name}' ready in {mask(url)} ({len(study.trials)} trials so far)"
    )


@app.command("enqueue", rich_help_panel=SEARCH)
def enqueue_command(
    study_file: StudyArg,
    params_file: Annotated[
        Path,
        typer.Argument(
            help='JSON: one setup or a list, each {"label": ..., "features": [...], '
            '"parameters": {...}} in the study\'s own names (as `status --format json` prints them).',
            show_default=False,
        ),
    ],
    storage: StorageOpt = None,
) -> None:
    """Queue your own setups as the study's next trials.

    Setups: today's live models, say. Each is checked against the study's space and caps before
    anything is stored; a setup the study already holds (the same parameters) is skipped. `xtune
    search` then runs them first, and `xtune status` shows how each fared under its label."""
    from xtune.search import enqueue, load_entries

    opened = open_study_file(study_file, storage)
    entries = load_entries(params_file, opened.config, opened.study)  # all, before any is stored
    for entry in entries:
        queued = enqueue(opened.study, opened.config, entry)
        what = "queued" if queued else "already in the study, skipped"
        out.print(f'"{escape(entry.label)}": {what}', highlight=False)


@app.command("sweep", rich_help_panel=OPERATIONS)
def sweep_command(
    study_file: StudyArg,
    storage: StorageOpt = None,
    grace: Annotated[
        float | None,
        typer.Option(
            help="Seconds without a heartbeat before a trial counts as orphaned (default: $XTUNE_GRACE_S or 60)."
        ),
    ] = None,
) -> None:
    """Fail orphaned RUNNING trials and queue them again.

    Each is marked FAIL and its parameters queued again (twice at most). On a database, a trial
    is orphaned when its heartbeat is stale, or when it never sent one and started longer ago
    than the grace period (a worker killed in its first seconds). On a journal file, when the
    process that ran it on this machine is gone. Workers sweep on start too; run this when no
    worker is left."""
    from xtune.search._sweep import sweep

    opened = open_study_file(study_file, storage)
    grace_s = opened.settings.grace_s if grace is None else grace
    swept = sweep(opened.study, opened.storage, grace_s=grace_s)
    out.print(f"swept {len(swept)} orphaned trial(s): {swept}" if swept else "no orphaned trials")


@app.command(rich_help_panel=SEARCH)
def status(
    study_file: StudyArg,
    storage: StorageOpt = None,
    fmt: FormatOpt = Format.table,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder to write the plots to (default: <name>.report/ beside the study file).",
            metavar="FOLDER",
        ),
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Do not write plots.")] = False,
    as_json: JsonOpt = False,
    plots: Annotated[Path | None, typer.Option(hidden=True, help="Deprecated: --out.")] = None,
) -> None:
    """Print trial counts and the Pareto front; write plots.

    Each front trial's accuracy is shown beside its majority-class baseline. The plots, as PNG
    and HTML: the Pareto front of the trained trials (stopped ones marked, over-cap and
    diverged ones left out), signed parameter importances per objective, history and feature
    usage. The table drops the model's columns that do not fit the terminal (--format json has
    every figure)."""
    from xtune.search import summary, write_plots

    fmt = output_format(fmt, as_json)
    if plots is not None:
        deprecated("status --plots", "--out")
    opened = open_study_file(study_file, storage)
    config, study = opened.config, opened.study
    info = summary(study)
    written: list[Path] = []
    if not no_plots:
        folder = out_dir or plots or config.path.with_name(f"{config.study.name}.report")
        written = write_plots(study, folder)
        info = info.with_plots([str(p) for p in written])
    if fmt is Format.json:
        out.print_json(info.to_json())
        return
    print_summary(info)
    if written:
        out.print(f"plots: {written[0].parent}/ ({len(written)} files)")
