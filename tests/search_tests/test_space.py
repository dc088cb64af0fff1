"""suggest() apart from training: caps bound the space, plans round-trip, replays match."""

from __future__ import annotations

from pathlib import Path

import optuna

from tests.search_tests.studies import write_study
from xtune.search import Plan, Replay, load_study_config, suggest


def _plans(
    tmp_path: Path, n: int = 30, **kwargs: str
) -> list[tuple[optuna.trial.FrozenTrial, object]]:
    config = load_study_config(write_study(tmp_path, **kwargs))  # type: ignore[arg-type]
    study = optuna.create_study(
        directions=config.directions, sampler=optuna.samplers.RandomSampler(seed=1)
    )
    out = []
    for _ in range(n):
        trial = study.ask()
        plan = suggest(trial, config)
        study.tell(trial, [0.5, 0.7])
        out.append((study.trials[-1], plan))
    return out


def test_plans_respect_hard_caps_and_feature_groups(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path, families='["lstm", "xlstm"]'))
    for trial, plan in _plans(tmp_path, families='["lstm", "xlstm"]'):
        model = plan.params.model  # type: ignore[attr-defined]
        width = model.hidden if model.family == "lstm" else model.embed
        depth = model.layers if model.family == "lstm" else model.blocks
        assert width <= config.caps.max_width and depth <= config.caps.max_depth
        assert model.n_features == len(plan.data.features)  # type: ignore[attr-defined]
        for unit in plan.units:  # type: ignore[attr-defined]
            assert set(config.features.features_of(unit)) <= set(plan.data.features)  # type: ignore[attr-defined]
        if model.family == "xlstm":
            assert all(
                trial.params[f"xlstm/slstm_{i}"] == (i in model.slstm_at) for i in range(depth)
            )


def test_a_plan_round_trips_and_replays_from_stored_params(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path, families='["lstm", "xlstm"]'))
    for trial, plan in _plans(tmp_path, n=10, families='["lstm", "xlstm"]'):
        assert Plan.from_json(plan.to_json()) == plan  # type: ignore[attr-defined]
        assert suggest(Replay(trial.params), config) == plan
