"""The typer apps and options shared by the command modules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from xtune import __version__
from xtune.errors import XtuneError
from xtune.settings import Settings, configure_logging

if TYPE_CHECKING:  # the CLI imports the research side lazily, so --help stays fast
    import optuna
    from typer import _click

    from xtune.search.config import StudyConfig

# The help panels, in the order `xtune --help` shows them; every command is in one.
SEARCH, EXPORT, TRADING, OPERATIONS, DATA = "Search", "Export", "Trading PC", "Operations", "Data"
PANELS = (SEARCH, EXPORT, TRADING, OPERATIONS, DATA)
# Within a panel, these commands come first, in this order; any other follows as it was added.
ORDER = ("search", "status", "dashboard", "replay", "export", "distill", "predict", "certify",
         "create-study", "sweep", "check", "list", "build")  # fmt: skip


class PanelGroup(TyperGroup):
    """Lists its commands panel by panel, in the order of ``PANELS``, and in each panel in the
    order of ``ORDER``."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        def rank(name: str) -> tuple[int, int]:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            first = ORDER.index(name) if name in ORDER else len(ORDER)
            return (PANELS.index(panel) if panel in PANELS else len(PANELS)), first

        return sorted(super().list_commands(ctx), key=rank)


class Command(TyperCommand):
    """A command whose usage line leaves out its hidden (deprecated) arguments."""

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces += param.get_usage_pieces(ctx)
        return pieces


app = typer.Typer(
    cls=PanelGroup,
    help="Find the best small LSTM/xLSTM for a trading bot: leak-free features, "
    "multi-objective search under a resource cap, and a torch-free bundle for the trading PC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(cls=PanelGroup, help="Check OHLCV bars.", no_args_is_help=True)
features_app = typer.Typer(
    cls=PanelGroup,
    help="The feature catalog: list it, build it on bars, audit it.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data", rich_help_panel=DATA)
app.add_typer(features_app, name="features", rich_help_panel=DATA)

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    """How a command prints its result: a table to read, or JSON for a script."""

    table = "table"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="table: to read; json: for a script.")]
JsonOpt = Annotated[bool, typer.Option("--json", hidden=True, help="Deprecated: --format json.")]


def deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works for one release; ``new`` is what to type."""
    err.print(
        f"[yellow]warning[/]: {old} is deprecated; use {new}.", highlight=False, soft_wrap=True
    )


def output_format(chosen: Format, as_json: bool) -> Format:
    """The format to print in: ``--format``, or json for the deprecated ``--json``."""
    if as_json:
        deprecated("--json", "--format json")
        return Format.json
    return chosen


BARS_HELP = (
    "CSV or Parquet file of OHLCV bars, or a built-in sample: sample:synthetic, "
    "sample:random_walk, sample:eurusd, sample:goog."
)


def data_option(help: str = f"{BARS_HELP} Required.") -> Any:
    """The ``--data`` option: how every command takes bars."""
    return typer.Option("--data", help=help, show_default=False)


DataOpt = Annotated[str | None, data_option()]
# The positional bars of the commands that took them so: hidden, with a warning, one release.
OldBarsArg = Annotated[
    str | None,
    typer.Argument(hidden=True, help="Deprecated: --data.", show_default=False),
]


def bars_given(option: str | None, positional: str | None, usage: str) -> str:
    """The bars of a command that needs them: ``--data``, or the deprecated positional form.

    Args:
        option: the ``--data`` value.
        positional: the deprecated positional value.
        usage: the command as a user types it with ``--data``, e.g. ``xtune data check``.

    Raises:
        XtuneError: no bars, or bars given both ways.
    """
    if positional is None:
        if option is None:
            raise XtuneError(f"pass the bars with --data, e.g. `{usage} --data bars.csv`.")
        return option
    if option is not None:
        raise XtuneError(
            f"bars given twice ({positional!r} and --data {option!r}); pass --data only."
        )
    deprecated(f"bars as an argument (`{usage} BARS`)", f"`{usage} --data BARS`")
    return positional


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
