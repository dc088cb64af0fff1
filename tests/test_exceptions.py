"""Every exception class xtune defines lives in xtune/errors.py, and the paths callers imported
them from before still give the same class."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import xtune
from xtune import errors

ROOT = Path(__file__).resolve().parents[1]

# Where callers (tests, bench, a trader's bot) import an error from besides xtune.errors.
OLD_PATHS = [
    "xtune.runtime.BundleError",
    "xtune.runtime.manifest.BundleError",
    "xtune.runtime.consensus.ConsensusError",
    "xtune.export.ExportError",
    "xtune.export.pick.ExportError",
    "xtune.export.DistillError",
    "xtune.export.student.DistillError",
    "xtune.search.StudyError",
    "xtune.search.config.StudyError",
    "xtune.search.StudyNotFound",
    "xtune.search.SeedError",
    "xtune.search.CapError",
    "xtune.search.storage.StorageError",
    "xtune.search.proxy.ConnectionLimit",
    "xtune.search.budget.InfeasibleSpace",
    "xtune.search.budget.TrainingKeepsFailing",
    "xtune.search.device.DeviceError",
    "xtune.models.Stopped",
]


def _exception_names() -> set[str]:
    """Names a class statement may inherit an exception through: builtins' and errors.py's."""
    found = set()
    for space in (vars(builtins), vars(errors)):
        found |= {
            n for n, o in space.items() if inspect.isclass(o) and issubclass(o, BaseException)
        }
    return found


def _base_name(base: ast.expr) -> str:
    return base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")


def test_no_module_but_errors_defines_an_exception_class() -> None:
    """One place to read every error xtune raises: a class statement elsewhere that inherits
    an exception (written anywhere in a module, even inside a function) fails, and so does
    any exception class another module defines however it inherits it."""
    names = _exception_names()
    written = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        for path in sorted((ROOT / "xtune").rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(_base_name(b) in names for b in node.bases)
    ]
    assert written == [], f"define exception classes in xtune/errors.py only: {written}"
    defined = set()
    for info in pkgutil.walk_packages(xtune.__path__, "xtune."):
        if info.name.endswith("__main__"):
            continue
        for obj in vars(importlib.import_module(info.name)).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                defined.add(obj.__module__)
    assert {m for m in defined if m.startswith("xtune")} == {"xtune.errors"}


@pytest.mark.parametrize("path", OLD_PATHS)
def test_an_old_import_path_gives_the_class_in_errors(path: str) -> None:
    module, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
