"""``[features.count]``: per-group feature counts, honoured by construction when sampling."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from xtune.features import CATALOG
from xtune.search import Replay, StudyError, load_study_config, read, resolve_storage, suggest
from xtune.search.config import GroupCount, StudyConfig
from xtune.search.space import feature_params, parameter_space
from xtune.settings import Settings

COUNTED = """[features]
groups = ["returns", "trend", "pattern"]
unit = "feature"
min = 1
max = 40

[features.count]
pattern = 6
trend = [16, 16]
"""


def with_features(folder: Path, block: str, **kwargs: object) -> Path:
    """The tiny study with its ``[features]`` section replaced by ``block``."""
    path = write_study(folder, **kwargs)  # type: ignore[arg-type]
    text = path.read_text()
    start, end = text.index("[features]"), text.index("[model]")
    path.write_text(text[:start] + block + "\n" + text[end:])
    return path


def _groups(names: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[CATALOG[n].group] = out.get(CATALOG[n].group, 0) + 1
    return out


def test_counts_parse_as_low_high_pairs(tmp_path: Path) -> None:
    config = load_study_config(with_features(tmp_path, COUNTED))
    assert config.features.count == (GroupCount("pattern", 6, 6), GroupCount("trend", 16, 16))
    assert len(config.features.members("pattern")) == 61


def _plans(config: StudyConfig, sampler: optuna.samplers.BaseSampler, n: int) -> list[tuple]:
    study = optuna.create_study(directions=config.directions, sampler=sampler)
    out = []
    for i in range(n):
        trial = study.ask()
        plan = suggest(trial, config)
        study.tell(trial, [0.5 + (i % 7) / 20, 0.7 - (i % 5) / 20])
        out.append((study.trials[-1], plan))
    return out


@pytest.mark.parametrize("name", ["random", "tpe", "nsga2"])
def test_every_sampled_trial_has_the_counts_and_replays(tmp_path: Path, name: str) -> None:
    block = COUNTED.replace("trend = [16, 16]", "trend = [2, 8]")
    config = load_study_config(with_features(tmp_path, block))
    samplers = {"random": optuna.samplers.RandomSampler(seed=1),
                "tpe": optuna.samplers.TPESampler(seed=1, multivariate=True, group=True,
                                                  n_startup_trials=5),
                "nsga2": optuna.samplers.NSGAIISampler(seed=1, population_size=6)}  # fmt: skip
    trends = set()
    for trial, plan in _plans(config, samplers[name], 24):
        groups = _groups(plan.units)
        assert groups["pattern"] == 6 and 2 <= groups["trend"] <= 8
        assert groups["trend"] == trial.params["count/trend"]
        assert "count/pattern" not in trial.params  # exactly 6: fixed, not a parameter
        assert suggest(Replay(trial.params), config) == plan
        trends.add(groups["trend"])
    assert len(trends) > 1


def test_feature_params_invert_the_draws(tmp_path: Path) -> None:
    block = COUNTED.replace("trend = [16, 16]", "trend = [2, 8]")
    config = load_study_config(with_features(tmp_path, block))
    f = config.features
    chosen = (*f.members("returns")[:3], *f.members("trend")[5:9], *f.members("pattern")[-6:])
    params = feature_params(f, chosen)
    assert set(params) <= set(parameter_space(config))
    rest = {"window": 16, "family": "lstm", "dropout": 0.0, "lstm/hidden": 8, "lstm/layers": 1,
            "lr": 1e-3, "weight_decay": 1e-3, "return_weight": 0.0, "batch_size": 256}  # fmt: skip
    assert suggest(Replay(params | rest), config).units == chosen


def test_the_plain_space_keeps_its_parameter_names(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path))
    names = set(parameter_space(config))
    assert {"use/returns", "use/momentum", "use/volatility"} <= names
    assert not any(n.startswith(("count/", "priority/")) for n in names)


COUNT_ERRORS = [
    ('unit = "feature"', 'unit = "group"', ["[features.count]", 'unit = "feature"']),
    ("pattern = 6", "patern = 6", ["[features.count] patern = 6", "did you mean 'pattern'"]),
    ("pattern = 6", "pattern = [7, 6]", ["pattern = [7, 6]", "low 7 > high 6"]),
    ("pattern = 6", "pattern = [6, 62]", ["pattern = [6, 62]", "61 pattern features"]),
    ("pattern = 6", "pattern = -1", ["pattern = -1", "not a count"]),
    ("pattern = 6", "pattern = true", ["pattern = true", "not a count"]),
    ("pattern = 6", "pattern = [1, 2, 3]", ["pattern = [1, 2, 3]", "not a count"]),
    ("pattern = 6", "volume = 2", ["volume = 2", "searches no volume feature"]),
    ("max = 40", "max = 20", ["the lows add up to 22", "max = 20"]),
    ("min = 1", "min = 40", ["at most 34 features", "min = 40"]),
]


@pytest.mark.parametrize(("old", "new", "words"), COUNT_ERRORS)
def test_bad_counts_are_refused_in_one_line(
    tmp_path: Path, old: str, new: str, words: list[str]
) -> None:
    path = with_features(tmp_path, COUNTED.replace(old, new, 1))
    with pytest.raises(StudyError) as info:
        load_study_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    for word in words:
        assert word in message, message


@pytest.mark.slow
def test_a_counted_search_wastes_no_trial_on_the_feature_count(tmp_path: Path) -> None:
    """6 trials of the tiny study with exactly 6 patterns and 16 trend features: every trial
    has those counts, and none is infeasible for the feature count."""
    from xtune.search import run_search

    block = COUNTED.replace('["returns", "trend", "pattern"]', '["trend", "pattern"]')
    config = load_study_config(with_features(tmp_path, block, trials=6, max_params=10**7))
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert len(complete) >= 6
    for t in complete:
        plan = read(t).plan
        assert plan is not None
        assert _groups(plan.data.features) == {"pattern": 6, "trend": 16}
        assert t.constraints["features_min"] == -21.0  # 22 features on, of 1 to 40
        assert t.constraints["features_max"] == -18.0
        assert read(t).status in ("ok", "stopped"), read(t).reason
    assert re.fullmatch(r"priority/cdl_\w+", next(p for p in complete[0].params if "cdl" in p))
