"""Tiny study files for tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from xtune.features.sample import synthetic_bars

TINY = """
[study]
name = "{name}"
trials = {trials}
seed = 0
sampler = "{sampler}"
objectives = {objectives}
{storage}

[data]
source = "{source}"
window = {window}

[split]
min_samples = 32

[features]
groups = ["returns", "momentum", "volatility"]
min = 1
max = 3

[model]
families = {families}

[model.lstm]
hidden = [8, 32]
layers = [1, 2]

[model.xlstm]
embed = [16, 16]
heads = {{choices = [2]}}
blocks = [1, 1]

[train]
epochs = {epochs}
patience = 1
batch_size = {{choices = [256]}}
lr = [1e-3, 1e-2]
weight_decay = [1e-4, 1e-2]
dropout = [0.0, 0.1]
return_weight = [0.0, 0.5]

[caps]
max_width = 32
max_depth = 2
max_params = {max_params}
max_latency_ms = 50.0

[search]
early_stop = {early_stop}
"""


def write_study(
    folder: Path,
    *,
    name: str | None = None,
    trials: int = 3,
    sampler: str = "tpe",
    objectives: str = '["accuracy", "loss"]',
    storage: str = "",
    source: str = "bars.csv",
    window: str = "16",
    families: str = '["lstm"]',
    max_params: int = 100_000,
    epochs: int = 2,
    early_stop: bool = True,
) -> Path:
    """A tiny study on 1,500 synthetic bars: each trial trains in about a second."""
    bars = folder / "bars.csv"
    if source == "bars.csv" and not bars.exists():
        synthetic_bars(1500, seed=9).to_csv(bars)
    path = folder / "study.toml"
    path.write_text(TINY.format(
        name=name or f"t_{uuid.uuid4().hex[:8]}", trials=trials, sampler=sampler, objectives=objectives,
        storage=f'storage = "{storage}"' if storage else "", source=source, window=window,
        families=families, max_params=max_params, epochs=epochs,
        early_stop=str(early_stop).lower(),
    ))  # fmt: skip
    return path
