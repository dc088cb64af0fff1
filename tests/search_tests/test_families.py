"""The family registry keeps every seeded study's draws, and the caps' family-neutral names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from xtune.search import StudyError, load_study_config, suggest

ROOT = Path(__file__).resolve().parents[2]
# Drawn from studies/quickstart.toml by RandomSampler(seed), 6 trials per seed, before the
# families moved into xtune.models.families: existing studies and their trials replay.
DRAWS = json.loads((Path(__file__).with_name("quickstart_draws.json")).read_text())


@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_quickstart_draws_the_same_parameters_in_the_same_order(seed: str) -> None:
    config = load_study_config(ROOT / "studies" / "quickstart.toml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=int(seed)))
    for expected in DRAWS[seed]:
        trial = study.ask()
        suggest(trial, config)
        assert list(trial.params.items()) == list(expected.items())
        study.tell(trial, 0.0)


def _quickstart(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "quickstart.toml"
    shutil.copy(ROOT / "studies" / "quickstart.toml", path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_old_cap_names_warn_naming_the_new_key_and_mean_the_same(tmp_path: Path) -> None:
    path = _quickstart(tmp_path, "max_width = 48\nmax_depth = 2", "max_hidden = 40\nmax_layers = 1")
    with pytest.warns(FutureWarning) as caught:
        config = load_study_config(path)
    messages = [str(w.message) for w in caught]
    assert any("[caps] max_hidden is deprecated; write max_width = 40" in m for m in messages)
    assert any("[caps] max_layers is deprecated; write max_depth = 1" in m for m in messages)
    assert (config.caps.max_width, config.caps.max_depth) == (40, 1)


def test_an_old_and_a_new_cap_name_together_are_refused(tmp_path: Path) -> None:
    path = _quickstart(tmp_path, "max_depth = 2", "max_depth = 2\nmax_layers = 2")
    with pytest.raises(StudyError, match=r"\[caps\] max_layers and max_depth are one cap"):
        load_study_config(path)
