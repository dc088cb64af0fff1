"""``xtune certify`` of a consensus bundle: what the trader runs is every member, each bar,
and the rule that combines them. Torch-free.

Each member is certified as a bundle (:func:`~xtune.runtime.certify.certify`). Then the live
:class:`~xtune.runtime.predictor.ConsensusPredictor` is timed bar by bar (every member's
features and model, and the rule), its decision at each bar is compared with the one
``xtune predict`` gives for the consensus on the same bars, and the members' models together
(they all run on every bar) are compared with the tightest latency cap among them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from xtune.features.bars import Bars, load_bars
from xtune.runtime._predict import column, history_needed
from xtune.runtime.certify import (
    FORMAT,
    CertifyReport,
    Check,
    Cpu,
    bars_to_time,
    certify,
    cpu_info,
    feed,
    runtime_versions,
)
from xtune.runtime.consensus import Consensus, load_consensus, member_column, predict_consensus
from xtune.runtime.predictor import ConsensusPredictor, Prediction
from xtune.runtime.reference import PARITY_TOL
from xtune.runtime.timing import Latency

KIND = "consensus"  # certify.json's "kind" for a consensus; a bundle's report has none


@dataclass(frozen=True)
class ConsensusCertifyReport:
    consensus: str
    rule: str
    cpu: Cpu
    members: tuple[CertifyReport, ...]
    checks: tuple[Check, ...]  # the consensus's own: its decision per bar, its latency cap
    bar_ms: Latency  # ConsensusPredictor.update: every member's features and model, the rule
    bars: str  # where the timed bars came from
    model_ms: float  # the members' models together, p50 each, batch 1, one thread
    cap_ms: float | None
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def passed(self) -> bool:
        own = all(c.ok is not False for c in self.checks)
        return own and all(m.passed for m in self.members)

    def to_json(self) -> str:
        raw = asdict(self)
        raw["members"] = [json.loads(m.to_json()) for m in self.members]
        return json.dumps({"format": FORMAT, "kind": KIND, "passed": self.passed, **raw}, indent=2)


def _decisions(consensus: Consensus, live: list[Prediction], bars: Bars) -> Check:
    """The live decision at each timed bar against ``xtune predict``'s on the same bars. A
    decision may differ only where a member's or the mean's two likeliest classes (or the
    mean rule's threshold) are within float rounding of a tie."""
    batch = predict_consensus(consensus, bars)
    rows = pd.DataFrame([p.row() for p in live], index=pd.DatetimeIndex([p.time for p in live]))
    want = batch.loc[rows.index, rows.columns]
    numbers = [c for c in want.columns if not c.endswith("_direction")]
    diff = float(np.abs(rows[numbers].to_numpy(float) - want[numbers].to_numpy(float)).max())
    differ = tie = 0
    for h in consensus.horizons:
        other = (rows[column(h, "direction")] != want[column(h, "direction")]).to_numpy()
        near = _near_tie(consensus, want, h)
        differ, tie = differ + int(other.sum()), tie + int((other & near).sum())
    ok = diff <= PARITY_TOL and differ == tie
    detail = (
        f"live and `xtune predict` decide alike at {len(rows) * len(consensus.horizons) - differ} "
        f"of {len(rows) * len(consensus.horizons)} bar-horizons ({tie} differ at a tie); "
        f"max |probability difference| {diff:.2e} (<= {PARITY_TOL} needed)"
    )
    return Check("consensus decision", ok, detail)


def _near_tie(consensus: Consensus, frame: pd.DataFrame, h: int) -> np.ndarray:
    """[N] bars where any member's or the mean's top two probabilities at ``h`` are within
    :data:`PARITY_TOL` of each other (or the mean's top of the mean rule's threshold)."""
    names = [column(h, f"p_{c}") for c in consensus.class_names]
    groups = [names] + [[member_column(k, n) for n in names] for k in range(len(consensus.members))]
    near = np.zeros(len(frame), bool)
    for cols in groups:
        p = np.sort(frame[cols].to_numpy(np.float64), axis=1)  # [N, C]
        near |= p[:, -1] - p[:, -2] <= PARITY_TOL
    top = frame[names].to_numpy(np.float64).max(axis=1)  # [N]
    near |= np.abs(top - consensus.threshold) <= PARITY_TOL
    return near


def _cap(
    members: tuple[CertifyReport, ...], override: float | None
) -> tuple[Check, float, float | None]:
    """The members' models together (all run on every bar) against the tightest cap."""
    together = sum(m.model_ms[m.precision].p50 for m in members)
    caps = [m.cap_ms for m in members if m.cap_ms is not None]
    cap = override if override is not None else min(caps) if caps else None
    if cap is None:
        detail = "the members record no cap; pass --max-latency-ms"
        return Check("consensus latency cap", None, detail), together, None
    ok = together <= cap
    detail = (
        f"the {len(members)} members' models together: {together:.3f} ms per bar (p50 each) "
        f"here, {'within' if ok else 'OVER'} the cap {cap:g} ms"
    )
    return Check("consensus latency cap", ok, detail), together, cap


def certify_consensus(
    folder: str | Path,
    bars: str | Path | Bars | None = None,
    max_latency_ms: float | None = None,
) -> ConsensusCertifyReport:
    """Certify a consensus bundle on this PC; see the module docstring. A failed check is a
    report with ``passed`` False, not an exception.

    Raises:
        BundleError: the consensus or a member is missing, modified, or not the one recorded.
        DataError: ``bars`` unusable for timing (too few, another interval).
    """
    consensus = load_consensus(folder)
    if bars is not None and not isinstance(bars, Bars):  # a file: with every member's columns
        bars = load_bars(bars, columns=consensus.columns)
    members = tuple(certify(b.folder, bars, max_latency_ms) for b in consensus.members)
    bot = ConsensusPredictor(folder, threads=1)
    longest = max(consensus.members, key=history_needed)  # its stored bars cover every member
    timed, source = bars_to_time(longest, bars, bot.history)
    per_bar, live = feed(bot, timed)
    cap, together, cap_ms = _cap(members, max_latency_ms)
    return ConsensusCertifyReport(
        consensus=str(consensus.folder),
        rule=consensus.rule,
        cpu=cpu_info(),
        members=members,
        checks=(_decisions(consensus, live, timed), cap),
        bar_ms=per_bar,
        bars=source,
        model_ms=together,
        cap_ms=cap_ms,
        versions=runtime_versions(),
        created=datetime.now(UTC).isoformat(),
    )
