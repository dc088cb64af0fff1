"""The files a trader's plugin reads while it computes, and the hashes of their bytes.

A plugin feature is a function of the bars. One that also opens a file (a calendar, a sentiment
series looked up by bar time) depends on bytes the look-ahead check cannot see: a lookup by time
survives truncation of the bars, so the check passes whatever the file holds. Python's audit
hooks see every ``open``; :func:`watching` records the files a plugin feature opens while it
computes into the feature's own :class:`ReadLog` (``Feature.values`` runs every plugin function
inside it). With those, the audit says
"cannot prove" for such a feature, as for a precomputed column, and the feature cache, the trial
record and the bundle manifest carry the hash of every file read, so an edited file is noticed
as an edited plugin is.

Not counted: Python's own imports (the import system reading ``.py`` and ``.pyc`` files),
source lines read for a warning or a traceback (linecache), the plugin's own file, files inside
the Python installation or virtual environment (a library's data), and ``/proc``, ``/sys``,
``/dev``. Not seen: a file a library opens in its own C code (pyarrow's parquet reader given a
path); hand such a reader an open file (``pd.read_parquet(open(path, "rb"))``).

Example:
    >>> import tempfile
    >>> path = tempfile.mkstemp(suffix=".csv")[1]
    >>> log = ReadLog()
    >>> with watching(log, "plugin:example"):
    ...     _ = Path(path).read_text()
    >>> log.paths == (path,)
    True
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any

# The paths opened for reading by the plugin computation running in this thread, or None.
_ACTIVE: ContextVar[set[str] | None] = ContextVar("xtune_plugin_reads", default=None)
_MACHINERY = (
    "<frozen importlib",
    f"{os.sep}linecache.py",
    f"{os.sep}tokenize.py",
)  # imports, source lines
_PSEUDO = ("/proc/", "/sys/", "/dev/")


class ReadLog:
    """The files (absolute paths) one plugin feature opened for reading while it computed in
    this process; :attr:`paths` is None until it has computed here (or been told by
    :meth:`add`). Each plugin feature of a feature set has its own."""

    __slots__ = ("_paths",)

    def __init__(self) -> None:
        self._paths: frozenset[str] | None = None

    @property
    def paths(self) -> tuple[str, ...] | None:
        """The files read, sorted; None when the feature has not computed here."""
        return None if self._paths is None else tuple(sorted(self._paths))

    def add(self, paths: Iterable[str]) -> None:
        """Record files the feature read (or is known to read: the feature cache's record)."""
        self._paths = (self._paths or frozenset()) | frozenset(paths)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    """Every audit event of the process passes here: cheap unless a plugin computes."""
    if event != "open":
        return
    sink = _ACTIVE.get()
    if sink is None:
        return
    with contextlib.suppress(Exception):  # a hook that raises would fail the plugin's open
        path, _, flags = args
        if isinstance(path, int) or flags & os.O_ACCMODE == os.O_WRONLY:
            return  # an already open descriptor, or a write
        if not _machinery(sys._getframe(1)):
            sink.add(str(Path(os.fsdecode(path)).absolute()))


def _machinery(frame: FrameType | None) -> bool:
    """Python's import system or linecache is on the stack (not the plugin's own reading)."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_MACHINERY[0]) or name.endswith(_MACHINERY[1:]):
            return True
        frame = frame.f_back
    return False


@functools.cache
def _install_hook() -> None:
    """Install the audit hook, once per process (an audit hook is never removed)."""
    sys.addaudithook(_hook)


@contextlib.contextmanager
def watching(log: ReadLog | None, origin: str) -> Iterator[None]:
    """Record into ``log`` the files a feature of ``origin`` opens for reading within the
    block; nested blocks record into the outermost one too. ``log`` None: nothing recorded
    (a feature that is read from the bars, not computed)."""
    if log is None:
        yield
        return
    _install_hook()
    outer = _ACTIVE.get()
    opened: set[str] = set()
    token = _ACTIVE.set(opened)
    try:
        yield
    finally:
        quiet = _ACTIVE.set(None)  # what the filter opens is xtune's reading, not the plugin's
        found = _data_files(opened, origin)
        _ACTIVE.reset(quiet)
        _ACTIVE.reset(token)
        if outer is not None:
            outer.update(found)
        log.add(found)


def _data_files(paths: Iterable[str], origin: str) -> frozenset[str]:
    """The paths that are data: regular files outside Python's installation, not bytecode,
    not the plugin's own source (the file whose hash is the plugin's origin)."""
    python = {
        f"{Path(p).absolute()}{os.sep}" for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
    }
    kept = set()
    for path in paths:
        if path.endswith(".pyc") or path.startswith((*_PSEUDO, *python)):
            continue
        if not Path(path).is_file() or (
            path.endswith(".py") and origin.endswith(file_sha256(path))
        ):
            continue
        kept.add(path)
    return frozenset(kept)


def file_sha256(path: str) -> str:
    """The sha256 of the file's bytes, or "" when it is missing or unreadable."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def file_hashes(paths: Iterable[str]) -> dict[str, str]:
    """Path -> :func:`file_sha256` of each file, in path order."""
    return {path: file_sha256(path) for path in sorted(set(paths))}


def read_hashes(logs: Iterable[ReadLog | None]) -> dict[str, str]:
    """Path -> sha256 of every file the features of these logs read in this process."""
    return file_hashes(p for log in logs if log is not None for p in log.paths or ())


def changed_file(recorded: Mapping[str, str]) -> tuple[str, str] | None:
    """The first recorded file whose bytes differ now, with how ("missing" or "sha256 a vs b"),
    or None when every one is as recorded."""
    for path, sha in sorted(recorded.items()):
        now = file_sha256(path)
        if now != sha:
            return path, "missing" if not now else f"sha256 {now[:12]} vs {sha[:12]}"
    return None
