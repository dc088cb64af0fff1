"""The inference bundle: files, manifest, checksums. Torch-free (the trading PC reads it).

A bundle directory holds ``model.onnx`` (fp32), optionally ``model.int8.onnx``,
``manifest.json`` (feature spec, scaler, window, labels, metrics, versions, file hashes) and
``SHA256SUMS`` (the hash of every other file, the manifest included).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtune.errors import XtuneError

FORMAT = "xtune-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


class BundleError(XtuneError):
    """A bundle is missing a file, was modified, or has a format this xtune cannot read."""


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
    folder: Path
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The int8 model when export kept it (faster and agreeing), else fp32."""
        return self.folder / str(self.manifest["model"]["file"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.manifest["features"])

    @property
    def window(self) -> int:
        return int(self.manifest["window"])


def load_bundle(folder: str | Path) -> Bundle:
    """Open and verify a bundle: every file present and unchanged, a known format version.

    Raises:
        BundleError: saying which file is missing or modified, or which version is unknown.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such bundle directory. Create one with `xtune export`.")
    sums = folder / SUMS
    if not sums.exists():
        raise BundleError(
            f"{folder}: {SUMS} is missing; the bundle is incomplete. Export it again."
        )
    expected = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        expected[name] = digest
    for name, digest in expected.items():
        path = folder / name
        if not path.exists():
            raise BundleError(
                f"{folder}: {name} is missing; the bundle is incomplete. Export it again."
            )
        if sha256_file(path) != digest:
            raise BundleError(
                f"{folder}: {name} does not match its checksum: the file was modified or damaged "
                "in transfer. Copy the bundle again; never edit it by hand."
            )
    if MANIFEST not in expected:
        raise BundleError(f"{folder}: {SUMS} does not cover {MANIFEST}; the bundle is incomplete.")
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{folder}: not an xtune bundle (format {manifest.get('format')!r}).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{folder}: bundle format version {version} is not supported by this xtune "
            f"(reads version {FORMAT_VERSION}). Install the xtune version that exported it "
            f"({manifest.get('versions', {}).get('xtune', 'unknown')}) or export again."
        )
    model = manifest.get("model", {}).get("file")
    if model not in expected:
        raise BundleError(f"{folder}: the manifest's model file {model!r} is not in {SUMS}.")
    return Bundle(folder, manifest)
