"""The live bot's predictor: one verified bundle, one onnxruntime session, a rolling buffer of
bars; one new bar in, that bar's probabilities out. Torch-free, like :mod:`._predict`.

:func:`open_predictor` opens a folder from ``xtune export`` as a :class:`Predictor` and one
from ``xtune consensus --out`` as a :class:`ConsensusPredictor`; both are a
:class:`LivePredictor`, the calls a bot makes.

Each answer equals what ``xtune predict`` gives for that bar on the full history (to float
rounding): the buffer holds the bundle's ``history``, after which no feature depends on where
the bars begin (see :func:`xtune.features.history.memory_violations`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from xtune.features.bars import OHLCV, Bars
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
from xtune.runtime.feed import Feed, check_symbol, frame_symbol, history_bars, one_bar
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


class LivePredictor(Protocol):
    """What a bot calls, on one bundle (:class:`Predictor`) or a consensus
    (:class:`ConsensusPredictor`); :func:`open_predictor` gives the one a folder holds."""

    @property
    def history(self) -> int:
        """Bars kept, and needed to predict."""
        ...

    @property
    def bars(self) -> pd.DataFrame:
        """The buffered bars, oldest first (at most :attr:`history`)."""
        ...

    def predict_last(self, frame: pd.DataFrame | Bars) -> Prediction:
        """The newest bar's prediction from a whole history; its tail becomes the buffer."""
        ...

    def update(
        self, bar: Mapping[str, Any] | pd.Series | pd.DataFrame, *, allow_jump: bool = False
    ) -> Prediction:
        """Add one new bar and predict at it."""
        ...


def open_predictor(
    folder: str | Path,
    threads: int = 1,
    *,
    allow_other_interval: bool = False,
    symbol: str | None = None,
) -> LivePredictor:
    """The live predictor of a bundle folder: a :class:`ConsensusPredictor` where ``folder``
    holds a consensus (``xtune consensus --out``), else a :class:`Predictor`.

    Args:
        folder: a bundle from ``xtune export`` or ``xtune consensus --out``.
        threads: onnxruntime threads per model.
        allow_other_interval: accept bars at another interval than training's.
        symbol: the market followed (see :class:`Predictor`).

    Raises:
        BundleError: the bundle, or a consensus member, is missing, modified or unreadable.

    Example::

        bot = open_predictor("bundle", symbol="EURUSD")
        bot.predict_last(history)
        p = bot.update(bar)
    """
    kind = ConsensusPredictor if is_consensus(folder) else Predictor
    return kind(folder, threads, allow_other_interval=allow_other_interval, symbol=symbol)


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
        bundle_dir: a bundle from ``xtune export`` (verified once, here, or a verified Bundle).
            A consensus folder (``xtune consensus --out``) gives a :class:`ConsensusPredictor`
            with a FutureWarning: open one with :func:`open_predictor`.
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
        # A running bot that opens a consensus as Predictor(folder) keeps trading, warned; the
        # ConsensusPredictor returned is no Predictor, so Python does not run __init__ on it.
        if not isinstance(bundle_dir, Bundle) and is_consensus(bundle_dir):
            warnings.warn(
                f"Predictor({str(bundle_dir)!r}) opens a consensus bundle as a "
                "ConsensusPredictor, which has no bundle, model or int8_agreement; write "
                "open_predictor(folder) (or ConsensusPredictor(folder)) instead.",
                FutureWarning,
                stacklevel=2,
            )
            return cast(Predictor, ConsensusPredictor(bundle_dir, *args, **kwargs))
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
        bars = history_bars(frame, self.bundle.manifest.columns)
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
            direction={
                h: m.class_names[int(probs[0, j].argmax())] for j, h in enumerate(m.horizons)
            },
            returns={h: float(returns[0, j]) for j, h in enumerate(m.horizons)},
        )


class ConsensusPredictor:
    """A consensus bundle's live predictor: one :class:`Predictor` per member, all fed the same
    bars; each answer is the members' answers combined by the consensus rule, with the members'
    own answers in :attr:`Prediction.members`.

    A bar is taken by every member or by none: every member checks it before any keeps it, and
    a member whose feature then fails on it keeps it like the others (the error says which).
    Thread-safe as :class:`Predictor` is.

    Args:
        folder: a consensus bundle from ``xtune consensus --out`` (it and every member
            verified once, here).
        threads: onnxruntime threads per member.
        allow_other_interval: accept bars at another interval than training's.
        symbol: the market followed, as for :class:`Predictor`.
    """

    def __init__(
        self,
        folder: str | Path,
        threads: int = 1,
        *,
        allow_other_interval: bool = False,
        symbol: str | None = None,
    ) -> None:
        self.consensus = load_consensus(folder)
        self.members = tuple(
            Predictor(b, threads, allow_other_interval=allow_other_interval)
            for b in self.consensus.members
        )
        self.history = max(m.history for m in self.members)  # bars kept, and needed to predict
        self._longest = max(self.members, key=lambda m: m.history)
        self._symbol, self._symbol_given = symbol, symbol is not None
        self._lock = threading.Lock()

    @property
    def bars(self) -> pd.DataFrame:
        """The longest member's buffered bars, oldest first (at most :attr:`history`)."""
        return self._longest.bars

    def predict_last(self, frame: pd.DataFrame | Bars) -> Prediction:
        bars = history_bars(frame, self.consensus.columns)
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

    def _follows(self, symbol: str | None, where: str) -> str | None:
        return check_symbol(self._symbol, self._symbol_given, symbol, where)

    def _combine(self, each: list[Prediction]) -> Prediction:
        names, rule = self.consensus.class_names, self.consensus.rule
        horizons = self.consensus.horizons
        probs = {
            h: np.array([[[p.probabilities[h][c] for c in names]] for p in each]) for h in horizons
        }  # h -> [M, 1, C]
        side = {h: combine(probs[h], rule, self.consensus.threshold) for h in horizons}  # [1]
        return Prediction(
            time=each[0].time,
            probabilities={
                h: dict(zip(names, map(float, probs[h][:, 0].mean(0)), strict=True))
                for h in horizons
            },
            direction={h: str(direction_names(side[h], names)[0]) for h in horizons},
            returns={h: float(np.mean([p.returns[h] for p in each])) for h in horizons},
            members=tuple(each),
        )
