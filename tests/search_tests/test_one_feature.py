"""A study that may use one feature finds what that feature predicts (the input of an LSTM
was once normalized over the bar's features, which made one feature the constant 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search_tests.studies import write_study
from xtune.features.sample import synthetic_bars
from xtune.search import load_study_config, resolve_storage, run_search, summary
from xtune.settings import Settings


@pytest.mark.slow
def test_a_one_feature_lstm_study_beats_the_baseline(tmp_path: Path) -> None:
    synthetic_bars(2000, seed=3, momentum=0.6).to_csv(tmp_path / "bars.csv")
    study_file = write_study(tmp_path, trials=2, sampler="random", early_stop=False)
    text = study_file.read_text().replace(
        'groups = ["returns", "momentum", "volatility"]\nmin = 1\nmax = 3',
        'groups = []\nnames = ["ret_1"]\nmin = 1\nmax = 1',
    )
    assert 'names = ["ret_1"]' in text
    study_file.write_text(text)
    config = load_study_config(study_file)
    assert config.features.candidates == ("ret_1",)
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    front = summary(study).pareto_front
    assert front and all(row.features == 1 for row in front)
    best = max(row.edge for row in front)
    assert best > 0.15, front  # the old input LayerNorm: edge 0.000 on every trial
