"""The project's promises about itself: README commands, CI, dependencies, lint and types."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    run, test = _readme_commands()
    assert run in head and test in head
    assert "torch==2.13.0" in run and "xtune search studies/quickstart.toml" in run
    assert "torch==2.13.0" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci


def test_runtime_install_has_no_torch_or_optuna() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    runtime = " ".join(project["optional-dependencies"]["runtime"]).lower()
    for heavy in ("torch", "optuna"):
        assert heavy not in base and heavy not in runtime
    assert "onnxruntime" in runtime
    # torch is a range that 2.13.0 satisfies, so a pre-installed build is kept
    search = project["optional-dependencies"]["search"]
    assert any(d.startswith("torch>=") and "<" not in d for d in search)
    assert project["scripts"]["xtune"] == "xtune.cli:main"


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], [sys.executable, "-m", "mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_lint_and_types_are_clean(command: list[str]) -> None:
    if command[0] == "ruff" and shutil.which("ruff") is None:
        pytest.skip("ruff not installed (pip install -e '.[dev]')")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_function_over_60_lines_and_no_module_over_400() -> None:
    """The shape the style guide asks for: a long function is two things, a long module too."""
    import ast

    too_long = []
    for path in sorted((ROOT / "xtune").rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines"
                    )
    assert too_long == []
