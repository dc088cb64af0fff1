"""A complete trading bot around xtune's live predictor: a feed that follows the CSV file your
trading platform appends closed bars to, one prediction per new bar, and a decision.

    python examples/bot.py BUNDLE --feed bars.csv [--threshold 0.6] [--poll 5] [--stop-after N]

BUNDLE is a folder from ``xtune export`` (or ``xtune consensus --out``). The feed file holds
closed bars, oldest first, in any layout ``xtune data check`` accepts (time, open, high, low,
close, volume; a MetaTrader export), and the platform appends a row as each bar closes. The
bot warms up on the bars already in the file, then predicts at every new row, polling every
``--poll`` seconds; Ctrl-C stops it. ``Broker`` is where your platform's order API goes: this
one prints each decision. Needs only the trading PC's install (no torch, no optuna).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtune.errors import XtuneError
from xtune.features import load_bars
from xtune.runtime import Prediction, open_predictor


class CsvFeed:
    """The bars of a CSV file that another program appends to: all of them once, then only
    the rows added since the last look."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, 0

    def history(self) -> Any:
        bars = load_bars(self.path)
        self.seen = len(bars)
        return bars

    def new_bars(self) -> list[dict[str, Any]]:
        """Rows appended since the last call, as bars for ``update()``. A row still
        being written fails the file's checks: it is read at the next poll instead."""
        try:
            bars = load_bars(self.path)
        except XtuneError:
            return []
        new = bars.frame.iloc[self.seen :]
        self.seen = len(bars)
        return [{"time": t, **row.to_dict()} for t, row in new.iterrows()]


@dataclass(frozen=True)
class Decision:
    action: str  # "buy", "sell" or "flat"
    probability: float  # of the predicted direction


def decide(p: Prediction, threshold: float) -> Decision:
    """Buy on a confident "up", sell on a confident "down" at the first horizon, else flat."""
    h = min(p.direction)
    direction = p.direction[h]
    probability = p.probabilities[h].get(direction, 0.0)
    if direction in ("up", "down") and probability >= threshold:
        return Decision("buy" if direction == "up" else "sell", probability)
    return Decision("flat", probability)


class Broker:
    """Stands in for your platform's order API."""

    def act(self, p: Prediction, d: Decision) -> None:
        print(f"{p.time.isoformat()} {d.action} p={d.probability:.4f}", flush=True)


def run(bundle: Path, feed: CsvFeed, broker: Broker, args: argparse.Namespace) -> int:
    bot = open_predictor(bundle)  # a Predictor, or a ConsensusPredictor for a consensus
    first = bot.predict_last(feed.history())
    broker.act(first, decide(first, args.threshold))
    done = 0
    while args.stop_after is None or done < args.stop_after:
        for bar in feed.new_bars():
            p = bot.update(bar)
            broker.act(p, decide(p, args.threshold))
            done += 1
        if args.stop_after is None or done < args.stop_after:
            time.sleep(args.poll)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bundle", type=Path, help="bundle folder from xtune export or xtune consensus --out"
    )
    parser.add_argument("--feed", type=Path, required=True, help="CSV file of closed bars")
    parser.add_argument("--threshold", type=float, default=0.6, help="probability to act on")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--stop-after", type=int, help="stop after this many new bars")
    args = parser.parse_args(argv)
    try:
        return run(args.bundle, CsvFeed(args.feed), Broker(), args)
    except XtuneError as exc:  # a bad bundle or bad bars: one line, as xtune's commands do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
