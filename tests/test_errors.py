"""Every command, pointed at something that does not exist, fails in one line with exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import SERVERS, xtune
from tests.search_tests.studies import write_study


def _xtune(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return xtune(*args, cwd=cwd, env=env, columns=300)


def _one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study file whose study was never created, and one created with no trials yet."""
    root = tmp_path_factory.mktemp("errors")
    (root / "never").mkdir()
    (root / "empty").mkdir()
    write_study(root / "never", name="never_searched")
    write_study(root / "empty", name="no_trials_yet")
    created = _xtune("create-study", "empty/study.toml", cwd=root)
    assert created.returncode == 0, created.stderr
    return root


MISSING = [
    (("status", "never/study.toml", "--no-plots"), ("no study 'never_searched'", "xtune search")),
    (("sweep", "never/study.toml"), ("no study 'never_searched'",)),
    (("replay", "never/study.toml", "--trial", "0"), ("no study 'never_searched'",)),
    (("export", "never/study.toml", "--out", "b"), ("no study 'never_searched'",)),
    (("replay", "empty/study.toml", "--trial", "5"), ("no trial 5",)),
    (("export", "empty/study.toml", "--out", "b", "--trial", "5"), ("no trial 5",)),
    (("export", "empty/study.toml", "--out", "b"), ("no feasible trained trial",)),
    (
        ("distill", "never/study.toml", "--out", "b", "--max-params", "99"),
        ("no study 'never_searched'",),
    ),
    (
        ("distill", "empty/study.toml", "--out", "b", "--max-params", "99", "--trial", "5"),
        ("no trial 5",),
    ),
    (("predict", "no_bundle", "--data", "sample:synthetic"), ("no_bundle", "no such bundle")),
    (("search", "nowhere.toml"), ("nowhere.toml", "not found")),
    (("create-study", "nowhere.toml"), ("nowhere.toml", "not found")),
    (("status", "nowhere.toml"), ("nowhere.toml", "not found")),
    (("dashboard", "nowhere.toml"), ("nowhere.toml", "not found")),
    (("data", "check", "--data", "nowhere.csv"), ("nowhere.csv",)),
    (("features", "build", "--data", "nowhere.csv", "--out", "f.parquet"), ("nowhere.csv",)),
]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # a server command starts a process (tests/cli.py): seconds, where the others take ms
        pytest.param(a, w, id=" ".join(a[:2]), marks=[pytest.mark.slow] if a[0] in SERVERS else [])
        for a, w in MISSING
    ],
)
def test_every_command_names_what_is_missing_in_one_line(
    folder: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    _one_clear_line(_xtune(*args, cwd=folder), *words)
    assert not (folder / "b").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [("XTUNE_HEARTBEAT_S", "abc"), ("XTUNE_GRACE_S", "-1"), ("XTUNE_GRACE_S", "5")],
)
def test_a_bad_setting_is_one_line_before_any_work(folder: Path, name: str, value: str) -> None:
    env = {"XTUNE_HEARTBEAT_S": "20", name: value}
    _one_clear_line(_xtune("status", "empty/study.toml", "--no-plots", cwd=folder, env=env), name)


def test_status_writes_its_plots_to_out_and_takes_plots_as_a_deprecated_alias(folder: Path) -> None:
    new = _xtune("status", "empty/study.toml", "--out", "plots_new", "--format", "json", cwd=folder)
    assert new.returncode == 0 and "warning" not in new.stderr, new.stderr
    assert any((folder / "plots_new").iterdir())
    old = _xtune("status", "empty/study.toml", "--plots", "plots_old", "--json", cwd=folder)
    assert old.returncode == 0, old.stderr
    warnings = [line for line in old.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "use --out" in warnings[1] and "--format json" in warnings[0]
    assert sorted(p.name for p in (folder / "plots_old").iterdir()) == sorted(
        p.name for p in (folder / "plots_new").iterdir()
    )
