"""``xtune dashboard``: optuna-dashboard on a study's storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xtune.cli._app import SEARCH, app, err, out, research
from xtune.cli._search import ArtifactsOpt, StorageOpt

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@app.command(rich_help_panel=SEARCH)
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
    """Serve optuna-dashboard on the study's storage.

    Trial learning curves are its artifacts. Each trial's note, at the top of its page, says
    what became of it, with its values under the objectives' names, its baseline and its edge.
    The dashboard does not read constraints when it marks best trials; infeasible trials carry
    the user attribute feasible=false. Use `xtune status` for the true feasible front."""
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
