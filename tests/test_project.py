"""The project's promises about itself: README commands, CI, dependencies, lint and types."""

from __future__ import annotations

import os
import re
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
    for heavy in ("torch", "optuna", "pyarrow"):  # pyarrow: ~170 MB, only for Parquet
        assert heavy not in base and heavy not in runtime
    assert "onnxruntime" in runtime
    assert project["optional-dependencies"]["parquet"] == ["pyarrow>=14"]
    # torch is a range that 2.13.0 satisfies, so a pre-installed build is kept
    search = project["optional-dependencies"]["search"]
    assert any(d.startswith("torch>=") and "<" not in d for d in search)
    assert "xtune[runtime,parquet]" in search
    assert project["scripts"]["xtune"] == "xtune.cli:main"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff-format"),
        # strict mypy reads torch's, pandas' and optuna's stubs: 30 s without its cache
        pytest.param([sys.executable, "-m", "mypy"], id="mypy", marks=pytest.mark.slow),
    ],
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


FMT_SKIPS = 10  # the most ``# fmt: skip`` comments xtune/ may hold


def test_fmt_skip_only_where_the_formatter_breaks_meaning() -> None:
    """``ruff format`` lays the code out; ``# fmt: skip`` is for what formatting would break
    (an aligned table whose columns mean something), never for keeping a call compact."""
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "xtune").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "# fmt: skip" in line or "# fmt: off" in line
    ]
    assert len(found) <= FMT_SKIPS, (
        f"{len(found)} '# fmt: skip' / '# fmt: off' in xtune/ (at most {FMT_SKIPS}): keep one "
        f"only where ruff format would break meaning, not for compactness: {found}"
    )


def test_the_readme_is_a_readme() -> None:
    """The manual lives in docs/; the README is the two commands, what xtune is, and links."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"


HISTORY = re.compile(
    r"before this (change|commit|fix)|re-measured|previous commit|\(was [0-9]|\bwas (\S+ )?before\b"
    r"|in an earlier run|issue \d+",
    re.IGNORECASE,
)


def test_docs_describe_what_is_not_how_it_got_there() -> None:
    """History belongs in commit messages; measurements on the benchmarks page."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}: {m.group(0)!r}"
        for page in pages
        for m in HISTORY.finditer(page.read_text())
    ]
    assert found == []


def test_the_docs_site_builds_with_every_link_and_reference_resolved(tmp_path: Path) -> None:
    """`mkdocs build --strict` fails on a broken link, a missing anchor or a bad reference."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "benchmarks" / "index.html").is_file()


def test_no_module_is_hidden_by_a_name_of_its_package() -> None:
    """``import xtune.runtime.predict as m`` must give a module or fail, never a function: a
    module whose package exports a function of the same name is private (``_predict.py``)."""
    import importlib
    import pkgutil
    import types

    import xtune

    hidden = []
    for info in pkgutil.walk_packages(xtune.__path__, "xtune."):
        parent, _, leaf = info.name.rpartition(".")
        if leaf == "__main__":
            continue
        attribute = getattr(importlib.import_module(parent), leaf, None)
        importlib.import_module(info.name)
        if attribute is not None and not isinstance(attribute, types.ModuleType):
            hidden.append(info.name)
    assert not hidden, f"modules hidden by a function of their package: {hidden}"
