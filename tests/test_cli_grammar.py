"""Every command of the `xtune` CLI follows one grammar (docs/design.md, "The command line").

The tests walk the command tree typer builds, so a command added later is checked as well.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.markup import render
from typer.testing import CliRunner

from xtune.cli import app
from xtune.cli._app import ORDER, PANELS

Command = Any  # typer's own click-like command objects


def _commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Command]]:
    """Every command and group below ``command``, as ("data check", command)."""
    for name, sub in getattr(command, "commands", {}).items():
        yield " ".join((*path, name)), sub
        yield from _commands(sub, (*path, name))


def _leaves(command: Command) -> list[tuple[str, Command]]:
    return [(name, c) for name, c in _commands(command) if not hasattr(c, "commands")]


def _visible(command: Command) -> list[Any]:
    return [p for p in command.params if not p.hidden and p.name != "help"]


def _is_option(param: Any) -> bool:
    return bool(param.param_type_name == "option")


def _choices(param: Any) -> list[str] | None:
    kind = param.type_descriptor.annotation
    return (
        [m.value for m in kind] if isinstance(kind, type) and issubclass(kind, enum.Enum) else None
    )


def _prints_json(command: Command) -> bool:
    """Whether the command's code (not its docstring) names JSON: ``json.dumps``,
    ``print_json``, ``to_json()``, a ``_print_json`` helper..."""
    import ast
    import textwrap

    source = textwrap.dedent(inspect.getsource(inspect.unwrap(command.callback)))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    body = function.body[1:] if ast.get_docstring(function) else function.body
    names = [n.id for s in body for n in ast.walk(s) if isinstance(n, ast.Name)]
    names += [n.attr for s in body for n in ast.walk(s) if isinstance(n, ast.Attribute)]
    return any("json" in name.lower() for name in names)


def _check_panels(root: Command) -> list[str]:
    return [f"{name}: panel {getattr(c, 'rich_help_panel', None)!r} is none of {PANELS}"
            for name, c in _commands(root) if getattr(c, "rich_help_panel", None) not in PANELS]  # fmt: skip


BARS = re.compile(r"(^|_)(bars|data|source)(_|$)")


def _check_bars(command: Command) -> list[str]:
    """Bars come as the option --data, never as an argument nor under another name."""
    wrong = []
    for p in _visible(command):
        if _is_option(p) and any("bars" in opt for opt in (*p.opts, *p.secondary_opts)):
            wrong.append(f"option {p.opts} takes bars: name it --data")
        elif BARS.search(p.name) and not (_is_option(p) and p.is_flag) and p.opts != ["--data"]:
            wrong.append(f"{p.name} takes bars as {p.opts}: take them as the option --data")
    return wrong


def _check_format(command: Command) -> list[str]:
    """A command that prints JSON offers --format table|json; --json is only a hidden alias."""
    by_opt = {opt: p for p in command.params if _is_option(p) for opt in p.opts}
    wrong = []
    if "--json" in by_opt and not by_opt["--json"].hidden:
        wrong.append("--json is visible: offer --format json (keep --json hidden)")
    prints_json = _prints_json(command) or "--json" in by_opt
    if prints_json and "--format" not in by_opt:
        wrong.append("prints JSON but has no --format table|json")
    if "--format" in by_opt and _choices(by_opt["--format"]) != ["table", "json"]:
        wrong.append(f"--format choices {_choices(by_opt['--format'])}, not table|json")
    return wrong


def _check_help(command: Command) -> list[str]:
    """Every visible parameter says what it is; hidden ones are the deprecated aliases."""
    wrong = [f"{p.name} has no help" for p in _visible(command) if not (p.help or "").strip()]
    wrong += [f"hidden {p.name}: help does not start with 'Deprecated: '" for p in command.params
              if p.hidden and not (p.help or "").startswith("Deprecated: ")]  # fmt: skip
    return wrong


def _check_out(command: Command) -> list[str]:
    """--out is a FILE (one table or report, its format by suffix) or a FOLDER (a bundle, a set
    of plots), and its help says which."""
    wrong = []
    for p in _visible(command):
        if "--out" not in p.opts:
            continue
        help_text = p.help or ""
        if p.metavar == "FILE":
            if not help_text.startswith("File ") or not re.search(r"\.[a-z]+\b", help_text):
                wrong.append("--out FILE: help must start with 'File ' and name its suffixes")
        elif p.metavar == "FOLDER":
            if not help_text.startswith("Folder "):
                wrong.append("--out FOLDER: help must start with 'Folder '")
        else:
            wrong.append(f"--out has metavar {p.metavar!r}, neither FILE nor FOLDER")
    return wrong


def _check_flags(command: Command) -> list[str]:
    """A flag that is off by default is only --flag (a --no-flag twin would do nothing)."""
    return [f"{p.opts[0]} has a useless twin {p.secondary_opts}" for p in _visible(command)
            if _is_option(p) and p.is_flag and p.secondary_opts and not p.default]  # fmt: skip


PASSWORD_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")


def _check_text(command: Command) -> list[str]:
    """No help loses a `[...]` to rich markup, and no example puts a password in a URL."""
    texts = [("help", inspect.cleandoc(command.help or ""))]
    texts += [(p.name, p.help or "") for p in command.params]
    wrong = [f"{name}: rich markup eats part of {text!r}" for name, text in texts
             if render(text).plain != text.replace("\\[", "[")]  # fmt: skip
    wrong += [f"{name}: a password in a URL: {text!r}" for name, text in texts
              if PASSWORD_IN_URL.search(text)]  # fmt: skip
    return wrong


RULES = [_check_bars, _check_format, _check_help, _check_out, _check_flags]


def _broken(root: Command) -> list[str]:
    """Every break of the grammar, one line each, naming the command."""
    found = _check_panels(root)
    found += [f"{name}: {line}" for name, c in _commands(root) for line in _check_text(c)]
    for name, command in _leaves(root):
        found += [f"{name}: {line}" for rule in RULES for line in rule(command)]
    return found


def test_every_command_follows_the_grammar() -> None:
    root = typer.main.get_command(app)
    assert len(_leaves(root)) >= 17  # the walk reaches the subcommands too
    assert _broken(root) == []
    names = {name.split()[-1] for name, _ in _commands(root)}
    assert set(ORDER) <= names, f"ORDER names no command: {set(ORDER) - names}"


def _extra(build: Any) -> list[str]:
    """The breaks in a copy of the CLI with one more command, built by ``build(app)``."""
    extra = typer.Typer()
    extra.registered_commands = list(app.registered_commands)
    extra.registered_groups = list(app.registered_groups)
    extra.registered_callback = app.registered_callback
    build(extra)
    return _broken(typer.main.get_command(extra))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('def cmd(bars: str = typer.Argument(help="Bars.")) -> None:\n    """x."""', "take them as the option --data"),
        ('def cmd(bars_file: str = typer.Option("", "--bars-file", help="Bars.")) -> None:\n    """x."""', "name it --data"),
        ('def cmd(as_json: bool = typer.Option(False, "--json", help="JSON.")) -> None:\n    """x."""', "--json is visible"),
        ('def cmd(x: int = typer.Option(1, help="X.")) -> None:\n    """x."""\n    print(json.dumps(x))', "no --format"),
        ('def cmd(x: int = typer.Option(1)) -> None:\n    """x."""', "x has no help"),
        ('def cmd(out: str = typer.Option("", "--out", help="Where.")) -> None:\n    """x."""', "neither FILE nor FOLDER"),
        ('def cmd(out: str = typer.Option("", "--out", help="Where.", metavar="FILE")) -> None:\n    """x."""', "help must start with 'File '"),
        ('def cmd(force: bool = typer.Option(False, help="Force.")) -> None:\n    """x."""', "useless twin"),
        ('def cmd(x: int = typer.Option(1, help="Within [low, high].")) -> None:\n    """x."""', "rich markup eats"),
        ('def cmd(x: str = typer.Option("", help="e.g. postgresql://u:secret@h/db")) -> None:\n    """x."""', "a password in a URL"),
        ('def cmd() -> None:\n    """x."""', "panel None is none of"),
    ],
    ids=["bars-argument", "bars-option", "visible-json", "json-without-format", "no-help",
         "out-metavar", "out-help", "negative-flag", "eaten-markup", "password", "no-panel"],
)  # fmt: skip
def test_the_grammar_test_fails_on_a_command_that_breaks_a_rule(
    source: str, expected: str, tmp_path: Path
) -> None:
    """The mutation check, kept: each rule, broken once by an added command, is reported."""
    import importlib.util

    path = tmp_path / "broken_command.py"
    path.write_text(f"from __future__ import annotations\nimport json\nimport typer\n\n{source}\n")
    spec = importlib.util.spec_from_file_location("broken_command", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    panel = None if expected.startswith("panel") else PANELS[0]

    def build(extra: typer.Typer) -> None:
        extra.command("zz-broken", rich_help_panel=panel)(module.cmd)

    broken = [line for line in _extra(build) if line.startswith("zz-broken")]
    assert any(expected in line for line in broken), broken


def _help(*args: str, columns: int) -> str:
    result = CliRunner().invoke(
        app, [*args, "--help"], env={"COLUMNS": str(columns), "NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_help_shows_the_panels_in_order_search_first_one_line_each_at_80_columns() -> None:
    text = _help(columns=80)
    titles = re.findall(r"^╭─ (.+?) ─", text, flags=re.MULTILINE)
    assert titles == ["Options", *PANELS]
    search_box = text.split("╭─ Search ─")[1].split("╰")[0]
    assert re.search(r"│ (\S+)", search_box).group(1) == "search"  # type: ignore[union-attr]
    assert max(len(line) for line in text.splitlines()) <= 80
    root = typer.main.get_command(app)
    listed = root.list_commands(None)
    for panel in PANELS:  # one row per command: each summary fits its line
        box = text.split(f"╭─ {panel} ─")[1].split("╰")[0]
        rows = [line.split()[1] for line in box.splitlines()[1:] if line.strip("│ ")]
        assert rows == [n for n in listed if root.commands[n].rich_help_panel == panel], box


def test_pick_help_names_every_rule_the_code_accepts() -> None:
    from xtune.export.pick import RULES

    root = typer.main.get_command(app)
    for name in ("export", "distill"):
        (pick,) = [p for p in root.commands[name].params if p.name == "pick"]
        assert all(re.search(rf"\b{rule}\b", pick.help) for rule in RULES), (name, pick.help)
