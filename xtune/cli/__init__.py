"""The ``xtune`` command line. Every command explains itself with ``--help``."""

from __future__ import annotations

import sys

from rich.markup import escape

# Importing the command modules registers their commands.
from xtune.cli import (  # noqa: F401
    _audit,
    _bundle,
    _certify,
    _consensus,
    _dashboard,
    _data,
    _distill,
    _proxy,
    _replay,
    _search,
)
from xtune.cli._app import app, err
from xtune.errors import XtuneError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: user errors print one clear message and exit 2, never a traceback."""
    import warnings

    # Optuna flags features it calls experimental (metric names, grouped TPE) on every use.
    warnings.filterwarnings("ignore", message=r".*(experimental|Experimental).*")
    try:
        app()
    except (XtuneError, OSError) as exc:  # OSError: a path the OS refused, which it names
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
