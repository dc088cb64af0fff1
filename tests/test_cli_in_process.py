"""tests/cli.py: a command run in the test process prints what the entry point prints in a
process of its own, byte for byte, and exits with the same code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import xtune, xtune_process


@pytest.mark.parametrize(
    "args",
    [("features", "list", "--group", "pattern"), ("data", "check", "nowhere.csv")],
    ids=["a table", "an error"],
)
def test_in_this_process_as_in_a_process_of_its_own(tmp_path: Path, args: tuple[str, ...]) -> None:
    here, there = xtune(*args, cwd=tmp_path), xtune_process(*args, cwd=tmp_path)
    assert (here.returncode, here.stdout, here.stderr) == (
        there.returncode,
        there.stdout,
        there.stderr,
    )
    assert here.stdout or here.stderr


def test_an_exception_that_escapes_is_a_traceback_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr("xtune.cli.app", broken)
    done = xtune("features", "list")
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback") and "RuntimeError: a bug" in done.stderr
