"""The typer apps and options shared by the command modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from xtune import __version__
from xtune.settings import Settings, configure_logging

if TYPE_CHECKING:  # the CLI imports the research side lazily, so --help stays fast
    import optuna

    from xtune.search.config import StudyConfig

app = typer.Typer(
    help="Find the best small LSTM/xLSTM for a trading bot: leak-free features, "
    "multi-objective search under a resource cap, and a torch-free bundle for the trading PC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate OHLCV bars.", no_args_is_help=True)
features_app = typer.Typer(
    help="The feature catalog: list it, build it on bars, audit it.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

out = Console()
err = Console(stderr=True)

SourceArg = Annotated[
    str,
    typer.Argument(
        help="CSV or Parquet file of OHLCV bars, or a built-in sample: sample:synthetic, "
        "sample:random_walk, sample:eurusd, sample:goog.",
        show_default=False,
    ),
]
WindowOpt = Annotated[int, typer.Option(help="Bars per model input window.", min=1)]
HorizonOpt = Annotated[
    list[int], typer.Option("--horizon", help="Bars ahead to predict (repeat for several).")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"xtune {__version__}")
        raise typer.Exit()


_state: dict[str, Settings] = {}


def settings() -> Settings:
    """The settings the entry resolved from ``XTUNE_*`` (read once per command)."""
    if "settings" not in _state:
        _state["settings"] = Settings.from_env()
    return _state["settings"]


@dataclass(frozen=True)
class Opened:
    """A study file's config, its existing study, that study's storage, and the settings."""

    config: StudyConfig
    study: optuna.Study
    storage: optuna.storages.BaseStorage
    settings: Settings


def open_study_file(study_file: Path, storage: str | None) -> Opened:
    """Read the study file once and open its existing study, or fail in one clear line."""
    from xtune.search import load_study_config, open_storage, open_study, resolve_storage

    env = research()
    config = load_study_config(study_file)
    url = resolve_storage(config, storage, env)
    store = open_storage(url, env)
    study = open_study(config.study.name, url, env, study_file=study_file, storage=store)
    return Opened(config, study, store, env)


def research() -> Settings:
    """Settings for a command of the research side, with Optuna's logging set up once."""
    if "logging" not in _state:
        configure_logging()
        _state["logging"] = settings()
    return settings()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Read and check the ``XTUNE_*`` environment before any command runs."""
    _state.clear()
    settings()
