"""Hostile study files: every value is checked by type and range when the file is loaded, so
nothing is created, nothing fails later at trial time, and nothing exhausts the host."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from tests.cli import xtune
from tests.search_tests.studies import write_study
from xtune.search import StudyError, load_study_config
from xtune.search.ranges import IntRange, first_not_multiple, highest, lowest, values


def _study_with(folder: Path, section: str, line: str) -> Path:
    """The tiny study with ``line`` (``key = value``) set in ``[section]``, replacing that key."""
    path = write_study(folder)
    lines = path.read_text().splitlines()
    key = line.split("=")[0].strip()
    if f"[{section}]" not in lines:
        lines += ["", f"[{section}]"]
    start = lines.index(f"[{section}]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    at = [i for i in range(start, end) if lines[i].split("=")[0].strip() == key]
    if at:
        lines[at[0]] = line
    else:
        lines.insert(start, line)
    path.write_text("\n".join(lines) + "\n")
    return path


# (section, line, words the one-line message must hold besides the file name)
HOSTILE = [
    # wrong types
    ("study", 'trials = "two"', ['[study] trials = "two"', "is a string", "whole number"]),
    ("study", "trials = true", ["[study] trials = true", "a boolean, not a number"]),
    ("train", 'lr = "fast"', ['[train] lr = "fast"', "not a number", "e.g. lr ="]),
    ("data", "window = 16.5", ["[data] window = 16.5", "not a whole number"]),
    ("study", "storage = 5", ["[study] storage = 5", "not a string"]),
    ("train", 'batch_size = {choices = [128, "x"]}', ["[train] batch_size", 'choice "x"']),
    ("model.lstm", "layers = [true, 2]", ["[model.lstm] layers", "low true"]),
    ("data", "window_step = 0", ["[data] window_step = 0", "outside [1, 100000]"]),
    ("model.lstm", "hidden_step = 0", ["[model.lstm] hidden_step = 0", "outside [1, 65536]"]),
    ("labels", "horizons = 1", ["[labels] horizons = 1", "not a non-empty list"]),
    ("split", 'val = "x"', ['[split] val = "x"', "not a number"]),
    ("features", 'groups = "returns"', ['[features] groups = "returns"', "list of strings"]),
    ("study", 'objectives = "accuracy"', ["[study] objectives", "list of strings"]),
    ("model", 'families = "lstm"', ['[model] families = "lstm"', "list of strings"]),
    ("train", "lr = nan", ["[train] lr = nan", "not a finite number"]),
    ("train", "dropout = inf", ["[train] dropout = inf", "not a finite number"]),
    ("model.xlstm", "heads = {choices = []}", ["[model.xlstm] heads", "at least one value"]),
    ("data", "window = [16]", ["[data] window = [16]", "[low, high]"]),
    # values that used to fail only at trial time, after the study was created
    ("model.lstm", "hidden = 0", ["[model.lstm] hidden = 0", "outside [3, 65536]"]),
    ("model.lstm", "layers = 0", ["[model.lstm] layers = 0", "outside [1, 64]"]),
    ("model.xlstm", "embed = [0, 16]", ["[model.xlstm] embed", "low 0 is outside [4, 65536]"]),
    ("model.xlstm", "heads = {choices = [0]}", ["[model.xlstm] heads", "choice 0"]),
    ("model.xlstm", "blocks = [0, 1]", ["[model.xlstm] blocks", "low 0"]),
    ("train", "lr = -0.001", ["[train] lr = -0.001", "outside (0, 1]"]),
    ("train", "lr = 0", ["[train] lr = 0", "outside (0, 1]"]),
    ("train", "dropout = 5", ["[train] dropout = 5", "outside [0, 1)"]),
    ("train", "batch_size = 0", ["[train] batch_size = 0", "outside [1, 1048576]"]),
    ("train", "epochs = 0", ["[train] epochs = 0", "outside [1, 100000]"]),
    ("train", "patience = 0", ["[train] patience = 0", "outside [1, 100000]"]),
    ("train", "weight_decay = -1", ["[train] weight_decay = -1", "outside [0, 1]"]),
    ("train", "return_weight = -0.5", ["[train] return_weight = -0.5", "outside [0, 100]"]),
    ("train", "label_smoothing = 1.0", ["[train] label_smoothing = 1.0", "outside [0, 0.5)"]),
    ("train", "focal_gamma = -1", ["[train] focal_gamma = -1", "outside [0, 100]"]),
    ("caps", "max_params = 0", ["[caps] max_params = 0", "outside [1, 10000000000]"]),
    ("caps", "max_latency_ms = 0", ["[caps] max_latency_ms = 0", "outside (0, 1000000]"]),
    ("caps", "max_width = 16.0", ["[caps] max_width = 16.0", "not a whole number"]),
    ("study", "seed = -1", ["[study] seed = -1", "outside [0, 2147483647]"]),
    ("split", "folds = 0", ["[split] folds = 0", "outside [1, 100]"]),
    # accepted before, but should not be
    ("trading", "fee = -5", ["[trading] fee = -5", "outside [0, 0.1)"]),
    ("trading", "fee = 0.5", ["[trading] fee = 0.5", "outside [0, 0.1)"]),
    # keys added later: the same rules
    ("train", 'max_seconds = "x"', ['[train] max_seconds = "x"', "not a number"]),
    ("train", "max_seconds = -1", ["[train] max_seconds = -1", "outside [0, 10000000]"]),
    ("trading", "confident_share = 0", ["[trading] confident_share = 0", "outside (0, 1]"]),
    ("trading", "confident_share = true", ["[trading] confident_share = true", "not a number"]),
    ("study", 'name = ""', ['[study] name = ""', "empty"]),
    ("study", 'name = "../../x"', ['[study] name = "../../x"', "cannot be used as a file name"]),
    ("study", 'name = "a/b"', ['[study] name = "a/b"', "cannot be used as a file name"]),
    ("study", 'name = "x\\u0000"', ["[study] name", "control character"]),
    ("data", 'source = ""', ['[data] source = ""', "empty"]),
    # ranges that would exhaust the host if enumerated
    (
        "model.lstm",
        "hidden = [16, 1e9]",
        ["[model.lstm] hidden", "high 1000000000.0 is not a whole"],
    ),
    ("model.lstm", "hidden = [16, 1000000000]", ["[model.lstm] hidden", "outside [3, 65536]"]),
    ("data", "window = [16, 1000000000]", ["[data] window", "outside [2, 100000]"]),
    ("model.xlstm", "embed = [16, 1000000000]", ["[model.xlstm] embed", "outside [4, 65536]"]),
    # a LayerNorm over fewer than 3 units keeps no information (1) or one sign (2)
    ("model.lstm", "hidden = [2, 32]", ["[model.lstm] hidden", "low 2 is outside [3, 65536]"]),
    ("model.xlstm", "embed = [4, 16]", ["[model.xlstm]", "embed 4 with heads 2", "at least 3"]),
]


@pytest.mark.parametrize(("section", "line", "words"), HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_values_are_one_line_naming_the_key(
    tmp_path: Path, section: str, line: str, words: list[str]
) -> None:
    path = _study_with(tmp_path, section, line)
    with pytest.raises(StudyError) as err:
        load_study_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: [") and "\n" not in message
    assert "write " in message  # says what to write instead
    for word in words:
        assert word in message, f"{word!r} not in {message}"
    assert not list(tmp_path.glob("*.journal"))


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("train", "lr = [1e-4, 1]"),
        ("train", "dropout = 0"),
        ("train", "return_weight = [0, 1]"),
        ("trading", "fee = 0"),
        ("study", 'storage = ""'),
        ("study", 'name = "EURUSD_h1.v2-test"'),
        ("model.xlstm", "heads = [1, 2]"),
    ],
)
def test_sane_edge_values_still_load(tmp_path: Path, section: str, line: str) -> None:
    load_study_config(_study_with(tmp_path, section, line))


def test_a_huge_integer_range_is_never_enumerated() -> None:
    huge = IntRange(16, 10**15, 8)
    tracemalloc.start()
    started = time.perf_counter()
    assert (lowest(huge), highest(huge)) == (16, 16 + (10**15 - 16) // 8 * 8)
    assert first_not_multiple(huge, 8) is None and first_not_multiple(huge, 16) == 24
    assert len(values(huge)) == (10**15 - 16) // 8 + 1  # a lazy range, not a list
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000 and time.perf_counter() - started < 1.0


def test_a_huge_hidden_range_fails_fast_and_small(tmp_path: Path) -> None:
    path = _study_with(tmp_path, "model.lstm", "hidden = [16, 1000000000]")
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(StudyError, match=r"\[model.lstm\] hidden"):
        load_study_config(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20_000_000 and time.perf_counter() - started < 5.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("section", "line"),
    [("model.lstm", "hidden = [16, 1000000000]"), ("study", 'name = "../x"'), ("train", "lr = 0")],
)
def test_cli_status_on_a_bad_file_exits_2_and_creates_nothing(
    tmp_path: Path, section: str, line: str
) -> None:
    path = _study_with(tmp_path, section, line)
    before = set(tmp_path.parent.iterdir()) | set(tmp_path.iterdir())
    unset = {k: None for k in os.environ if k.startswith("XTUNE_")}
    done = xtune("status", str(path), "--no-plots", cwd=tmp_path, env=unset)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert str(path.name) in output and line.split("=")[0].strip() in output
    assert set(tmp_path.parent.iterdir()) | set(tmp_path.iterdir()) == before
