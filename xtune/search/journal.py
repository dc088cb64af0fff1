"""The journal file a study lives in by default: checked line by line before Optuna reads it.

Optuna stops at a damaged line with a ``JSONDecodeError`` traceback, skips a damaged last line
without a word (and appends after it, which damages the file for good), and reads a foreign
file that happens to hold one JSON line. :func:`check_journal` names the first bad line
instead, before anything is written.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "s.journal"
    >>> _ = path.write_text('{"op_code": 0, "worker_id": "w"}\\nhello\\n')
    >>> try:
    ...     check_journal(path)
    ... except JournalError as exc:
    ...     print(str(exc).split(";")[0].replace(str(path), "s.journal"))
    s.journal: line 2 is not an Optuna journal record (not JSON)
"""

from __future__ import annotations

import json
from pathlib import Path

from xtune.errors import JournalError


def check_journal(path: Path) -> None:
    """Every complete line of ``path`` is a journal record (a JSON object with an
    ``op_code``). A missing or empty file passes; so does a last line without its newline
    that starts like a record (another process is writing it).

    Raises:
        JournalError: naming the file, the first bad line, and what to do.
    """
    try:
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    if not line.startswith(b"{"):
                        raise _bad(path, number, "not JSON")
                    return
                problem = _problem(line)
                if problem:
                    raise _bad(path, number, problem)
    except FileNotFoundError:
        return
    except OSError as exc:  # a folder, no permission
        raise JournalError(
            f"{path}: cannot read it as a journal file ({exc.strerror}); pass --storage a "
            "file xtune may read and write."
        ) from None


def _problem(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:  # also bytes that are not UTF-8
        return "not JSON"
    if not isinstance(record, dict) or "op_code" not in record:
        return "JSON, but no op_code"
    return None


def _bad(path: Path, number: int, problem: str) -> JournalError:
    return JournalError(
        f"{path}: line {number} is not an Optuna journal record ({problem}); the file is "
        "damaged or is not a journal, and xtune wrote nothing to it. Repair or delete that "
        "line, or pass --storage another file."
    )
