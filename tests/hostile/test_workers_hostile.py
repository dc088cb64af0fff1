"""Hostile stops of ``xtune search --workers K``, damaged journal files, and setups queued
with another study file than the one the study is searched with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from tests.search_tests.test_search import _study
from xtune.cli import main
from xtune.search import open_storage


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (/proc, no psutil)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def searches() -> Iterator[list[subprocess.Popen[str]]]:
    """Searches started in their own process group; any left over is killed, whole group."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _stop_while_starting(
    tmp_path: Path,
    searches: list[subprocess.Popen[str]],
    send: Callable[[int], None],
) -> tuple[int | None, str, set[int]]:
    """Start a 4-worker search, ``send`` its pid a stop while the first worker is being
    started, and wait for the search to end. Returns (exit code or None where it hung,
    stderr, every child the search had)."""
    study_file = write_study(tmp_path, trials=50)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "4",
         "--n-trials", "12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=os.environ | {"COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip
    searches.append(proc)
    seen: set[int] = set()
    deadline = time.time() + 120
    while len(seen) < 2 and time.time() < deadline:  # the resource tracker and worker 0
        seen |= _children(proc.pid)
        time.sleep(0.005)
    assert 2 <= len(seen) < 5, f"not caught while workers start: children {seen}"
    send(proc.pid)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        seen |= _children(proc.pid)
        return None, "", seen
    return proc.returncode, err, seen


@pytest.mark.slow
def test_ctrl_c_while_workers_start_stops_the_search(
    tmp_path: Path, searches: list[subprocess.Popen[str]]
) -> None:
    def ctrl_c(pid: int) -> None:
        os.killpg(pid, signal.SIGINT)  # what a terminal sends: the whole process group

    code, err, children = _stop_while_starting(tmp_path, searches, ctrl_c)
    assert code == 130, f"the search did not stop after Ctrl-C (exit {code}): {err}"
    assert "interrupted" in err and "Traceback" not in err, err
    time.sleep(1.0)
    assert not [pid for pid in children if _alive(pid)]


@pytest.mark.slow
def test_sigterm_while_workers_start_reaches_the_worker_being_started(
    tmp_path: Path, searches: list[subprocess.Popen[str]]
) -> None:
    def terminate(pid: int) -> None:
        os.kill(pid, signal.SIGTERM)  # `kill PID`, `docker stop`: the parent alone

    code, err, children = _stop_while_starting(tmp_path, searches, terminate)
    assert code == 130, f"the search did not stop after SIGTERM (exit {code}): {err}"
    time.sleep(1.0)
    assert not [pid for pid in children if _alive(pid)]
    # the worker being started stops before its first trial, not after the whole budget
    trials = _study(tmp_path / "study.toml").get_trials(deepcopy=False)
    assert not [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING)]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    """``xtune ARGS`` in this process: (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["xtune", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def _journal(path: Path) -> None:
    """A real journal of study "damaged": a few records, one per line."""
    study = optuna.create_study(
        study_name="damaged", storage=open_storage(str(path)), directions=["maximize", "minimize"]
    )
    study.set_user_attr("note", "x")
    study.enqueue_trial({"lr": 0.003})


def _damage(journal: Path, how: str) -> int:
    """Damage one line of ``journal``; returns its number."""
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3, lines
    number = len(lines) if how == "last line" else 2
    lines[number - 1] = {
        "middle line": b"}garbage{\n",
        "last line": b'{"op_code": 4, "cut\n',  # Optuna skips it without a word, then appends
        "not a record": b"[1, 2, 3]\n",
    }[how]
    journal.write_bytes(b"".join(lines))
    return number


@pytest.mark.parametrize("how", ["middle line", "last line", "not a record"])
def test_a_damaged_journal_is_one_line_naming_it_and_stays_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    study_file = write_study(tmp_path, name="damaged")
    journal = tmp_path / "damaged.journal"
    _journal(journal)
    number = _damage(journal, how)
    before = journal.read_bytes()
    for command in (["status", "--no-plots"], ["search", "--n-trials", "1"]):
        code, out, err = _cli(capsys, command[0], str(study_file), *command[1:])
        assert code == 2 and out == "", (command, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"damaged.journal: line {number} " in lines[0], lines
        assert journal.read_bytes() == before


@pytest.mark.parametrize("content", [b"hello\n", b"time,open\n1,2\n", b"\x89PNG\r\n\x1a\n\x00"])
def test_a_foreign_file_where_the_journal_goes_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    study_file = write_study(tmp_path, name="foreign")
    journal = tmp_path / "foreign.journal"
    journal.write_bytes(content)
    for command in ("search", "status"):
        code, _, err = _cli(capsys, command, str(study_file))
        assert code == 2, err
        assert "foreign.journal: line 1 is not an Optuna journal record" in err, err
        assert journal.read_bytes() == content
