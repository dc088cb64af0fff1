"""What a bars file holds at a glance: rows, span, the bar interval and its gaps, and how it
was read (``xtune data check``, and the interval a bundle records)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xtune.features.bars import Bars


@dataclass(frozen=True)
class BarsSummary:
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    interval: pd.Timedelta
    gaps: int
    largest_gap: pd.Timedelta
    largest_gap_at: pd.Timestamp | None
    zero_volume_rows: int
    notes: tuple[str, ...] = ()  # how the source was read, from Bars.notes

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval": str(self.interval),
            "gaps": self.gaps,
            "largest_gap": str(self.largest_gap),
            "largest_gap_at": None
            if self.largest_gap_at is None
            else self.largest_gap_at.isoformat(),
            "zero_volume_rows": self.zero_volume_rows,
            "notes": list(self.notes),
        }


def summarize(bars: Bars) -> BarsSummary:
    """Rows, span, the typical bar interval, and gaps (steps over 1.5x that interval)."""
    index = bars.index
    steps = np.diff(index.asi8)
    if len(steps) == 0:
        interval = pd.Timedelta(0)
        gaps, largest, largest_at = 0, pd.Timedelta(0), None
    else:
        interval = pd.Timedelta(int(np.median(steps)), unit="ns")
        is_gap = steps > 1.5 * interval.value
        gaps = int(is_gap.sum())
        k = int(np.argmax(steps))
        largest = pd.Timedelta(int(steps[k]), unit="ns") if gaps else pd.Timedelta(0)
        largest_at = index[k + 1] if gaps else None
    return BarsSummary(
        rows=len(bars),
        start=index[0],
        end=index[-1],
        interval=interval,
        gaps=gaps,
        largest_gap=largest,
        largest_gap_at=largest_at,
        zero_volume_rows=int((bars.frame["volume"].to_numpy() == 0).sum()),
        notes=bars.notes,
    )
