"""Put a finished bundle in place without losing anything.

xtune replaces only what it can prove it wrote: a folder whose ``SHA256SUMS`` lists every file
in it, beside an xtune manifest (a consensus bundle: an xtune ``consensus.json``). The new
bundle is written in a temporary folder beside the target and swapped in with one atomic
exchange (Linux ``renameat2``), so a bot reading the bundle sees the old one or the new one,
never none. A lock on the parent folder makes two exports to the same target take turns; the
second one then finds a bundle there and needs ``--overwrite`` like anyone else.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from xtune.errors import BundleError, ExportError
from xtune.outputs import check_output_folder
from xtune.runtime.bundle import MANIFEST, SUMS, read_sums
from xtune.runtime.consensus import CONSENSUS, CONSENSUS_FORMAT
from xtune.runtime.manifest import FORMAT


def _ours(out: Path, listed: set[str]) -> bool:
    """Whether ``out`` has an xtune bundle's or consensus bundle's description, checksummed."""
    for name, mark in ((MANIFEST, FORMAT), (CONSENSUS, CONSENSUS_FORMAT)):
        path = out / name
        if name in listed and path.is_file() and mark in path.read_text(errors="replace"):
            return True
    return False


def _foreign(out: Path) -> list[str]:
    """Names in ``out`` that no xtune bundle accounts for (empty: it is a bundle xtune wrote)."""
    try:
        listed = set(read_sums(out))
        ours = _ours(out, listed)
    except (BundleError, OSError):
        listed, ours = set(), False
    present = sorted(p.name for p in out.iterdir())
    if not ours:
        return present
    return [n for n in present if n not in listed | {SUMS} or (out / n).is_symlink()]


def check_target(out: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse a target xtune may not write: a file, a link, a folder inside a bundle or one
    that is, holds or lies inside an input folder (:func:`~xtune.outputs.check_output_folder`),
    or a folder with anything in it but (with ``--overwrite``) a bundle xtune exported. Called
    before any work and again under the lock, right before the swap."""
    check_output_folder(out, inputs)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"{out} is a file or a link, not a folder; choose a folder for --out.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    foreign = _foreign(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ExportError(
            f"{out} holds files xtune did not write ({shown}); xtune only replaces a bundle it "
            "exported and never deletes anything else. Choose a new or empty --out."
        )
    if not overwrite:
        raise ExportError(
            f"{out} already holds a bundle; pass --overwrite to replace it, or choose another --out."
        )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return bool(renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0)


def install(new: Path, out: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Move the finished bundle folder ``new`` (beside ``out``) to ``out``."""
    with _locked(out.parent):
        check_target(out, overwrite, inputs)
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # empty: nothing to keep
        if not out.exists():
            new.rename(out)
            return
        if not _exchange(new, out):  # no atomic swap here: keep the old one until the last step
            old = new.with_name(new.name + ".old")
            out.rename(old)
            new.rename(out)
            new = old
        shutil.rmtree(new)  # the previous bundle, proven ours above
