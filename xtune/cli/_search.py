"""``xtune search``, ``status``, ``replay`` and ``dashboard``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xtune.cli._app import app, err, open_study_file, out, research
from xtune.cli._status import print_summary

StudyArg = Annotated[
    Path,
    typer.Argument(help="Study file (TOML), e.g. studies/quickstart.toml.", show_default=False),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Storage URL, e.g. postgresql+psycopg2://user:pass@host/db, or a journal file path. "
        "Default: $XTUNE_STORAGE, the study file's storage, or <name>.journal beside the study file."
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

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@app.command()
def search(
    study_file: StudyArg,
    storage: StorageOpt = None,
    data: Annotated[
        str | None, typer.Option(help="Bars to search on instead of the study's [data] source.")
    ] = None,
    allow_other_data: Annotated[
        bool,
        typer.Option(
            help="Add trials on bars other than those the study was created with (marked in status)."
        ),
    ] = False,
    n_trials: Annotated[
        int | None,
        typer.Option(help="Run this many more trials (default: up to the study's budget).", min=1),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Start no new trial after this many seconds.", min=1)
    ] = None,
    device: Annotated[
        str, typer.Option(help="cpu, cuda (workers spread over all GPUs) or cuda:K.")
    ] = "cpu",
    workers: WorkersOpt = "1",
    artifacts: ArtifactsOpt = None,
) -> None:
    """Run a multi-objective search (maximize validation accuracy, minimize validation loss).

    Creates the study if needed, then runs trials until the study's budget. Trials over the
    resource cap are stored as infeasible without training. Ctrl-C stops cleanly: the running
    trial is marked failed, every finished trial stays stored; run the command again to resume.
    """
    from xtune.search import load_study_config, mask, resolve_storage, run_search, summary
    from xtune.search.gpus import parse_workers

    count = parse_workers(workers)  # before any work
    env = research()
    config = load_study_config(study_file)
    url = resolve_storage(config, storage, env)
    header = (f"study [bold]{config.study.name}[/] on {mask(url)}, sampler {config.study.sampler}, "
              f"objectives {', '.join(config.study.objectives)}, {workers} worker(s) on {device}")  # fmt: skip
    progress, on_progress = _trials_bar(header)
    try:
        study = run_search(
            config, url, env, n_trials=n_trials, timeout=timeout, workers=count, device=device,
            data=data, allow_other_data=allow_other_data, artifacts=artifacts,
            on_progress=on_progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        _stop(progress)
        err.print("[yellow]interrupted[/]: the running trial(s) are marked FAIL; finished trials are "
                  "stored. Run the same command to resume.")  # fmt: skip
        raise typer.Exit(130) from None
    finally:
        _stop(progress)
    print_summary(summary(study))


def _trials_bar(header: str) -> tuple[Progress, Callable[[float, int, int], None]]:
    """The search's progress bar and its ``on_progress``. The first call comes once the bars
    and features passed: only then are the header and the bar printed, so bad input is the
    one line printed, as for every command."""
    progress = Progress(
        TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[front]}"),
        TimeElapsedColumn(), console=err, transient=False,
    )  # fmt: skip
    task = progress.add_task("search", total=None, front="")

    def on_progress(done: float, target: int, front: int) -> None:
        if not progress.live.is_started:
            out.print(header)
            progress.start()
        progress.update(task, completed=done, total=target, front=f"feasible Pareto front: {front}")

    return progress, on_progress


def _stop(progress: Progress) -> None:
    """End the bar if it began (stopping one that never began prints an empty line)."""
    if progress.live.is_started:
        progress.stop()


@app.command("create-study")
def create_study_command(study_file: StudyArg, storage: StorageOpt = None) -> None:
    """Create the study and its database schema once, then exit (the docker-compose job that
    runs before the workers: many processes creating tables at once on a fresh database fail)."""
    from xtune.features import load_bars
    from xtune.search import create_study, load_study_config, mask, resolve_storage

    env = research()
    config = load_study_config(study_file)
    url = resolve_storage(config, storage, env)
    study, _ = create_study(
        config, url, env, load_bars(config.data.source, columns=config.features.columns)
    )
    out.print(
        f"study '{study.study_name}' ready in {mask(url)} ({len(study.trials)} trials so far)"
    )


@app.command("enqueue")
def enqueue_command(
    study_file: StudyArg,
    params_file: Annotated[
        Path,
        typer.Argument(
            help='JSON: one setup or a list, each {"label": ..., "features": [...], '
            '"parameters": {...}} in the study\'s own names (as `status --json` prints them).',
            show_default=False,
        ),
    ],
    storage: StorageOpt = None,
) -> None:
    """Queue your own setups (today's live models) as the study's next trials.

    Each is checked against the study's space and caps before anything is stored; a setup the
    study already holds (the same parameters) is skipped. `xtune search` then runs them first,
    and `xtune status` shows how each fared under its label."""
    from xtune.search import enqueue, load_entries

    opened = open_study_file(study_file, storage)
    entries = load_entries(params_file, opened.config, opened.study)  # all, before any is stored
    for entry in entries:
        queued = enqueue(opened.study, opened.config, entry)
        what = "queued" if queued else "already in the study, skipped"
        out.print(f'"{escape(entry.label)}": {what}', highlight=False)


@app.command("sweep")
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
    """Mark orphaned RUNNING trials FAIL and queue their parameters again (twice at most).

    On a database, a trial is orphaned when its heartbeat is stale, or when it never sent one
    and started longer ago than the grace period (a worker killed in its first seconds). On a
    journal file, when the process that ran it on this machine is gone. Workers sweep on start
    too; run this when no worker is left."""
    from xtune.search._sweep import sweep

    opened = open_study_file(study_file, storage)
    grace_s = opened.settings.grace_s if grace is None else grace
    swept = sweep(opened.study, opened.storage, grace_s=grace_s)
    out.print(f"swept {len(swept)} orphaned trial(s): {swept}" if swept else "no orphaned trials")


@app.command()
def status(
    study_file: StudyArg,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    plots: Annotated[
        Path | None,
        typer.Option(help="Where to write plots (default: <name>.report/ beside the study)."),
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Do not write plots.")] = False,
) -> None:
    """Trial counts by state and the feasible Pareto front, each trial's accuracy beside its
    majority-class baseline; writes plots (Pareto front of the trained trials, stopped ones
    marked, over-cap and diverged ones left out; signed parameter importances per objective,
    history, feature usage) as PNG and HTML. The table drops the model's columns that do not
    fit the terminal (--json has every figure)."""
    from xtune.search import summary, write_plots

    opened = open_study_file(study_file, storage)
    config, study = opened.config, opened.study
    info = summary(study)
    written: list[Path] = []
    if not no_plots:
        written = write_plots(study, plots or config.path.with_name(f"{config.study.name}.report"))
        info = info.with_plots([str(p) for p in written])
    if as_json:
        out.print_json(info.to_json())
        return
    print_summary(info)
    if written:
        out.print(f"plots: {written[0].parent}/ ({len(written)} files)")


@app.command()
def replay(
    study_file: StudyArg,
    trial: Annotated[int, typer.Option(help="Trial number to retrain.")],
    storage: StorageOpt = None,
    data: Annotated[
        str | None, typer.Option(help="The bars, if they moved since the search.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Largest allowed metric difference.")] = 1e-6,
) -> None:
    """Retrain one trial on CPU from its stored record alone and compare its metrics."""
    from xtune.search import replay as run_replay
    from xtune.search._replay import COMPARED

    opened = open_study_file(study_file, storage)
    trading = opened.config.trading
    result = run_replay(opened.study, trial, data=data, fee=trading.fee,
                        confident_share=trading.confident_share,
                        cache_dir=opened.settings.cache_dir)  # fmt: skip
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


@app.command()
def dashboard(
    study_file: Annotated[
        Path | None, typer.Argument(help="Study file; its storage is opened.", show_default=False)
    ] = None,
    storage: StorageOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to your network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Serve optuna-dashboard for the study's storage, with trial learning curves as artifacts.

    Each trial's note, at the top of its page, says what became of it, with its values under
    the objectives' names, its baseline and its edge. The dashboard does not read constraints
    when it marks best trials; infeasible trials carry the user attribute feasible=false. Use
    `xtune status` for the true feasible front."""
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    from xtune.errors import XtuneError
    from xtune.search import load_study_config, mask, open_storage, resolve_storage
    from xtune.search.study import artifacts_dir

    env = research()
    if study_file is not None:
        url = resolve_storage(load_study_config(study_file), storage, env)
    elif storage or env.storage:
        url = storage or env.storage or ""
    else:
        raise XtuneError("pass a study file or --storage (e.g. studies/quickstart.journal).")
    if host not in LOCAL_HOSTS:
        err.print(
            f"[bold yellow]warning:[/] serving on {host}: optuna-dashboard has no login, so anyone "
            f"who can reach port {port} can read and DELETE your studies. Prefer 127.0.0.1 and an "
            "SSH tunnel (ssh -L 8080:127.0.0.1:8080 research-pc)."
        )
    art = artifacts_dir(url, artifacts, env)
    art.mkdir(parents=True, exist_ok=True)
    out.print(
        f"optuna-dashboard for {mask(url)} on http://{host}:{port} (artifacts {art}); Ctrl-C stops it"
    )
    run_server(
        open_storage(url, env),
        host=host,
        port=port,
        artifact_store=FileSystemArtifactStore(str(art)),
    )
