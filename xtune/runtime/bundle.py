"""The inference bundle: files, manifest, checksums. Torch-free (the trading PC reads it).

A bundle directory holds ``model.onnx`` (fp32), optionally ``model.int8.onnx``,
``manifest.json`` (see :class:`~xtune.runtime.manifest.Manifest`, which lists every other file
with its hash) and ``SHA256SUMS`` (the hash of every other file, the manifest included).
:func:`load_bundle` checks the three against each other (a file swapped in with an updated
``SHA256SUMS`` still disagrees with the manifest) and builds the bundle's own
:class:`~xtune.features.FeatureSet`: the catalog, its plugin files, its columns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from xtune.errors import BundleError
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.runtime.manifest import Manifest
from xtune.runtime.own_features import activate

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a plain file name inside the bundle


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sums(folder: Path, names: list[str]) -> None:
    lines = [f"{sha256_file(folder / n)}  {n}" for n in sorted(names)]
    (folder / SUMS).write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle. It holds the bytes of every file whose hash was checked at load (a
    bundle is a few hundred KB): predicting never opens a file again, so a bundle replaced on
    disk meanwhile (a new export) cannot mix its models or reference windows with this
    manifest's features and scaler."""

    folder: Path
    manifest: Manifest
    contents: Mapping[str, bytes] = field(repr=False)  # file name -> its verified bytes
    manifest_sha256: str = ""  # of the verified manifest.json: it pins every file's hash
    # Where its features are computed: the catalog with the bundle's own plugins and columns.
    feature_set: FeatureSet = field(default=CATALOG, repr=False)

    @property
    def model_bytes(self) -> bytes:
        return self.contents[self.manifest.model.file]

    @property
    def model_path(self) -> Path:
        """The int8 model when export kept it (faster and agreeing), else fp32."""
        return self.folder / self.manifest.model.file

    @property
    def features(self) -> tuple[str, ...]:
        return self.manifest.feature_names

    @property
    def window(self) -> int:
        return self.manifest.window

    def read(self, name: str) -> bytes:
        """A file the manifest lists, as verified at load.

        Raises:
            BundleError: the file is not listed.
        """
        if name not in self.manifest.files:
            raise BundleError(f"{self.folder}: {name!r} is not one of the bundle's files.")
        return self.contents[name]


def _member(folder: Path, name: str, where: str) -> Path:
    """A listed file as a path inside the bundle: a plain name, a regular file, no symlink."""
    if not _NAME.match(name):
        raise BundleError(
            f"{folder}: {where} names {name!r}, which is not a plain file name inside the "
            "bundle; the bundle was tampered with. Export it again."
        )
    path = folder / name
    if path.is_symlink():
        raise BundleError(
            f"{folder}: {name} is a symbolic link; a bundle holds real files only. Copy the bundle again."
        )
    if not path.exists():
        raise BundleError(
            f"{folder}: {name} is missing; the bundle is incomplete. Export it again."
        )
    if not path.is_file():
        raise BundleError(f"{folder}: {name} is not a regular file. Copy the bundle again.")
    return path


def read_sums(folder: Path) -> dict[str, str]:
    sums = folder / SUMS
    if not sums.is_file() or sums.is_symlink():
        raise BundleError(
            f"{folder}: {SUMS} is missing; the bundle is incomplete. Export it again."
        )
    expected: dict[str, str] = {}
    for k, line in enumerate(sums.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise BundleError(
                f"{folder}: {SUMS} line {k} is not '<sha256>  <file>'; the file was edited or "
                "damaged. Copy the bundle again."
            )
        expected[match.group(2)] = match.group(1)
    return expected


def read_checked(folder: Path, name: str, digest: str) -> bytes:
    """The file's bytes, read once, after their hash matched ``digest``."""
    data = _member(folder, name, SUMS).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(
            f"{folder}: {name} does not match its checksum: the file was modified or damaged "
            "in transfer. Copy the bundle again; never edit it by hand."
        )
    return data


def load_bundle(folder: str | Path) -> Bundle:
    """Open and verify a bundle: every file present and unchanged, the manifest and
    ``SHA256SUMS`` in agreement, a known format version.

    Raises:
        BundleError: saying which file is missing, modified or out of place, or which version
            or key is wrong.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such bundle directory. Create one with `xtune export`.")
    expected = read_sums(folder)
    if MANIFEST not in expected:
        raise BundleError(f"{folder}: {SUMS} does not cover {MANIFEST}; the bundle is incomplete.")
    contents = {name: read_checked(folder, name, digest) for name, digest in expected.items()}
    text = contents[MANIFEST].decode(errors="replace")
    manifest = Manifest.from_json(text, f"{folder}/{MANIFEST}")
    listed = {n: d for n, d in expected.items() if n != MANIFEST}
    if manifest.files != listed:
        raise BundleError(
            f"{folder}: the files in {SUMS} {sorted(listed)} and their hashes differ from those "
            f"the manifest records {sorted(manifest.files)}: a file was swapped. Export the bundle again."
        )
    for name in (manifest.model.file, manifest.model.fp32):
        if name not in listed:
            raise BundleError(f"{folder}: the manifest's model file {name!r} is not in {SUMS}.")
    feature_set = activate(folder, manifest, contents)  # its plugin features and columns
    return Bundle(folder, manifest, MappingProxyType(contents), expected[MANIFEST], feature_set)
