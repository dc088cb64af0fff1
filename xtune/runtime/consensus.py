"""A consensus: two or more bundles trained on the same bars, their directions combined by a
rule. Torch-free, like the bundles it holds.

A consensus bundle is a folder with ``consensus.json`` (:class:`ConsensusFile`: the rule and
each member's path, relative to the folder, with the hash of its ``manifest.json``, which pins
every file of the member) and ``SHA256SUMS``. :func:`load_consensus` verifies both, loads each
member with :func:`~xtune.runtime.bundle.load_bundle` and refuses a member whose manifest is
not the one recorded: a retrained or swapped member is a different consensus.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xtune.errors import BundleError, ConsensusError
from xtune.features.bars import Bars
from xtune.runtime._predict import column, predict
from xtune.runtime.bundle import MANIFEST, SUMS, Bundle, load_bundle, read_checked, read_sums

CONSENSUS = "consensus.json"
CONSENSUS_FORMAT = "xtune-consensus"
CONSENSUS_VERSION = 1
RULES = ("unanimous", "majority", "mean")
FLAT = "flat"  # the direction of "no position" (also a class of 3-class models)


def positions(predicted: np.ndarray, classes: int) -> np.ndarray:
    """Class ids -> positions: +1 long on the last class ("up"), -1 short on class 0
    ("down"), 0 otherwise ("flat" of 3 classes, or no consensus: any other id)."""
    return np.where(predicted == classes - 1, 1, np.where(predicted == 0, -1, 0)).astype(np.int64)


def as_classes(position: np.ndarray, classes: int) -> np.ndarray:
    """Positions -> class ids for :func:`~xtune.runtime.trading.rule_pnl`; -1 where flat."""
    return np.where(position > 0, classes - 1, np.where(position < 0, 0, -1)).astype(np.int64)


def combine(probs: np.ndarray, rule: str, threshold: float = 0.0) -> np.ndarray:
    """The consensus position per bar: [M, N, C] members' class probabilities -> [N] in {-1, 0, 1}.

    ``unanimous``: a position only where every member takes the same one. ``majority``: the
    position more than half the members take (so flat on a tie). ``mean``: the likeliest class
    of the members' mean probabilities, flat where that probability is below ``threshold``.
    """
    members, _, classes = probs.shape
    if rule == "mean":
        mean = probs.mean(axis=0)  # [N, C]
        side = positions(mean.argmax(-1), classes)  # [N]
        return np.where(mean.max(-1) >= threshold, side, 0)
    each = positions(probs.argmax(-1), classes)  # [M, N]
    if rule == "unanimous":
        return np.where((each == each[0]).all(axis=0), each[0], 0)
    if rule == "majority":
        longs, shorts = (each > 0).sum(axis=0), (each < 0).sum(axis=0)  # [N]
        return np.where(2 * longs > members, 1, np.where(2 * shorts > members, -1, 0))
    raise ConsensusError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}.")


def direction_names(position: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Positions -> ``up``/``down``/``flat`` (the members' first and last class names)."""
    return np.where(position > 0, class_names[-1], np.where(position < 0, class_names[0], FLAT))


def check_rule(rule: str, threshold: float) -> None:
    if rule not in RULES:
        raise ConsensusError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}.")
    if not 0.0 <= threshold < 1.0 or (threshold and rule != "mean"):
        raise ConsensusError(
            f"threshold {threshold}: a probability in [0, 1), and only for the mean rule."
        )


def check_members(bundles: tuple[Bundle, ...]) -> None:
    """Refuse bundles that cannot be scored or combined together: fewer than 2, trained on
    other bars (their recorded content hashes differ: the same file under two names is fine,
    an edited file is not), or with other labels (horizons, classes, dead zone)."""
    if len(bundles) < 2:
        raise ConsensusError(f"a consensus needs at least 2 bundles, got {len(bundles)}.")
    check_distinct(bundles)
    first = bundles[0]
    for other in bundles[1:]:
        a, b = first.manifest, other.manifest
        if a.data.sha256 != b.data.sha256:
            raise ConsensusError(
                f"{first.folder} and {other.folder} were trained on different bars ({a.data.source} "
                f"sha256 {a.data.sha256[:12]} vs {b.data.source} sha256 {b.data.sha256[:12]}); "
                "their test parts are not the same untouched bars. Export both from the same bars."
            )
        labels_a = (a.horizons, a.classes, a.class_names, a.dead_zone)
        labels_b = (b.horizons, b.classes, b.class_names, b.dead_zone)
        if labels_a != labels_b:
            raise ConsensusError(
                f"{first.folder} and {other.folder} predict different labels (horizons, classes, "
                f"dead zone: {labels_a} vs {labels_b}); their directions cannot be combined."
            )


def check_distinct(bundles: tuple[Bundle, ...]) -> None:
    """Refuse a bundle given twice: the same folder, or a copy of it (the same manifest, which
    pins every file): a model in consensus with itself only repeats its own answers."""
    for k, later in enumerate(bundles):
        for earlier in bundles[:k]:
            if later.manifest_sha256 == earlier.manifest_sha256:
                what = (
                    f"{later.folder} is named twice"
                    if _same_folder(earlier.folder, later.folder)
                    else f"{later.folder} is a copy of {earlier.folder}"
                )
                raise ConsensusError(
                    f"{what}: the same model twice (identical {MANIFEST}); a consensus "
                    "combines different bundles. Name each one once."
                )


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def load_member(folder: str | Path) -> Bundle:
    """A model bundle to combine. A consensus bundle is named as one, with its members.

    Raises:
        ConsensusError: ``folder`` holds a consensus, not a model bundle.
        BundleError: as :func:`~xtune.runtime.bundle.load_bundle`.
    """
    folder = Path(folder)
    if is_consensus(folder):
        raise ConsensusError(
            f"{folder} is a consensus bundle ({CONSENSUS}), not a model bundle; a consensus "
            f"combines bundles from `xtune export`. Name its members instead{_members_of(folder)}."
        )
    return load_bundle(folder)


def _members_of(folder: Path) -> str:
    """`` (a, b)``: the member folders a consensus bundle names, or nothing if unreadable."""
    try:
        raw = json.loads((folder / CONSENSUS).read_text())
        return " (" + ", ".join(os.path.normpath(folder / m["path"]) for m in raw["members"]) + ")"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@dataclass(frozen=True)
class MemberEntry:
    path: str  # the member bundle's folder, relative to the consensus folder
    manifest_sha256: str  # of its manifest.json, which lists the hash of every other file


@dataclass(frozen=True)
class ConsensusFile:
    """``consensus.json``: the rule and its members, written by ``xtune consensus --out``."""

    rule: str
    threshold: float
    members: tuple[MemberEntry, ...]
    created: str
    versions: dict[str, str]
    format: str = CONSENSUS_FORMAT
    format_version: int = CONSENSUS_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # room for later, ignored by readers

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, where: str) -> ConsensusFile:
        """Raises:
        BundleError: not JSON, another format or version, or a key missing or mistyped."""
        try:
            raw = json.loads(text)
            if raw.get("format") != CONSENSUS_FORMAT or raw.get("format_version") != 1:
                raise BundleError(
                    f"{where}: not an xtune consensus of format version {CONSENSUS_VERSION} "
                    f"(format {raw.get('format')!r}, version {raw.get('format_version')!r})."
                )
            members = tuple(MemberEntry(**m) for m in raw.pop("members"))
            parsed = cls(members=members, **raw)
            check_rule(parsed.rule, parsed.threshold)
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ConsensusError) as exc:
            raise BundleError(
                f"{where}: unreadable ({type(exc).__name__}: {exc}); write the consensus again."
            ) from None
        return parsed


@dataclass(frozen=True)
class Consensus:
    """Verified members and the rule that combines them."""

    folder: Path | None  # None: not written as a bundle (``xtune consensus`` without --out)
    rule: str
    threshold: float
    members: tuple[Bundle, ...]

    @property
    def horizons(self) -> tuple[int, ...]:
        return self.members[0].manifest.horizons

    @property
    def columns(self) -> tuple[str, ...]:
        """The precomputed bar columns any member reads (the bars must carry them all)."""
        return tuple(dict.fromkeys(c for m in self.members for c in m.manifest.columns))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.members[0].manifest.class_names


def is_consensus(folder: str | Path) -> bool:
    return (Path(folder) / CONSENSUS).is_file()


def load_consensus(folder: str | Path) -> Consensus:
    """Open and verify a consensus bundle and every member it names.

    Raises:
        BundleError: a file missing or modified, or a member missing or not the one recorded.
    """
    folder = Path(folder)
    sums = read_sums(folder)
    if set(sums) != {CONSENSUS}:
        raise BundleError(
            f"{folder}: {SUMS} lists {sorted(sums)}, but a consensus bundle holds {CONSENSUS} "
            "only; it was tampered with. Write it again with `xtune consensus --out`."
        )
    text = read_checked(folder, CONSENSUS, sums[CONSENSUS]).decode(errors="replace")
    spec = ConsensusFile.from_json(text, f"{folder}/{CONSENSUS}")
    members = []
    for entry in spec.members:
        bundle = load_member(folder / entry.path)
        if bundle.manifest_sha256 != entry.manifest_sha256:
            raise BundleError(
                f"{folder}: member {entry.path} is not the bundle this consensus was made of (its "
                f"manifest hash {bundle.manifest_sha256[:12]} vs {entry.manifest_sha256[:12]} "
                "recorded): it was replaced or exported again. Run `xtune consensus --out` again."
            )
        members.append(bundle)
    try:
        check_members(tuple(members))
    except ConsensusError as exc:
        raise BundleError(f"{folder}: {exc}") from None
    return Consensus(folder, spec.rule, spec.threshold, tuple(members))


def member_column(k: int, name: str) -> str:
    """Member ``k``'s (0-based) column in a consensus prediction: ``m1_h1_p_up``..."""
    return f"m{k + 1}_{name}"


def member_probs(frames: list[pd.DataFrame], horizon: int, names: tuple[str, ...]) -> np.ndarray:
    """[M, N, C] class probabilities of the members' aligned prediction frames at ``horizon``."""
    cols = [column(horizon, f"p_{c}") for c in names]
    return np.stack([f[cols].to_numpy(np.float64) for f in frames])


def predict_consensus(
    consensus: Consensus, bars: Bars, *, last: bool = False, allow_other_interval: bool = False
) -> pd.DataFrame:
    """``xtune predict`` of a consensus: per bar every member predicts (the latest first bar
    of theirs on), the consensus ``h{h}_direction`` (``flat``: no position), the members' mean
    probabilities and return under the usual names, then each member's columns as ``m1_...``.
    """
    frames = [
        predict(b, bars, last=last, allow_other_interval=allow_other_interval)
        for b in consensus.members
    ]
    times = frames[0].index
    for frame in frames[1:]:
        times = times.intersection(frame.index)
    frames = [f.loc[times] for f in frames]
    out: dict[str, np.ndarray] = {}
    for h in consensus.horizons:
        probs = member_probs(frames, h, consensus.class_names)  # [M, N, C]
        for c, name in enumerate(consensus.class_names):
            out[column(h, f"p_{name}")] = probs[:, :, c].mean(axis=0)
        side = combine(probs, consensus.rule, consensus.threshold)
        out[column(h, "direction")] = direction_names(side, consensus.class_names)
        out[column(h, "return")] = np.mean([f[column(h, "return")] for f in frames], axis=0)
    members = {member_column(k, str(c)): f[c].to_numpy() for k, f in enumerate(frames) for c in f}
    return pd.DataFrame(out | members, index=times)
