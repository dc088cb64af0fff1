"""Study files: the shipped ones load, and every kind of mistake is named before any trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search_tests.studies import write_study
from xtune.search import StudyError, load_study_config
from xtune.search.ranges import Choice, FloatRange, IntRange

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name", ["quickstart.toml", "gpu_eurusd.toml", "eurusd_patterns.toml", "eurusd_indicators.toml"]
)
def test_shipped_study_files_load(name: str) -> None:
    config = load_study_config(ROOT / "studies" / name)
    assert config.directions[:2] == ["maximize", "minimize"]
    assert config.caps.max_params > 0 and config.features.candidates


def test_values_become_typed_spaces(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path))
    assert config.model.space("lstm").hidden == IntRange(8, 32, 8)
    assert config.train.lr == FloatRange(1e-3, 1e-2, log=True)
    assert config.train.batch_size == Choice((256,))
    assert Path(config.data.source).is_absolute()  # resolved beside the study file
    with pytest.raises(AttributeError):
        config.study.name = "changed"  # type: ignore[misc]  # frozen


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    path = write_study(tmp_path)
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("min = 1", "mni = 1", ["[features]", "unknown key 'mni'", "Did you mean 'min'"]),
        ("hidden = [8, 32]", "hidden = [32, 8]", ["[model.lstm] hidden", "low 32 > high 8"]),
        (
            "max_width = 32",
            "max_width = 4",
            ["[caps]", "max_width 4", "below the smallest", "model.lstm.hidden"],
        ),
        ("layers = [1, 2]", "layers = [3, 4]", ["[caps]", "max_depth 2", "model.lstm.layers"]),
        ("max_depth = 2", "max_depth = 0", ["[caps] max_depth = 0", "outside [1, 64]"]),
        (
            'sampler = "tpe"',
            'sampler = "cmaes"',
            ["[study] sampler", '"cmaes" is unknown', '"tpe", "nsga2", "random", "gp"'],
        ),
        (
            'groups = ["returns",',
            'groups = ["astrology",',
            ["[features]", "unknown group", "astrology"],
        ),
        (
            "[features]\n",
            '[features]\nnames = ["rsi_99"]\n',
            ["[features]", "rsi_99", "xtune features list"],
        ),
        ('objectives = ["accuracy", "loss"]', 'objectives = ["profit"]', ["[study]", "profit"]),
        ("[split]", "[splitt]", ["unknown section [splitt]", "Did you mean [split]"]),
        ("min = 1", "min = 5", ["[features]", "min 5 and max 3"]),
        ("lr = [1e-3, 1e-2]", "lr = [0.0, 1e-2]", ["[train] lr", "low 0.0 is outside (0, 1]"]),
        (
            "weight_decay = [1e-4, 1e-2]",
            "weight_decay = [0, 1e-2]",
            ["[train] weight_decay", "log scale", "low must be > 0"],
        ),
        ('families = ["lstm"]', 'families = ["transformer"]', ["[model]", "transformer"]),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, old: str, new: str, words: list[str]) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(StudyError) as err:
        load_study_config(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in {message}"


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="not found"):
        load_study_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname=1")
    with pytest.raises(StudyError, match="not valid TOML"):
        load_study_config(bad)
