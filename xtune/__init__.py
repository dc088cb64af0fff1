"""xtune: find the best small sequence model for a trading bot."""

from __future__ import annotations

__version__ = "0.1.0"
