"""Two exported bundles (LSTM and xLSTM) from tiny searches, shared by the export tests, and
two more on a random walk for the consensus tests."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.search_tests.studies import write_study
from xtune.export import export_bundle, pick_trial
from xtune.features.sample import synthetic_bars
from xtune.search import load_study_config, resolve_storage, run_search
from xtune.settings import Settings

ENV = Settings()


def _exported(
    root: Path, family: str, trials: int = 3, random_walk: int = 0
) -> tuple[Path, Path, optuna.Study]:
    folder = root / family
    folder.mkdir()
    if random_walk:  # write_study keeps bars.csv when it is there
        synthetic_bars(random_walk, seed=5, momentum=0.0).to_csv(folder / "bars.csv")
    study_file = write_study(folder, trials=trials, families=f'["{family}"]')
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, ENV), ENV)
    bundle = folder / "bundle"
    export_bundle(config, pick_trial(study), bundle, ENV)
    return bundle, study_file, study


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, optuna.Study]]:
    root = tmp_path_factory.mktemp("exports")
    return {family: _exported(root, family) for family in ("lstm", "xlstm")}


@pytest.fixture(scope="session")
def random_walk_exports(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, Path, optuna.Study]]:
    """An LSTM and an xLSTM on the same 3,000 random-walk bars (2 trials each)."""
    root = tmp_path_factory.mktemp("random_walk")
    return {f: _exported(root, f, trials=2, random_walk=3000) for f in ("lstm", "xlstm")}
