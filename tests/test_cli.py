"""Smoke runs of the `xtune` command line at tiny sizes, in the test process (tests/cli.py;
tests/test_cli_in_process.py shows it prints what the entry point prints in a process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.cli import xtune
from xtune.features.sample import synthetic_bars


def _listed(help_text: str) -> set[str]:
    """The command names in the command panels of a --help text (the first cell of each row;
    a command's name also appearing in some description does not count)."""
    boxes = help_text.split("╭─ Options ─")[1].split("╰", 1)[1]
    return set(re.findall(r"^│ (\S+)  ", boxes, flags=re.MULTILINE))


def test_help_lists_the_commands() -> None:
    result = xtune("--help")
    assert result.returncode == 0
    assert {"data", "features", "search", "status", "replay", "export", "predict", "certify",
            "consensus", "distill", "enqueue", "sweep", "dashboard"} <= _listed(result.stdout)  # fmt: skip
    assert {"list", "build", "audit"} <= _listed(xtune("features", "--help").stdout)
    assert {"check"} <= _listed(xtune("data", "--help").stdout)


def test_data_check_on_the_sample() -> None:
    result = xtune("data", "check", "--data", "sample:synthetic", "--format", "json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["rows"] == 6000 and info["interval"] == "0 days 01:00:00" and info["gaps"] == 0
    assert info["min_bars"] < 6000


def test_data_check_refuses_bad_bars_with_exit_2_and_a_clear_message(tmp_path: Path) -> None:
    frame = synthetic_bars(1000)
    frame.iloc[321, frame.columns.get_loc("volume")] = 1e15
    path = tmp_path / "bad.csv"
    frame.to_csv(path)
    result = xtune("data", "check", "--data", str(path))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert str(path) in message and "'volume'" in message and "row 321" in message
    assert "Traceback" not in result.stderr


def test_data_check_says_when_bars_are_too_few(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    synthetic_bars(300).to_csv(path)
    result = xtune("data", "check", "--data", str(path), "--window", "60")
    assert result.returncode == 2
    assert "need at least" in " ".join(result.stderr.split())


def test_features_list_shows_group_and_warmup() -> None:
    result = xtune("features", "list", "--format", "json")
    rows = json.loads(result.stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["rsi_14"]["group"] == "momentum" and by_name["rsi_14"]["warmup"] == 14
    assert by_name["rsi_14"]["memory"] == 250 and by_name["ret_1"]["memory"] == 1
    assert by_name["cdl_morning_star"]["group"] == "pattern"
    table = xtune("features", "list", "--group", "pattern")
    assert "cdl_doji" in table.stdout and "rsi_14" not in table.stdout


def test_features_build_writes_the_frame(tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    result = xtune("features", "build", "--data", "sample:synthetic", "-f", "ret_1", "--group", "volatility",
                   "--window", "32", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "untouched" in result.stdout
    frame = pd.read_parquet(out)
    assert "ret_1" in frame.columns and "atr_14" in frame.columns and "rsi_14" not in frame.columns
    assert frame.notna().all().all()


def test_a_failed_build_writes_nothing(tmp_path: Path) -> None:
    bars = synthetic_bars(1000)
    bars.iloc[10, bars.columns.get_loc("high")] = -1.0
    src = tmp_path / "bad.csv"
    bars.to_csv(src)
    out = tmp_path / "features.parquet"
    result = xtune("features", "build", "--data", str(src), "--out", str(out))
    assert result.returncode == 2
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_unknown_feature_names_the_fix() -> None:
    result = xtune("features", "build", "--data", "sample:synthetic", "-f", "rsi_999")
    assert result.returncode == 2 and "xtune features list" in result.stderr


def test_features_audit_passes_on_the_quickstart_study() -> None:
    from xtune.search import load_study_config

    study = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"
    candidates = load_study_config(study).features.candidates
    result = xtune("features", "audit", str(study))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(candidates)} features on sample:synthetic" in result.stdout
    assert f"all {len(candidates)} features pass" in result.stdout
    assert "rsi_14" in result.stdout and "cdl_doji" not in result.stdout  # its groups only


def test_features_audit_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    missing = xtune("features", "audit", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "study file not found" in " ".join(missing.stderr.split())
    unknown = xtune("features", "audit", "-f", "rsi_999")
    assert unknown.returncode == 2 and "xtune features list" in unknown.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr


def test_data_check_reads_a_metatrader_5_export_and_notes_the_tick_volume(tmp_path: Path) -> None:
    from tests.features_tests.test_bars import metatrader_export

    frame = synthetic_bars(1000)
    path = tmp_path / "EURUSD_H1.csv"
    path.write_text(metatrader_export(frame, 5), newline="")
    note = "volume is read from '<TICKVOL>' (tick volume): '<VOL>' (real volume) is 0 on every row"
    result = xtune("data", "check", "--data", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["notes"] == [note] and info["zero_volume_rows"] == 0
    table = xtune("data", "check", "--data", str(path))
    assert table.returncode == 0, table.stderr
    assert f"note: {note}" in " ".join(table.stdout.split())


def test_without_pyarrow_parquet_names_the_extra_and_csv_needs_none(tmp_path: Path) -> None:
    block = tmp_path / "blocked" / "pyarrow"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1", "XTUNE_CACHE_DIR": str(tmp_path / "cache"),
                        "PYTHONPATH": f"{block.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xtune", *args], capture_output=True,
                              text=True, env=env, timeout=300, check=False)  # fmt: skip

    frame = synthetic_bars(1000)
    frame.to_parquet(tmp_path / "bars.parquet")
    frame.to_csv(tmp_path / "bars.csv")
    refused = run("data", "check", "--data", str(tmp_path / "bars.parquet"))
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "bars.parquet" in lines[0] and "parquet extra" in lines[0], lines
    assert run("data", "check", "--data", str(tmp_path / "bars.csv")).returncode == 0
    built = run(
        "features", "build", "--data", str(tmp_path / "bars.csv"), "-f", "rsi_14"
    )  # cache on: off
    assert built.returncode == 0, built.stderr


def test_the_deprecated_forms_work_for_one_release_with_one_warning_each() -> None:
    """Bars as an argument and --json still work; each prints one warning line on stderr."""
    old = xtune("data", "check", "sample:synthetic", "--json")
    assert old.returncode == 0, old.stderr
    assert json.loads(old.stdout)["rows"] == 6000  # stdout stays machine-readable
    warnings = old.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings), warnings
    assert "use `xtune data check --data BARS`" in warnings[0]
    assert "use --format json" in warnings[1]


def test_bars_missing_or_given_twice_is_one_line_and_exit_2() -> None:
    cases = [
        (("data", "check"), "pass the bars with --data"),
        (("features", "build", "--data", "a.csv", "b.csv"), "bars given twice"),
        (("predict", "bundle"), "pass the bars with --data"),
        (("certify", "bundle", "--bars", "a.csv", "--data", "b.csv"), "bars given twice"),
    ]
    for args, says in cases:
        result = xtune(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and says in lines[0], (args, lines)


def test_features_audit_prints_its_report_as_json() -> None:
    result = xtune("features", "audit", "-f", "ret_1", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [f["name"] for f in report["features"]] == ["ret_1"]
    assert report["source"] == "sample:synthetic" and report["failures"] == []
    assert report["features"][0]["lookahead"] is None  # null: the check passed
