"""A trader's own indicators, declared the way xtune's catalog declares its features.

Name a file like this in a study's ``[features] plugins``; before any trial, xtune audits
every feature in it for look-ahead, warm-up and scale (``xtune features audit STUDY.toml``),
and `xtune export` copies it into the bundle, so the trading PC computes the same values.

Each function takes the bars (a DataFrame with open, high, low, close, volume on a time
index) and returns one value per bar; the first ``warmup`` values may be NaN. Keep values
scale-free (ratios, oscillators): the audit refuses a price level or a running total.
"""

from xtune.features import register


@register("my_range_z_20", "volatility", 19, "bar range / close, z-scored over 20 bars", window=20)
def my_range_z_20(bars):
    r = (bars["high"] - bars["low"]) / bars["close"]
    return (r - r.rolling(20).mean()) / r.rolling(20).std()


@register(
    "my_close_pos_24",
    "momentum",
    23,
    "close within the 24-bar high-low range, 0..1",
    neutral=0.5,
    window=24,
)  # neutral: the value of a flat stretch (0/0)
def my_close_pos_24(bars):
    high = bars["high"].rolling(24).max()
    low = bars["low"].rolling(24).min()
    return (bars["close"] - low) / (high - low)
