"""The files a trader's plugin reads while it computes, and the hashes of their bytes.

A plugin feature is a function of the bars. One that also opens a file (a calendar, a sentiment
series looked up by bar time) depends on bytes the look-ahead check cannot see: a lookup by time
survives truncation of the bars, so the check passes whatever the file holds. Python's audit
hooks see every ``open``; :func:`watching` records the files a plugin feature opens while it
computes (``Feature.values`` runs every plugin function inside it). With those, the audit says
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
    >>> with watching("plugin:example", "my_feature"):
    ...     _ = Path(path).read_text()
    >>> files_read("plugin:example", "my_feature") == (path,)
    True
"""

from __future__ import annotations

import contextlib
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
_READS: dict[tuple[str, str], frozenset[str]] = {}  # (origin, feature) -> files it read
_HOOKED: list[bool] = []  # the audit hook is installed once per process and never removed
_MACHINERY = (
    "<frozen importlib",
    f"{os.sep}linecache.py",
    f"{os.sep}tokenize.py",
)  # imports, source lines
_PSEUDO = ("/proc/", "/sys/", "/dev/")


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


@contextlib.contextmanager
def watching(origin: str, name: str) -> Iterator[None]:
    """Record the files feature ``name`` of ``origin`` opens for reading within the block
    (see :func:`files_read`); nested blocks record into the outermost one too."""
    if not _HOOKED:
        sys.addaudithook(_hook)
        _HOOKED.append(True)
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
        _READS[(origin, name)] = _READS.get((origin, name), frozenset()) | found


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


def files_read(origin: str, name: str) -> tuple[str, ...] | None:
    """The files (absolute paths, sorted) feature ``name`` of ``origin`` read in this process,
    or None when it has not computed here (nor been told by :func:`remember`)."""
    found = _READS.get((origin, name))
    return None if found is None else tuple(sorted(found))


def remember(origin: str, name: str, paths: Iterable[str]) -> None:
    """Add files a feature is known to read (from the feature cache's record of a build)."""
    _READS[(origin, name)] = _READS.get((origin, name), frozenset()) | frozenset(paths)


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


def read_hashes(origin: str, names: Iterable[str]) -> dict[str, str]:
    """Path -> sha256 of every file the listed features of ``origin`` read in this process."""
    return file_hashes(p for name in names for p in files_read(origin, name) or ())


def changed_file(recorded: Mapping[str, str]) -> tuple[str, str] | None:
    """The first recorded file whose bytes differ now, with how ("missing" or "sha256 a vs b"),
    or None when every one is as recorded."""
    for path, sha in sorted(recorded.items()):
        now = file_sha256(path)
        if now != sha:
            return path, "missing" if not now else f"sha256 {now[:12]} vs {sha[:12]}"
    return None
