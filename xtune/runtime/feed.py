"""What the live Predictor checks of each new bar before it keeps it: the bar is newer than the
last, comes at the interval the model was trained on, and comes from the same market (no close
far beyond any move the training bars made, the same symbol). Torch-free.

It also reads the bars a Predictor is given (:func:`one_bar`, :func:`history_bars`) with the
market they name (:func:`frame_symbol`). A refused bar is not kept; each refusal is one
:class:`~xtune.errors.DataError` naming the bar's time, the value that failed and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xtune.errors import DataError
from xtune.features.bars import Bars, load_bars
from xtune.features.live_bar import load_bar
from xtune.runtime._predict import show_interval
from xtune.runtime.manifest import Manifest

# A bar may follow the last one after any whole number of intervals (weekends, holidays, a
# missed bar), off by this share of an interval (a DST shift of a daily bar is 1/24).
STEP_TOLERANCE = 0.05
# This many gaps in a row are bars of another interval, not a weekend or a missed bar (real
# EURUSD hourly bars have at most one gap in a row: a weekend or a holiday).
GAP_RUN = 4
# The held bars' median spacing may differ from training's by this share (as predict's check).
MEDIAN_TOLERANCE = 0.01
# A close-to-close log move over this multiple of the training bars' largest is refused, but
# never one under the floor (a log move of 0.1 is 10.5%).
JUMP_FACTOR = 5.0
JUMP_FLOOR = 0.1


def largest_move(close: np.ndarray) -> float | None:
    """The largest absolute log change between consecutive closes (None: fewer than 2 bars)."""
    if len(close) < 2:
        return None
    return float(np.abs(np.diff(np.log(close))).max())


@dataclass(frozen=True)
class Feed:
    """The live bars a model takes: their interval and how far one close may move."""

    interval_s: float  # the training bars' median interval; 0: unknown, not checked
    max_log_move: float | None  # the training bars' largest; None: not recorded, not checked
    allow_other_interval: bool = False

    @classmethod
    def of(cls, manifest: Manifest, allow_other_interval: bool = False) -> Feed:
        data = manifest.data
        return cls(data.interval_s, data.max_log_move, allow_other_interval)

    @property
    def jump_limit(self) -> float | None:
        """The largest absolute log move between two closes taken without ``allow_jump``."""
        if self.max_log_move is None:
            return None
        return max(JUMP_FACTOR * self.max_log_move, JUMP_FLOOR)

    def check(
        self,
        held: np.ndarray,
        last_close: float,
        time: pd.Timestamp,
        close: float,
        history: int,
        allow_jump: bool,
    ) -> None:
        """Refuse a bar at ``time`` closing at ``close`` after the ``held`` bars' times (int64
        ns, oldest first; the newest ``history`` of them are what the model predicts on), the
        last of which closed at ``last_close``.

        Raises:
            DataError: not newer than the last bar, another interval, or a jump.
        """
        if not len(held):
            return
        if time.value <= held[-1]:
            raise DataError(
                f"bar at {time}: not newer than the last bar ({pd.Timestamp(held[-1], tz='UTC')}). "
                "Pass each bar once, oldest first, when it has closed."
            )
        if not allow_jump:
            self._check_jump(time, close, last_close)
        if self.allow_other_interval or self.interval_s <= 0:
            return
        times = np.append(held[-max(GAP_RUN, history - 1) :], time.value)
        steps = np.diff(times) / (self.interval_s * 1e9)  # in intervals, oldest first
        self._check_step(time, pd.Timestamp(held[-1], tz="UTC"), float(steps[-1]))
        self._check_run(time, steps[-GAP_RUN:])
        if len(times) >= history:
            self._check_median(time, steps[-(history - 1) :], history)

    def _check_jump(self, time: pd.Timestamp, close: float, last: float) -> None:
        limit = self.jump_limit
        move = abs(float(np.log(close / last)))
        if limit is None or move <= limit:
            return
        assert self.max_log_move is not None
        raise DataError(
            f"bar at {time}: close {close:g} after {last:g} is a log move of {move:.3g} "
            f"(x{close / last:.3g}), over the limit of {limit:.3g} ({JUMP_FACTOR:g}x the largest "
            f"move of the training bars, {self.max_log_move:.3g}, or at least {JUMP_FLOOR:g}): "
            "a bar of another market? Feed one market to a Predictor, or pass "
            "update(bar, allow_jump=True) if the move is real."
        )

    def _check_step(self, time: pd.Timestamp, last: pd.Timestamp, step: float) -> None:
        if step < 1 - STEP_TOLERANCE or abs(step - round(step)) > STEP_TOLERANCE:
            every = show_interval(self.interval_s)
            raise DataError(
                f"bar at {time}: {show_interval((time - last).total_seconds())} after the last "
                f"bar ({last}), but this model's bars come every {every}. Pass whole {every} "
                "bars (gaps of whole bars are fine), or allow_other_interval=True if you mean it."
            )

    def _check_run(self, time: pd.Timestamp, steps: np.ndarray) -> None:
        if len(steps) < GAP_RUN or not (steps > 1 + STEP_TOLERANCE).all():
            return
        every = show_interval(self.interval_s)
        spacings = ", ".join(show_interval(s * self.interval_s) for s in steps)
        raise DataError(
            f"bar at {time}: the last {GAP_RUN} bars each came more than one bar after the one "
            f"before ({spacings}), but this model's bars come every {every}: bars of another "
            f"interval, not a weekend or a missed bar. Feed {every} bars (predict_last(history) "
            "starts again), or allow_other_interval=True if you mean it."
        )

    def _check_median(self, time: pd.Timestamp, steps: np.ndarray, history: int) -> None:
        median = float(np.median(steps))
        if abs(median - 1.0) <= MEDIAN_TOLERANCE:
            return
        every = show_interval(self.interval_s)
        raise DataError(
            f"bar at {time}: with it, the newest {history} bars come every "
            f"{show_interval(median * self.interval_s)} (median), but this model was trained on "
            f"bars every {every}; predict_last() and `xtune predict` refuse such bars too. Feed "
            f"{every} bars, or allow_other_interval=True if you mean it."
        )


def check_symbol(follows: str | None, given: bool, got: str | None, where: str) -> str | None:
    """The symbol a Predictor follows once a bar (or frame) at ``where`` carried ``got``:
    ``follows``, given at construction (``given``) or the first symbol a bar carried.

    Raises:
        DataError: ``got`` is another symbol than the one followed.
    """
    if got is None or follows is None or got == follows:
        return follows if got is None else got
    said = "this Predictor was made for" if given else "the earlier bars were"
    raise DataError(
        f"{where}: symbol {got!r}, but {said} {follows!r}; another market's bars would mix into "
        f"every feature. Feed only {follows!r} bars, or make one Predictor per symbol."
    )


def one_bar(
    bar: Mapping[str, Any] | pd.Series | pd.DataFrame, columns: Sequence[str]
) -> tuple[Bars, str | None]:
    """One validated bar from a mapping, a Series (named by its time) or a one-row frame,
    with the precomputed ``columns`` the model reads, and its ``symbol`` (None: none given)."""
    symbol: object = None
    if isinstance(bar, Mapping):
        if "symbol" in bar:
            symbol, bar = bar["symbol"], {k: v for k, v in bar.items() if k != "symbol"}
        fast = load_bar(bar, name="update()", columns=columns)
        if fast is not None:
            return fast, _symbol(symbol)
    if isinstance(bar, pd.DataFrame):
        frame = bar
    elif isinstance(bar, pd.Series):
        frame = bar.to_frame().T
    else:
        frame = pd.DataFrame([dict(bar)])
    if len(frame) != 1:
        raise DataError(
            f"update() takes one bar, got {len(frame)}; pass a history to predict_last()."
        )
    if "symbol" in frame.columns:
        symbol, frame = frame["symbol"].iloc[0], frame.drop(columns="symbol")
    return load_bars(frame, name="update()", columns=columns), _symbol(symbol)


def frame_symbol(frame: pd.DataFrame | Bars) -> str | None:
    """The one symbol a history frame's ``symbol`` column names (None: no such column).

    Raises:
        DataError: the column names more than one symbol.
    """
    if isinstance(frame, Bars) or "symbol" not in frame.columns:
        return None
    names = frame["symbol"].dropna().astype(str).unique()
    if len(names) > 1:
        raise DataError(
            f"predict_last(): the bars' symbol column names {len(names)} markets "
            f"({', '.join(map(repr, names[:5]))}); pass one market's bars."
        )
    return str(names[0]) if len(names) else None


def _symbol(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def history_bars(frame: pd.DataFrame | Bars, columns: Sequence[str]) -> Bars:
    """A history for ``predict_last()``: ``frame`` validated, with the precomputed ``columns``."""
    if isinstance(frame, Bars):
        return frame
    return load_bars(frame, name="predict_last()", columns=columns)
