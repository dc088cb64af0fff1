"""May xtune write this output path? The one rule behind every command's ``--out``.

xtune writes an output only where it loses nothing:

- never over an input of the same command: the same file after resolving relative paths,
  symbolic links and hard links (``predict b bars.csv --out bars.csv``), and never over,
  into or around a folder the command reads (a consensus written over one of its members);
- never inside a bundle or consensus bundle (a folder with ``SHA256SUMS`` beside
  ``manifest.json`` or ``consensus.json``): a bundle stays exactly as exported;
- never over a symbolic link or a folder, and only with its command's file name suffixes
  (``.csv``/``.parquet``/``.pq`` for frames, ``.json`` for certify's report), so a study file
  or a manifest is never a frame output;
- an existing file only when xtune wrote it, recognised by its content (:class:`FileKind`:
  the header of a predictions or feature frame, certify's ``format`` key), and only where the
  command's replace rule allows it (``--overwrite``; certify replaces its own report).

A bundle folder's own content (export, distill, consensus) is checked by
:func:`xtune.export.replace.check_target`, which applies :func:`check_output_folder` first.
Files are written beside the target and moved in with one atomic rename (:func:`write_file`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xtune.errors import XtuneError

if TYPE_CHECKING:
    import pandas as pd

SUMS, MANIFEST, CONSENSUS = "SHA256SUMS", "manifest.json", "consensus.json"  # a bundle's marks
INDEX = "time"  # the index column xtune writes first in every frame
# ``h1_p_up``, ``h1_direction``, ``h1_return`` (runtime.predict.column) and a consensus
# member's ``m1_h1_p_up`` (runtime.consensus.member_column)
_PREDICTION = re.compile(r"^(m\d+_)?h\d+_(p_.+|direction|return)$")


@dataclass(frozen=True)
class FileKind:
    """A kind of file xtune writes: what it is called in messages, its file name suffixes,
    and how xtune recognises a file of this kind that it wrote earlier."""

    name: str  # "predictions": "xtune did not write these predictions"
    suffixes: tuple[str, ...]
    ours: Callable[[Path], bool]


def header(path: Path) -> tuple[str, ...]:
    """A frame file's column names: a CSV's first row, a Parquet file's schema (empty: neither)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return tuple(str(n) for n in pq.read_schema(path).names)
        with path.open(newline="", errors="replace") as f:
            return tuple(next(csv.reader(f), []))
    except (OSError, ValueError, csv.Error):  # pyarrow's errors are ValueErrors or OSErrors
        return ()


def _frame_of(path: Path, column_ok: Callable[[str], bool]) -> bool:
    names = list(header(path))
    if INDEX not in names:
        return False
    names.remove(INDEX)
    return bool(names) and all(column_ok(n) for n in names)


def _predictions(path: Path) -> bool:
    return _frame_of(path, lambda n: _PREDICTION.match(n) is not None)


def _features(path: Path) -> bool:
    from xtune.features.catalog import CATALOG

    return _frame_of(path, lambda n: n in CATALOG)


FRAME_SUFFIXES = (".csv", ".parquet", ".pq")
PREDICTIONS = FileKind("predictions", FRAME_SUFFIXES, _predictions)
FEATURES = FileKind("feature frame", FRAME_SUFFIXES, _features)


def json_kind(name: str, fmt: str) -> FileKind:
    """A JSON file xtune writes with ``"format": fmt`` at its top."""

    def ours(path: Path) -> bool:
        try:
            return bool(json.loads(path.read_text()).get("format") == fmt)
        except (OSError, ValueError, AttributeError):
            return False

    return FileKind(name, (".json",), ours)


def is_bundle(folder: Path) -> bool:
    """Whether ``folder`` is an xtune bundle or consensus bundle (by its files' names)."""
    return (folder / SUMS).is_file() and any((folder / n).is_file() for n in (MANIFEST, CONSENSUS))


def bundle_around(path: Path) -> Path | None:
    """The bundle or consensus bundle ``path`` would be written inside (its nearest parent
    folder that is one), or None."""
    parent = path.absolute().parent.resolve()
    for folder in (parent, *parent.parents):
        if is_bundle(folder):
            return folder
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)  # relative paths, symbolic and hard links
    except OSError:
        return a.absolute().resolve() == b.absolute().resolve()


def _within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` lies inside the folder ``outer`` (links resolved)."""
    return inner.resolve().is_relative_to(outer.resolve()) and not _same(inner, outer)


def as_inputs(*paths: str | Path | None) -> tuple[Path, ...]:
    """The inputs of a command that are paths on this PC (not ``sample:...`` or a URL)."""
    return tuple(Path(p) for p in paths if p is not None and Path(p).exists())


def _check_inputs(out: Path, inputs: Iterable[Path], flag: str) -> None:
    for given in inputs:
        if out.exists() and _same(out, given):
            raise XtuneError(
                f"{flag} {out}: that is {given}, which this command reads; writing there would "
                f"destroy it. Choose another {flag}."
            )
        if given.is_dir() and out.exists() and _within(given, out):
            raise XtuneError(
                f"{flag} {out}: that folder holds {given}, which this command reads; xtune "
                f"never writes over it. Choose another {flag}."
            )
        if given.is_dir() and _within(out, given):
            raise XtuneError(
                f"{flag} {out}: that is inside {given}, which this command reads; xtune "
                f"writes nothing into it. Choose another {flag}."
            )


def _check_outside_bundles(out: Path, flag: str) -> None:
    bundle = bundle_around(out)
    if bundle is not None:
        raise XtuneError(
            f"{flag} {out}: that is inside the bundle {bundle}, which must stay exactly as "
            f"exported (its checksums would no longer cover every file). Choose another {flag}."
        )


def _check_place(out: Path, flag: str) -> None:
    if not out.parent.is_dir():
        raise XtuneError(f"{flag} {out}: the folder {out.parent} does not exist; create it first.")
    _check_outside_bundles(out, flag)


def check_output_folder(out: Path, inputs: Sequence[Path] = (), flag: str = "--out") -> None:
    """Refuse a bundle folder ``out`` inside a bundle, or that is, holds or lies inside an
    input folder (a consensus member). Its content: :func:`~xtune.export.replace.check_target`.

    Raises:
        XtuneError: one line naming ``out``, what it would destroy, and the fix.
    """
    _check_outside_bundles(out, flag)
    _check_inputs(out, inputs, flag)


def check_output_file(
    out: Path,
    kind: FileKind,
    *,
    inputs: Sequence[Path] = (),
    overwrite: bool = False,
    flag: str = "--out",
) -> Path:
    """``out`` if xtune may write a file of ``kind`` there; see the module docstring.

    Raises:
        XtuneError: one line naming ``out``, why not, and the fix.
    """
    if out.is_dir() and not out.is_symlink():
        raise XtuneError(
            f"{flag} {out}: that is a folder; name a file in it, e.g. {out / ('out' + kind.suffixes[0])}."
        )
    _check_place(out, flag)
    _check_inputs(out, inputs, flag)
    if out.suffix.lower() not in kind.suffixes:
        shown = ", ".join(kind.suffixes)
        raise XtuneError(f"{flag} {out}: name a file ending in {shown} for the {kind.name}.")
    if out.is_symlink() or (out.exists() and not (out.is_file() and kind.ours(out))):
        raise XtuneError(
            f"{flag} {out}: a file xtune did not write is there (not xtune {kind.name}); xtune "
            f"never overwrites it. Choose another {flag}."
        )
    if out.exists() and not overwrite:
        raise XtuneError(
            f"{flag} {out}: xtune {kind.name} from an earlier run are there; pass --overwrite "
            f"to replace them, or choose another {flag}."
        )
    return out


def save_frame(frame: pd.DataFrame, path: Path, suffix: str) -> None:
    """Write ``frame`` to ``path`` as Parquet or CSV, as ``suffix`` (the target's) says."""
    if suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path)


def write_file(
    out: Path,
    kind: FileKind,
    write: Callable[[Path], object],
    *,
    inputs: Sequence[Path] = (),
    overwrite: bool = False,
) -> None:
    """``write(tmp)`` a file beside ``out``, check ``out`` again, then rename it into place
    (atomic: a reader sees the old file or the new one); the temporary file never stays."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        check_output_file(out, kind, inputs=inputs, overwrite=overwrite)  # nothing came since
        tmp.chmod(0o644)  # mkstemp made it private
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
