"""``xtune consensus``: the members alone and together on their common untouched test period.

Torch-free. Each member predicts with its own features, window and scaler (the batch path of
``xtune predict``); the predictions are aligned by bar time, and every figure counts only the
bars inside every member's recorded test part, which none of them was searched or refit on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from xtune.errors import ConsensusError
from xtune.features.bars import Bars
from xtune.features.labels import MISSING, LabelSpec, directions, forward_returns
from xtune.runtime._predict import predict
from xtune.runtime.bundle import Bundle
from xtune.runtime.consensus import (
    Consensus,
    as_classes,
    check_members,
    check_rule,
    combine,
    member_probs,
    positions,
)
from xtune.runtime.trading import bars_per_year, rule_pnl, sharpe


@dataclass(frozen=True)
class RuleScore:
    """One member, or the consensus, at one horizon, on the common test bars."""

    name: str
    horizon: int
    bars: int
    coverage: float  # share of the bars with a position (long or short)
    accuracy: float | None  # on those bars: the predicted direction was the label (None: no bar)
    baseline: float | None  # on those bars: the share of their most common label
    sharpe: float  # long/short rule after fees, flat where there is no position


@dataclass(frozen=True)
class ConsensusReport:
    rule: str
    threshold: float
    period: tuple[str, str]  # the first and last common test bar
    bars: int
    fee: float
    scores: tuple[RuleScore, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def common_test_period(bundles: tuple[Bundle, ...]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The intersection of the members' recorded test spans.

    Raises:
        ConsensusError: a bundle from before format version 4 (no test span), or no overlap.
    """
    spans = []
    for b in bundles:
        span = b.manifest.data.test_span
        if span is None:
            raise ConsensusError(
                f"{b.folder}: bundle format version {b.manifest.format_version} does not record "
                "its test period; export it again with this xtune."
            )
        spans.append((pd.Timestamp(span[0]), pd.Timestamp(span[1])))
    start, end = max(s for s, _ in spans), min(e for _, e in spans)
    if start > end:
        shown = "; ".join(
            f"{b.folder}: {s} .. {e}" for b, (s, e) in zip(bundles, spans, strict=True)
        )
        raise ConsensusError(f"the bundles' test periods do not overlap ({shown}).")
    return start, end


def check_bars(bundle: Bundle, bars: Bars) -> None:
    """Refuse bars that do not hold the member's training bars unchanged: the bars inside the
    recorded span must hash to the recorded sha256. More bars before or after are fine (a file
    that grew since); an edited, resampled or missing bar is not."""
    data = bundle.manifest.data
    inside = Bars(bars.frame.loc[pd.Timestamp(data.span[0]) : pd.Timestamp(data.span[1])], "")
    if len(inside) != data.rows or inside.sha256 != data.sha256:
        raise ConsensusError(
            f"{bars.source}: does not contain the bars the bundles were trained on ({data.source}, "
            f"{data.rows} bars {data.span[0]} .. {data.span[1]}, sha256 {data.sha256[:12]}; here "
            f"{len(inside)} bars in that span, sha256 {inside.sha256[:12]}). Pass those bars."
        )


def resolve_fee(bundles: tuple[Bundle, ...], fee: float | None) -> float:
    """``fee`` when given, else the one fee every member's manifest records."""
    if fee is not None:
        if not fee >= 0:
            raise ConsensusError(f"--fee must be >= 0, got {fee}.")
        return fee
    fees = {b.manifest.fee for b in bundles}
    if None in fees or len(fees) != 1:
        raise ConsensusError(
            f"the bundles record the fees {sorted(map(str, fees))}, not one fee; pass --fee."
        )
    return float(fees.pop() or 0.0)


def score_positions(
    name: str,
    horizon: int,
    position: np.ndarray,
    truth: np.ndarray,
    returns: np.ndarray,
    classes: int,
    fee: float,
    per_year: float,
) -> RuleScore:
    """Coverage, accuracy and baseline where ``position`` [N] is taken, and the Sharpe ratio of
    trading it over all N bars (``truth`` [N] class ids, ``returns`` [N] forward log returns)."""
    taken = position != 0
    label = truth[taken]
    correct = as_classes(position[taken], classes) == label
    pnl = rule_pnl(as_classes(position, classes), returns, horizon, classes, fee)
    return RuleScore(
        name=name,
        horizon=horizon,
        bars=len(position),
        coverage=float(taken.mean()) if len(position) else 0.0,
        accuracy=float(correct.mean()) if taken.any() else None,
        baseline=float(np.bincount(label).max() / len(label)) if taken.any() else None,
        sharpe=sharpe(pnl, horizon, per_year),
    )


def score_consensus(consensus: Consensus, bars: Bars, fee: float | None = None) -> ConsensusReport:
    """Every member alone and the consensus, per horizon, on the common untouched test period.

    Raises:
        ConsensusError: the members cannot be combined, the bars are not theirs, or their test
            periods do not overlap.
        DataError: bars at another interval than the members were trained on.
    """
    members, rule = consensus.members, consensus.rule
    check_members(members)
    check_rule(rule, consensus.threshold)
    start, end = common_test_period(members)
    check_bars(members[0], bars)  # one hash for all: check_members matched theirs
    fee = resolve_fee(members, fee)
    frames = [predict(b, bars) for b in members]
    times = frames[0].index[(frames[0].index >= start) & (frames[0].index <= end)]
    for frame in frames[1:]:
        times = times.intersection(frame.index)
    frames = [f.loc[times] for f in frames]
    m = members[0].manifest
    rows = bars.index.get_indexer(times)
    returns = forward_returns(bars.frame["close"].to_numpy(), m.horizons)[rows]  # [N, H]
    truth = directions(returns, LabelSpec(m.horizons, m.dead_zone, m.classes))  # [N, H]
    if (truth == MISSING).any():
        raise ConsensusError(f"{bars.source}: the bars end before the test labels do.")
    per_year = bars_per_year(bars.index)
    scores = []
    for j, h in enumerate(m.horizons):
        probs = member_probs(frames, h, m.class_names)  # [M, N, C]
        named = [
            (str(b.folder), positions(probs[k].argmax(-1), m.classes))
            for k, b in enumerate(members)
        ]
        named.append((f"consensus ({rule})", combine(probs, rule, consensus.threshold)))
        scores += [
            score_positions(name, h, pos, truth[:, j], returns[:, j], m.classes, fee, per_year)
            for name, pos in named
        ]
    period = (str(times[0]), str(times[-1])) if len(times) else (str(start), str(end))
    return ConsensusReport(rule, consensus.threshold, period, len(times), fee, tuple(scores))
