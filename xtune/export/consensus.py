"""Write a consensus bundle: ``consensus.json`` naming the members and their manifest hashes,
with ``SHA256SUMS``, put in place like a bundle (never over a folder xtune did not write)."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from xtune import __version__
from xtune.export.replace import check_target, install
from xtune.runtime.bundle import write_sums
from xtune.runtime.consensus import (
    CONSENSUS,
    Consensus,
    ConsensusFile,
    MemberEntry,
    check_members,
    check_rule,
)


def consensus_file(consensus: Consensus, out: Path) -> ConsensusFile:
    """The description of ``consensus`` as written to ``out``: member paths relative to it,
    so a folder holding the consensus and its members can be moved or copied whole."""
    check_members(consensus.members)
    check_rule(consensus.rule, consensus.threshold)
    members = tuple(
        MemberEntry(os.path.relpath(b.folder.resolve(), out.resolve()), b.manifest_sha256)
        for b in consensus.members
    )
    return ConsensusFile(
        rule=consensus.rule,
        threshold=consensus.threshold,
        members=members,
        created=datetime.now(UTC).isoformat(),
        versions={"xtune": __version__},
    )


def member_folders(consensus: Consensus) -> tuple[Path, ...]:
    """The members' folders: a consensus is never written over, around or into one."""
    return tuple(b.folder for b in consensus.members)


def write_consensus(consensus: Consensus, out: Path, *, overwrite: bool = False) -> Path:
    """Write the consensus bundle to ``out``: beside it first, then swapped in; ``out`` is
    replaced only if it is a bundle xtune wrote and ``overwrite`` is set.

    Raises:
        ExportError: ``out`` holds files xtune did not write, or a bundle without ``overwrite``.
        XtuneError: ``out`` is, holds or lies inside a member, or lies inside another bundle.
        ConsensusError: the members cannot be combined.
    """
    members = member_folders(consensus)
    check_target(out, overwrite, members)
    spec = consensus_file(consensus, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    try:
        (folder / CONSENSUS).write_text(spec.to_json())
        write_sums(folder, [CONSENSUS])
        folder.chmod(0o755)  # mkdtemp made it private
        install(folder, out, overwrite, members)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # ours: the temporary folder, or the old bundle
    return out
