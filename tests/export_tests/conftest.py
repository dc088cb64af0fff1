"""Two exported bundles (LSTM and xLSTM) from tiny searches, shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.search_tests.studies import write_study
from xtune.export import export_bundle, pick_trial
from xtune.search import load_study_config, resolve_storage, run_search
from xtune.settings import Settings

ENV = Settings()


def _exported(root: Path, family: str) -> tuple[Path, Path, optuna.Study]:
    folder = root / family
    folder.mkdir()
    study_file = write_study(folder, trials=3, families=f'["{family}"]')
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, ENV), ENV)
    bundle = folder / "bundle"
    export_bundle(config, pick_trial(study), bundle, ENV)
    return bundle, study_file, study


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, optuna.Study]]:
    root = tmp_path_factory.mktemp("exports")
    return {family: _exported(root, family) for family in ("lstm", "xlstm")}
