"""Seeding a study with the trader's own setups: ``[[enqueue]]`` and ``xtune enqueue``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.cli import xtune as run_xtune
from tests.search_tests.studies import write_study
from tests.search_tests.test_counts import COUNTED, with_features
from xtune.search import (
    StudyError,
    StudySummary,
    load_study_config,
    open_storage,
    read,
    resolve_storage,
)
from xtune.settings import Settings

ENTRY = """
[[enqueue]]
label = "live model A"
features = ["returns", "momentum"]
parameters = {family = "lstm", "lstm/hidden" = 16, "lstm/layers" = 1, lr = 0.003}
"""


def with_entry(folder: Path, entry: str = ENTRY, **kwargs: object) -> Path:
    path = write_study(folder, **kwargs)  # type: ignore[arg-type]
    path.write_text(path.read_text() + entry)
    return path


def xtune(*args: str) -> subprocess.CompletedProcess[str]:
    return run_xtune(*args)


def _study(path: Path) -> optuna.Study:
    config = load_study_config(path)
    url = resolve_storage(config, None, Settings())
    return optuna.load_study(study_name=config.study.name, storage=open_storage(url))


def test_an_entry_is_parsed_and_its_features_checked(tmp_path: Path) -> None:
    (entry,) = load_study_config(with_entry(tmp_path)).enqueue
    assert entry.label == "live model A"
    assert entry.features == ("returns", "momentum")
    assert entry.parameters == {"family": "lstm", "lstm/hidden": 16, "lstm/layers": 1, "lr": 0.003}


def test_an_entry_without_a_label_is_named_by_file_and_number(tmp_path: Path) -> None:
    config = load_study_config(with_entry(tmp_path, ENTRY.replace('label = "live model A"', "")))
    assert config.enqueue[0].label == "study.toml #1"


ENTRY_ERRORS = [
    (
        '"lstm/hidden" = 16',
        '"lstm/hiden" = 16',
        ['"lstm/hiden" = 16', "did you mean 'lstm/hidden'"],
    ),
    (
        '"lstm/hidden" = 16',
        '"lstm/hidden" = 64',
        ['"lstm/hidden" = 64', "outside the study's range", "[8, 32]"],
    ),
    ('"lstm/hidden" = 16', '"lstm/hidden" = 12', ["off the study's step of 8", "[8, 32] in steps"]),
    ("lr = 0.003", "lr = 0.5", ["parameters.lr = 0.5", "outside", "[0.001, 0.01]"]),
    ("lr = 0.003", 'lr = "fast"', ['parameters.lr = "fast"', "not a number"]),
    ("lr = 0.003", "window = 16", ["parameters.window = 16", "a value the study file fixes"]),
    ('family = "lstm"', 'family = "xlstm"', ['family = "xlstm"', 'one of ["lstm"]']),
    ('"returns", "momentum"', '"retruns"', ['"retruns" is not a feature', "'returns'"]),
    ('"returns", "momentum"', '"rsi_14"', ['"rsi_14"', 'list "momentum"']),
    ('"returns", "momentum"', '"trend"', ['no feature of group "trend"']),
    ('"returns", "momentum"', "", ["features: 0 group(s) on", "min = 1"]),
    ("parameters =", "params =", ["unknown key 'params'", "did you mean 'parameters'"]),
]


@pytest.mark.parametrize(("old", "new", "words"), ENTRY_ERRORS)
def test_a_bad_entry_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, old: str, new: str, words: list[str]
) -> None:
    path = with_entry(tmp_path, ENTRY.replace(old, new, 1))
    with pytest.raises(StudyError) as info:
        load_study_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f'{path}: [[enqueue]] #1 "live model A": '), message
    for word in words:
        assert word in message, message


def test_an_entry_beyond_the_hard_caps_says_so(tmp_path: Path) -> None:
    path = with_entry(tmp_path, ENTRY.replace('"lstm/hidden" = 16', '"lstm/hidden" = 24'))
    path.write_text(path.read_text().replace("max_width = 32", "max_width = 16"))
    with pytest.raises(StudyError) as info:
        load_study_config(path)
    assert str(info.value).endswith(
        '"live model A": parameters."lstm/hidden" = 24: beyond the hard caps ([caps] '
        "max_width = 16, max_depth = 2); write a whole number in [8, 16] in steps of 8."
    )


def test_labels_are_unique_and_entries_are_tables(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r'#2 "live model A": label used twice'):
        load_study_config(with_entry(tmp_path, ENTRY + ENTRY))
    with pytest.raises(StudyError, match=r"\[\[enqueue\]\] must be a list of tables"):
        load_study_config(with_entry(tmp_path, "\n[enqueue]\nlabel = 'x'\n"))


def test_entry_features_must_match_the_counts(tmp_path: Path) -> None:
    path = with_features(tmp_path, COUNTED)
    patterns = [f"cdl_{n}" for n in ("doji", "hammer", "engulfing", "harami", "marubozu")]
    entry = f'\n[[enqueue]]\nlabel = "A"\nfeatures = {json.dumps(["trend", *patterns])}\n'
    path.write_text(path.read_text() + entry)
    with pytest.raises(StudyError, match=r"5 pattern feature\(s\), but \[features.count\] pattern"):
        load_study_config(path)


def _cli(*args: str) -> str:
    from typer.testing import CliRunner

    from xtune.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_a_seeded_search_runs_the_entry_first_once_and_status_shows_it(tmp_path: Path) -> None:
    from xtune.search import run_search

    path = with_entry(tmp_path, trials=2)
    config = load_study_config(path)
    url = resolve_storage(config, None, Settings())
    run_search(config, url, Settings())
    run_search(config, url, Settings(), n_trials=1)  # a re-run must not queue the entry again
    study = _study(path)
    first = study.trials[0]
    assert read(first).label == "live model A" and read(first).status in ("ok", "stopped")
    assert {k: first.params[k] for k in ("family", "lstm/hidden", "lstm/layers", "lr")} == {
        "family": "lstm", "lstm/hidden": 16, "lstm/layers": 1, "lr": 0.003}  # fmt: skip
    assert read(first).plan.units == ("returns", "momentum")  # type: ignore[union-attr]
    assert [t.number for t in study.trials if read(t).label] == [0]
    assert len(study.trials) >= 3
    info = StudySummary.from_json(_cli("status", str(path), "--format", "json", "--no-plots"))
    assert [(r.trial, r.label) for r in info.seeded] == [(0, "live model A")]
    assert all(r.label in (None, "live model A") for r in info.pareto_front)
    assert 'your setup "live model A": trial 0' in _cli("status", str(path), "--no-plots")


@pytest.mark.slow
def test_a_bad_entry_stops_the_search_before_anything_is_stored(tmp_path: Path) -> None:
    path = with_entry(tmp_path, ENTRY.replace("lr = 0.003", "lr = 0.5"))
    result = xtune("search", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "parameters.lr = 0.5" in lines[0] and "live model A" in lines[0]
    assert not list(tmp_path.glob("*.journal"))


@pytest.mark.slow
def test_xtune_enqueue_queues_setups_on_an_existing_study(tmp_path: Path) -> None:
    from xtune.features import load_bars
    from xtune.search import create_study

    path = write_study(tmp_path)
    config = load_study_config(path)
    create_study(config, resolve_storage(config, None, Settings()), Settings(),
                 load_bars(tmp_path / "bars.csv"))  # fmt: skip
    setups = tmp_path / "setups.json"
    setups.write_text(json.dumps([
        {"label": "live A", "features": ["returns"], "parameters": {"lstm/hidden": 24}},
        {"label": "live B", "parameters": {"family": "lstm", "lr": 0.002}},
    ]))  # fmt: skip
    first = _cli("enqueue", str(path), str(setups))
    assert '"live A": queued' in first and '"live B": queued' in first
    assert _cli("enqueue", str(path), str(setups)).count("already in the study, skipped") == 2
    waiting = _study(path).get_trials(states=(TrialState.WAITING,))
    assert [read(t).label for t in waiting] == ["live A", "live B"]
    assert waiting[0].system_attrs["fixed_params"] == {"lstm/hidden": 24, "use/returns": True,
                                                       "use/momentum": False,
                                                       "use/volatility": False}  # fmt: skip
    setups.write_text(json.dumps({"label": "C", "parameters": {"lstm/layers": 3}}))
    bad = xtune("enqueue", str(path), str(setups))  # the real entry point: exit 2, one line
    assert bad.returncode == 2
    assert bad.stderr.strip() == (f'error: {setups}: entry #1 "C": parameters."lstm/layers" = 3: '
                                  "outside the study's range; write a whole number in [1, 2].")  # fmt: skip
    assert len(_study(path).trials) == 2
