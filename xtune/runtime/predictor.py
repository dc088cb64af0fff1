"""The live bot's predictor: one verified bundle, one onnxruntime session, a rolling buffer of
bars; one new bar in, that bar's probabilities out. Torch-free, like :mod:`.predict`.

Each answer equals what ``xtune predict`` gives for that bar on the full history (to float
rounding): the buffer holds the bundle's ``history``, after which no feature depends on where
the bars begin (see :func:`xtune.features.history.memory_violations`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from xtune.errors import DataError
from xtune.features.bars import OHLCV, Bars, load_bars
from xtune.features.live_bar import load_bar
from xtune.runtime._predict import (
    bundle_scaler,
    check_features,
    check_history,
    check_interval,
    column,
    history_needed,
    latest_window,
)
from xtune.runtime.bundle import Bundle, load_bundle
from xtune.runtime.consensus import (
    combine,
    direction_names,
    is_consensus,
    load_consensus,
    member_column,
)
from xtune.runtime.feed import Feed, check_symbol
from xtune.runtime.reference import choose_model
from xtune.runtime.session import run_model

CLOSE = OHLCV.index("close")  # its column in the held bars


@dataclass(frozen=True)
class Prediction:
    """One bar's answer, in ``xtune predict``'s words, per horizon ``h`` (bars ahead)."""

    time: pd.Timestamp  # the bar the prediction is made at (the window's last bar)
    probabilities: Mapping[int, Mapping[str, float]]  # h -> class name -> probability
    direction: Mapping[int, str]  # h -> the likeliest class name
    returns: Mapping[int, float]  # h -> predicted forward log return
    # A consensus: each member's own prediction; the fields above are then the members' mean
    # probabilities and return, and the rule's direction ("flat": no position).
    members: tuple[Prediction, ...] = field(default=())

    def row(self) -> dict[str, float | str]:
        """This bar's row as ``xtune predict`` prints it (``h1_p_up``, ``h1_direction``...;
        a consensus then each member's as ``m1_h1_p_up``...)."""
        out: dict[str, float | str] = {}
        for h, probs in self.probabilities.items():
            out |= {column(h, f"p_{name}"): p for name, p in probs.items()}
            out[column(h, "direction")] = self.direction[h]
            out[column(h, "return")] = self.returns[h]
        for k, member in enumerate(self.members):
            out |= {member_column(k, name): v for name, v in member.row().items()}
        return out


class Predictor:
    """Predict bar by bar with a bundle, keeping only the bars the model needs.

    At load, a bundle that keeps int8 re-checks it against fp32 on the reference windows it
    stores (format 4): where this CPU's int8 agrees on fewer than 99% of their classes, the
    Predictor runs fp32 instead (:attr:`model` says which; ``xtune certify`` reports it).

    Each new bar is checked before it is kept (:mod:`.feed`): newer than the last, at the
    model's interval (whole missed bars are fine, :data:`~.feed.GAP_RUN` gaps in a row are
    another feed), a close within a generous multiple of the largest move of the training bars
    (a bundle that records none is not checked), and the same symbol as the earlier bars.

    Thread-safe: :meth:`update` and :meth:`predict_last` hold one lock over the whole change of
    the buffer and the prediction on it, so threads feeding one Predictor lose no bar; the bars
    must still arrive oldest first (a bar not newer than the last is refused).

    Args:
        bundle_dir: a bundle from ``xtune export`` (verified once, here, or a verified Bundle),
            or a consensus bundle from ``xtune consensus --out``: then one Predictor per
            member, whose predictions the consensus rule combines (see
            :class:`ConsensusPredictor`).
        threads: onnxruntime threads (1 leaves the other cores to the trading platform).
        allow_other_interval: accept bars at another interval than training's.
        symbol: the market this Predictor follows, checked against the ``symbol`` of every bar
            (or frame column) that carries one; None: the first symbol a bar carries.

    Example::

        bot = Predictor("bundle", symbol="EURUSD")
        bot.predict_last(history)  # a frame of at least bot.history bars; their tail is kept
        p = bot.update({"time": t, "open": o, "high": h, "low": l, "close": c, "volume": v})
        p.probabilities[1]["up"], p.direction[1], p.returns[1]
    """

    def __new__(cls, bundle_dir: str | Path | Bundle, *args: Any, **kwargs: Any) -> Predictor:
        if cls is Predictor and not isinstance(bundle_dir, Bundle) and is_consensus(bundle_dir):
            return super().__new__(ConsensusPredictor)
        return super().__new__(cls)

    def __init__(
        self,
        bundle_dir: str | Path | Bundle,
        threads: int = 1,
        *,
        allow_other_interval: bool = False,
        symbol: str | None = None,
    ) -> None:
        self.bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
        check_features(self.bundle)
        self._scaler = bundle_scaler(self.bundle)
        # model: the file predicting; int8_agreement: int8 vs fp32 here (None: not checked)
        self._session, self.model, self.int8_agreement = choose_model(self.bundle, threads)
        self.history = history_needed(self.bundle)  # bars kept, and needed to predict
        self._feed = Feed.of(self.bundle.manifest, allow_other_interval)
        self._symbol, self._symbol_given = symbol, symbol is not None
        self._lock = threading.Lock()
        self._source = f"Predictor({self.bundle.folder})"
        index = pd.DatetimeIndex([], tz="UTC", name="time")
        self._bars = pd.DataFrame({c: np.empty(0) for c in OHLCV}, index=index)

    @property
    def bars(self) -> pd.DataFrame:
        """The buffered bars, oldest first (at most :attr:`history`)."""
        return self._bars.copy()

    def predict_last(self, frame: pd.DataFrame | Bars) -> Prediction:
        """The newest bar's prediction from a whole history (at least :attr:`history` bars,
        oldest first); its last :attr:`history` bars become the buffer :meth:`update` extends.

        Raises:
            DataError: bad bars, another interval than training's, another symbol (a
                ``symbol`` column), or too short a history.
        """
        bars = _load(frame, self.bundle.manifest.columns)
        with self._lock:
            symbol = self._follows(frame_symbol(frame), "predict_last()")
            self._check_frame(bars)
            self._hold(bars, symbol)
            return self._predict()

    def update(
        self, bar: Mapping[str, Any] | pd.Series | pd.DataFrame, *, allow_jump: bool = False
    ) -> Prediction:
        """Add one new bar (a mapping or a one-row frame with time, open, high, low, close,
        volume, and optionally symbol) and predict at it. The bar is kept even when too few
        bars are held to predict yet, so a bot may also warm up bar by bar, or when a feature
        fails on it (the error names the feature).

        Args:
            bar: the bar that has just closed.
            allow_jump: take a close far beyond the training bars' largest move (a real move).

        Raises:
            DataError: a bad bar, one not newer than the last, at another interval, of another
                symbol or jumping far beyond the training bars' moves (none of which is kept),
                or fewer than :attr:`history` bars held so far.
        """
        new, symbol = one_bar(bar, self.bundle.manifest.columns)
        with self._lock:
            symbol = self._follows(symbol, f"bar at {new.index[0]}")
            self._check_bar(new, allow_jump)
            self._take(new, symbol)
            return self._predict_held()

    def _follows(self, symbol: str | None, where: str) -> str | None:
        """The symbol followed once this bar (or frame) is taken; see :func:`check_symbol`."""
        return check_symbol(self._symbol, self._symbol_given, symbol, where)

    def _check_frame(self, bars: Bars) -> None:
        if not self._feed.allow_other_interval:
            check_interval(self.bundle, bars)
        check_history(self.bundle, bars.source, len(bars))

    def _hold(self, bars: Bars, symbol: str | None) -> None:
        self._symbol = symbol
        self._bars = bars.frame[[*OHLCV, *self.bundle.manifest.columns]].iloc[-self.history :]

    def _check_bar(self, new: Bars, allow_jump: bool) -> None:
        held = cast(pd.DatetimeIndex, self._bars.index).as_unit("ns").asi8  # [N] int64
        last = cast(float, self._bars.iat[-1, CLOSE]) if len(held) else 0.0
        close = cast(float, new.frame.iat[0, CLOSE])
        self._feed.check(held, last, new.index[0], close, self.history, allow_jump)

    def _take(self, new: Bars, symbol: str | None) -> None:
        self._symbol = symbol
        keep = max(0, len(self._bars) + 1 - self.history)  # the oldest bar(s) leave
        mine = new.frame[[*OHLCV, *self.bundle.manifest.columns]]
        self._bars = pd.concat([self._bars.iloc[keep:], mine])

    def _predict_held(self) -> Prediction:
        fix = "Start with predict_last(history), or keep feeding bars."
        check_history(self.bundle, self._source, len(self._bars), fix)
        return self._predict()

    def _predict(self) -> Prediction:
        x = latest_window(self.bundle, Bars(self._bars, self._source), self._scaler)  # [L, F]
        probs, returns = run_model(self.bundle, self._session, x[None], 1)  # [1, H, C], [1, H]
        m = self.bundle.manifest
        return Prediction(
            time=self._bars.index[-1],
            probabilities={
                h: {name: float(p) for name, p in zip(m.class_names, probs[0, j], strict=True)}
                for j, h in enumerate(m.horizons)
            },
            direction={h: m.class_names[int(probs[0, j].argmax())] for j, h in enumerate(m.horizons)},
            returns={h: float(returns[0, j]) for j, h in enumerate(m.horizons)},
        )  # fmt: skip


class ConsensusPredictor(Predictor):
    """A consensus bundle's live predictor: one :class:`Predictor` per member, all fed the same
    bars; each answer is the members' answers combined by the consensus rule, with the members'
    own answers in :attr:`Prediction.members`. ``Predictor(folder)`` makes one when ``folder``
    holds a consensus (``xtune consensus --out``).

    A bar is taken by every member or by none: every member checks it before any keeps it, and
    a member whose feature then fails on it keeps it like the others (the error says which).
    Thread-safe as :class:`Predictor` is."""

    def __init__(
        self,
        bundle_dir: str | Path | Bundle,
        threads: int = 1,
        *,
        allow_other_interval: bool = False,
        symbol: str | None = None,
    ) -> None:
        if isinstance(bundle_dir, Bundle):
            raise TypeError("ConsensusPredictor takes a consensus folder, not a Bundle")
        self.consensus = load_consensus(bundle_dir)
        self.members = tuple(Predictor(b, threads, allow_other_interval=allow_other_interval)
                             for b in self.consensus.members)  # fmt: skip
        self.history = max(m.history for m in self.members)  # bars kept, and needed to predict
        self._longest = max(self.members, key=lambda m: m.history)
        self._symbol, self._symbol_given = symbol, symbol is not None
        self._lock = threading.Lock()

    @property
    def bars(self) -> pd.DataFrame:
        return self._longest.bars

    def predict_last(self, frame: pd.DataFrame | Bars) -> Prediction:
        bars = _load(frame, self.consensus.columns)
        with self._lock:
            symbol = self._follows(frame_symbol(frame), "predict_last()")
            check_history(self._longest.bundle, bars.source, len(bars))  # before any member moves
            for m in self.members:
                m._check_frame(bars)
            self._symbol = symbol
            for m in self.members:
                m._hold(bars, None)
            return self._combine([m._predict() for m in self.members])

    def update(
        self, bar: Mapping[str, Any] | pd.Series | pd.DataFrame, *, allow_jump: bool = False
    ) -> Prediction:
        new, symbol = one_bar(bar, self.consensus.columns)  # validated once
        with self._lock:
            symbol = self._follows(symbol, f"bar at {new.index[0]}")
            for m in self.members:  # a refusal by any: no member has taken the bar
                m._check_bar(new, allow_jump)
            self._symbol = symbol
            for m in self.members:
                m._take(new, None)
            return self._combine([m._predict_held() for m in self.members])

    def _combine(self, each: list[Prediction]) -> Prediction:
        names, rule = self.consensus.class_names, self.consensus.rule
        horizons = self.consensus.horizons
        probs = {h: np.array([[[p.probabilities[h][c] for c in names]] for p in each])
                 for h in horizons}  # fmt: skip  # h -> [M, 1, C]
        side = {h: combine(probs[h], rule, self.consensus.threshold) for h in horizons}  # [1]
        return Prediction(
            time=each[0].time,
            probabilities={h: dict(zip(names, map(float, probs[h][:, 0].mean(0)), strict=True))
                           for h in horizons},
            direction={h: str(direction_names(side[h], names)[0]) for h in horizons},
            returns={h: float(np.mean([p.returns[h] for p in each])) for h in horizons},
            members=tuple(each),
        )  # fmt: skip


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


def _load(frame: pd.DataFrame | Bars, columns: Sequence[str]) -> Bars:
    if isinstance(frame, Bars):
        return frame
    return load_bars(frame, name="predict_last()", columns=columns)
