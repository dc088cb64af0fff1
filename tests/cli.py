"""Running the ``xtune`` command line from a test.

``xtune(...)`` runs a command in this process, as the entry point runs it: the test session has
imported torch, pandas and optuna once, so a command costs what it does, not a new interpreter's
start (seconds per command on a busy 2-core machine). The servers (``dashboard``,
``storage-proxy``) run in a process even so, under a timeout: one that failed to refuse its
input would serve, and block the test session. ``xtune_process(...)`` starts the real entry
point (``python -m xtune``) for what only a process shows: the interpreter's start, signals,
imports that must fail, an environment of its own.

Both return a ``subprocess.CompletedProcess`` with the exit code, stdout and stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
import types
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

COLUMNS = 200  # wide enough that no table of ours wraps
SERVERS = frozenset({"dashboard", "storage-proxy"})


def xtune(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    columns: int = COLUMNS,
) -> subprocess.CompletedProcess[str]:
    """``xtune ARGS`` in this process: what a user of the installed command sees.

    Args:
        args: the command line after ``xtune``.
        cwd: the working directory for the command (the test's own, if None).
        env: environment variables to set for the command; a None value unsets one.
        columns: the terminal width the command's tables see.

    An exception that escapes the entry point is printed on stderr as a traceback with exit
    code 1, as Python does in a process; ``SystemExit`` gives its code. A server command runs
    in a process (the module says why).
    """
    if next((a for a in args if not a.startswith("-")), None) in SERVERS:
        unset = [k for k, v in (env or {}).items() if v is None]
        kept = {k: v for k, v in (env or {}).items() if v is not None}
        return xtune_process(*args, cwd=cwd, env={"COLUMNS": str(columns), **kept}, unset=unset)
    from typer.testing import CliRunner

    from xtune.cli import main

    overrides: dict[str, str | None] = {"COLUMNS": str(columns), "NO_COLOR": "1", **(env or {})}
    runner = CliRunner()
    with (
        runner.isolation(env=overrides) as (stdout, stderr, _),
        contextlib.chdir(cwd or Path.cwd()),
        _as_the_entry_point(args),
        _consoles_at(columns),
        _logging_to_stderr(),
    ):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # what the interpreter prints before it exits 1
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["xtune", *args], code, out, err)


def xtune_process(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m xtune ARGS`` in a new process, with ``env`` on top of this one's and the
    variables ``unset`` left out."""
    full = os.environ | {"COLUMNS": str(COLUMNS), "NO_COLOR": "1"} | dict(env or {})
    for name in unset:
        full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "xtune", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
        timeout=timeout,
    )


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("text"): Python prints it and exits 1
    return 1


@contextlib.contextmanager
def _as_the_entry_point(args: tuple[str, ...]) -> Iterator[None]:
    """``sys.argv`` as the installed ``xtune`` script sees it, and a ``__main__`` that is not
    pytest's (click names the program in usage lines after it)."""
    argv, main = sys.argv, sys.modules["__main__"]
    sys.argv = ["xtune", *args]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.argv, sys.modules["__main__"] = argv, main


@contextlib.contextmanager
def _consoles_at(columns: int) -> Iterator[None]:
    """The CLI's rich consoles at ``columns`` wide, whatever COLUMNS said when they were made."""
    from rich.console import Console

    consoles = [
        value
        for name, module in list(sys.modules.items())
        if name.startswith("xtune.cli")
        for value in vars(module).values()
        if isinstance(value, Console)
    ]
    widths = [console._width for console in consoles]
    for console in consoles:
        console.width = columns
    try:
        yield
    finally:
        for console, width in zip(consoles, widths, strict=True):
            console._width = width


@contextlib.contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Log records reach this command's stderr as they reach a process's: Optuna's handler
    writes there, and a warning of a logger without a handler is printed as Python's last
    resort prints it (the message alone; here pytest's own handlers sit on the root)."""
    import optuna

    optuna.logging.get_logger("optuna")  # its handler made now, on the test's stderr, not ours
    optuna_handlers = [
        h
        for h in logging.getLogger("optuna").handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    streams = [h.setStream(sys.stderr) for h in optuna_handlers]
    last_resort = logging.StreamHandler(sys.stderr)
    last_resort.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(last_resort)
    try:
        yield
    finally:
        root.removeHandler(last_resort)
        for handler, stream in zip(optuna_handlers, streams, strict=True):
            if stream is not None:
                handler.setStream(stream)
