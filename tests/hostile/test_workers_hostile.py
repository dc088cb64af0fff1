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


def _fixed(study_file: Path, storage: Path) -> list[dict[str, object]]:
    """The parameters of the setups queued in the study, as stored."""
    trials = _study(study_file, str(storage)).get_trials(deepcopy=False)
    return [t.system_attrs["fixed_params"] for t in trials if t.state == TrialState.WAITING]


@pytest.fixture
def searched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """(study file, journal) of a study created from it: lr in [1e-3, 1e-2]."""
    study_file = write_study(tmp_path, name="real")
    code, _, err = _cli(capsys, "create-study", str(study_file))
    assert code == 0, err
    return study_file, tmp_path / "real.journal"


def _other_file(tmp_path: Path, **changes: str) -> Path:
    """A study file named like the real one, in another folder, with ``changes`` (old text
    -> new text) made to it."""
    (tmp_path / "other").mkdir()
    path = write_study(tmp_path / "other", name="real")
    text = path.read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


def _enqueue(
    capsys: pytest.CaptureFixture[str], study_file: Path, journal: Path, setup: str
) -> tuple[object, str]:
    params = study_file.with_name("setup.json")
    params.write_text(setup)
    code, out, err = _cli(
        capsys, "enqueue", str(study_file), str(params), "--storage", str(journal)
    )
    return code, out + err


def test_enqueue_checks_the_space_the_study_is_searched_in_not_the_file_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], searched: tuple[Path, Path]
) -> None:
    _, journal = searched
    wide = _other_file(tmp_path, **{"lr = [1e-3, 1e-2]": "lr = [1e-3, 1e-1]"})
    code, said = _enqueue(capsys, wide, journal, '{"label": "wide", "parameters": {"lr": 0.09}}')
    assert code == 2, said
    lines = said.strip().splitlines()
    assert len(lines) == 1 and '"wide"' in lines[0] and "lr = 0.09" in lines[0], lines
    assert "a number in [0.001, 0.01]" in lines[0], lines
    assert _fixed(*searched) == []


def test_enqueue_refuses_a_file_with_other_objectives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], searched: tuple[Path, Path]
) -> None:
    _, journal = searched
    other = _other_file(tmp_path, **{'objectives = ["accuracy", "loss"]': 'objectives = ["loss"]'})
    code, said = _enqueue(capsys, other, journal, '{"parameters": {"lr": 0.003}}')
    assert code == 2 and "objectives ['accuracy', 'loss']" in said, said
    assert _fixed(*searched) == []


def test_enqueue_refuses_setups_that_switch_every_feature_off(
    capsys: pytest.CaptureFixture[str], searched: tuple[Path, Path]
) -> None:
    study_file, journal = searched
    off = '{"use/returns": false, "use/momentum": false, "use/volatility": false}'
    code, said = _enqueue(capsys, study_file, journal, f'{{"parameters": {off}}}')
    assert code == 2 and "parameters switch 0 group(s) on" in said and "min = 1" in said, said
    code, said = _enqueue(capsys, study_file, journal, '{"features": []}')
    assert code == 2 and "0 group(s) on" in said, said
    assert _fixed(*searched) == []


def test_enqueue_takes_a_whole_number_written_with_a_point(
    capsys: pytest.CaptureFixture[str], searched: tuple[Path, Path]
) -> None:
    study_file, journal = searched
    code, said = _enqueue(capsys, study_file, journal, '{"parameters": {"lstm/hidden": 16.0}}')
    assert code == 0 and "queued" in said, said
    ((fixed),) = _fixed(*searched)
    assert fixed["lstm/hidden"] == 16 and isinstance(fixed["lstm/hidden"], int)
    code, said = _enqueue(capsys, study_file, journal, '{"parameters": {"lstm/hidden": 16.5}}')
    assert code == 2 and "not a whole number; write a whole number in [8, 32]" in said, said


@pytest.mark.parametrize(
    ("change", "setup", "said"),
    [
        (
            {'families = ["lstm"]': 'families = ["lstm", "xlstm"]'},
            '{"parameters": {"family": "xlstm"}}',
            """not one of the study's choices; write one of ["lstm"]. study.toml says""",
        ),
        (
            {'families = ["lstm"]': 'families = ["lstm", "xlstm"]'},
            '{"parameters": {"xlstm/embed": 16}}',
            "not a parameter of the study in storage",
        ),
        (
            {'"volatility"]': '"volatility", "trend"]'},
            '{"features": ["returns", "trend"]}',
            'switches its features otherwise than study.toml does ("use/trend")',
        ),
    ],
)
def test_enqueue_refuses_what_only_the_other_file_searches(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    searched: tuple[Path, Path],
    change: dict[str, str],
    setup: str,
    said: str,
) -> None:
    other = _other_file(tmp_path, **change)
    code, message = _enqueue(capsys, other, searched[1], setup)
    assert code == 2 and said in message, message
    assert _fixed(*searched) == []
