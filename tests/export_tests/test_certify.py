"""`xtune certify` on the trading PC: checksums, parity and int8 re-checked on the stored
reference windows, latency against the cap, the report file, and `[caps] latency_scale`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from tests.export_tests.test_export import _blocked_env
from tests.search_tests.studies import write_study
from xtune.cli import app
from xtune.errors import XtuneError
from xtune.features import load_bars
from xtune.models import Resources
from xtune.runtime import Predictor, load_bundle, predict
from xtune.runtime._predict import history_needed
from xtune.runtime.bundle import MANIFEST, SUMS, sha256_file, write_sums
from xtune.search import load_study_config
from xtune.search.objective import constraints
from xtune.search.record import Plan

Exports = dict[str, tuple[Path, Path, object]]
FIELDS = {"format", "passed", "bundle", "format_version", "cpu", "model", "precision", "checks",
          "bar_ms", "bars", "model_ms", "export_ms", "slower", "cap_ms", "notes", "versions"}  # fmt: skip


def _copy(exports: Exports, tmp_path: Path, family: str = "lstm") -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(exports[family][0], target)
    return target


def _reseal(folder: Path, edit: Any = None) -> None:
    """Rewrite the manifest (``edit(raw)``), its file hashes and SHA256SUMS: a forged bundle
    that passes the checksums, so only certify's own checks can catch it."""
    raw = json.loads((folder / MANIFEST).read_text())
    if edit is not None:
        edit(raw)
    names = [p.name for p in folder.iterdir() if p.name not in (MANIFEST, SUMS)]
    raw["files"] = {n: sha256_file(folder / n) for n in sorted(names)}
    (folder / MANIFEST).write_text(json.dumps(raw))
    write_sums(folder, [*names, MANIFEST])


def _short_bars(exports: Exports, tmp_path: Path, extra: int = 10) -> Path:
    """The last history + ``extra`` bars: a quick per-bar timing."""
    bars = load_bars(exports["lstm"][1].parent / "bars.csv")
    history = load_bundle(exports["lstm"][0]).manifest.history
    assert history is not None
    path = tmp_path / "short.csv"
    bars.frame.iloc[-(history + extra) :].to_csv(path)
    return path


def _certify(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    """Run the command in-process; exit code, the report it wrote, and its output."""
    result = CliRunner().invoke(app, ["certify", *map(str, args)])
    if isinstance(result.exception, XtuneError):
        return 2, {}, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    out = Path(str(args[args.index("--out") + 1]))
    return result.exit_code, json.loads(out.read_text()), result.output


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


@pytest.mark.slow
def test_a_fresh_bundle_certifies_where_torch_and_optuna_cannot_be_imported(
    exports: Exports, tmp_path: Path
) -> None:
    bundle_dir = exports["lstm"][0]
    run = [sys.executable, "-m", "xtune", "certify", str(bundle_dir)]
    env = _blocked_env(tmp_path) | {"NO_COLOR": "1"}
    result = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CERTIFIED" in result.stdout and "vector instructions" in result.stdout
    report = json.loads((tmp_path / "certify.json").read_text())  # default: the current folder
    assert set(report) >= FIELDS and report["passed"] and report["format"] == "xtune-certify"
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "checksums": True, "fp32 parity": True, "latency cap": True,
        "int8 agreement": True if report["precision"] == "int8" else None,
    }  # fmt: skip
    assert (
        report["bar_ms"]["calls"] == 200 and 0 < report["bar_ms"]["p50"] <= report["bar_ms"]["p99"]
    )
    assert report["model_ms"]["fp32"]["p50"] > 0 and report["slower"] > 0
    assert report["cap_ms"] == 50.0 and report["bars"].startswith("reference_bars.csv")
    assert report["cpu"]["name"] and report["notes"] == []
    again = subprocess.run([*run, "--format", "json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0 and json.loads(again.stdout)["passed"]  # replaces its own report


@pytest.mark.slow
def test_the_report_never_goes_into_the_bundle_or_over_a_foreign_file(
    exports: Exports, tmp_path: Path
) -> None:
    bundle_dir = _copy(exports, tmp_path)
    code, _, message = _certify(bundle_dir, "--out", bundle_dir)
    assert code == 2 and "inside the bundle" in message
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    code, _, message = _certify(bundle_dir, "--out", foreign)
    assert code == 2 and "did not write" in message and foreign.read_text() == '{"mine": true}'
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted(
        p.name for p in exports["lstm"][0].iterdir()
    )


@pytest.mark.slow
def test_a_consensus_bundle_certifies_each_member_and_its_decision_per_bar(
    exports: Exports, tmp_path: Path
) -> None:
    """Issue 21, 12: a consensus folder is certified as the trader runs it, not "incomplete"."""
    from xtune.export.consensus import write_consensus
    from xtune.runtime.consensus import Consensus

    members = tuple(load_bundle(exports[f][0]) for f in ("lstm", "xlstm"))
    both = write_consensus(Consensus(None, "unanimous", 0.0, members), tmp_path / "both")
    bars = load_bars(exports["lstm"][1].parent / "bars.csv")
    history = max(history_needed(b) for b in members)
    short = tmp_path / "short.csv"
    bars.frame.iloc[-(history + 12) :].to_csv(short)
    report_file = tmp_path / "report.json"
    code, report, output = _certify(both, "--data", short, "--out", report_file)
    assert code == 0, output
    assert "CERTIFIED" in output and "incomplete" not in output
    assert report["format"] == "xtune-certify" and report["kind"] == "consensus"
    assert report["passed"] and report["rule"] == "unanimous"
    folders = [Path(m["bundle"]).resolve() for m in report["members"]]
    assert folders == [b.folder.resolve() for b in members]
    for m in report["members"]:
        assert set(m) >= FIELDS and m["passed"] and m["bar_ms"]["calls"] == 12
    decision = _check(report, "consensus decision")
    assert decision["ok"] and "at 12 of 12 bar-horizons" in decision["detail"], decision
    cap = _check(report, "consensus latency cap")
    together = sum(m["model_ms"][m["precision"]]["p50"] for m in report["members"])
    assert cap["ok"] and report["model_ms"] == pytest.approx(together) and report["cap_ms"] == 50.0
    assert report["bar_ms"]["calls"] == 12 and report["bars"] == str(short)
    code, report, _ = _certify(
        both, "--data", short, "--out", report_file, "--max-latency-ms", "1e-6"
    )
    assert (
        code == 1
        and not report["passed"]
        and _check(report, "consensus latency cap")["ok"] is False
    )
    assert sorted(p.name for p in both.iterdir()) == ["SHA256SUMS", "consensus.json"]


@pytest.mark.slow
def test_a_tampered_expected_output_fails_the_parity_check(
    exports: Exports, tmp_path: Path
) -> None:
    bundle_dir = _copy(exports, tmp_path)
    expected = bundle_dir / "reference_torch_probs.npy"
    probs = np.load(expected)
    probs[3, 0] += np.float32(0.01)
    np.save(expected, probs)
    _reseal(bundle_dir)
    out = tmp_path / "report.json"
    code, report, output = _certify(
        bundle_dir, "--out", out, "--data", _short_bars(exports, tmp_path)
    )
    assert code == 1 and "NOT CERTIFIED" in output and "fp32 parity" in output
    parity = _check(report, "fp32 parity")
    assert parity["ok"] is False and "> 0.0001" in parity["detail"]
    assert report["bar_ms"]["calls"] == 10 and report["bars"].endswith("short.csv")


@pytest.mark.slow
def test_a_cap_this_pc_cannot_meet_fails(exports: Exports, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    bars = _short_bars(exports, tmp_path)
    code, report, _ = _certify(
        exports["lstm"][0], "--out", out, "--data", bars, "--max-latency-ms", "0.0001"
    )
    cap = _check(report, "latency cap")
    assert code == 1 and cap["ok"] is False and "OVER --max-latency-ms 0.0001" in cap["detail"]
    code, _, message = _certify(exports["lstm"][0], "--out", out, "--max-latency-ms", "-1")
    assert code == 2 and "positive" in message


def _format_3(raw: dict[str, Any]) -> None:
    raw["format_version"] = 3
    for key in ("reference", "caps"):
        del raw[key]
    del raw["int8"]["sample_agreement"]


@pytest.mark.slow
def test_a_format_3_bundle_certifies_with_a_note(exports: Exports, tmp_path: Path) -> None:
    bundle_dir = _copy(exports, tmp_path)
    for name in ("reference_rows.npy", "reference_torch_probs.npy", "reference_bars.csv"):
        (bundle_dir / name).unlink()
    _reseal(bundle_dir, _format_3)
    assert load_bundle(bundle_dir).manifest.reference is None
    code, report, _ = _certify(bundle_dir, "--out", tmp_path / "report.json")
    assert code == 0 and report["passed"] and report["format_version"] == 3
    assert _check(report, "fp32 parity")["ok"] is None
    assert _check(report, "latency cap")["ok"] is None  # no cap recorded, none passed
    assert "could not be re-checked" in report["notes"][0]
    assert report["bars"].startswith("synthetic") and report["bar_ms"]["calls"] == 200


def _as_int8(folder: Path, model: onnx.ModelProto) -> None:
    """Make ``model`` the bundle's int8 model, as if export had kept one."""
    onnx.save(model, str(folder / "model.int8.onnx"))

    def edit(raw: dict[str, Any]) -> None:
        raw["model"]["file"] = "model.int8.onnx"
        raw["int8"]["used"] = True
        raw["latency_ms"]["onnx_int8"] = raw["latency_ms"]["onnx_fp32"]

    _reseal(folder, edit)


def test_batch_predict_checks_int8_once_per_bundle_and_again_for_new_bytes(
    exports: Exports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agreement check runs 512 windows through two models: once per loaded bytes, not on
    every `predict` call; a bundle exported anew in the same folder is checked again."""
    import xtune.runtime.reference as reference

    checked: list[float] = []
    real = reference.agreement

    def counted(*args: Any) -> float:
        checked.append(real(*args))
        return checked[-1]

    monkeypatch.setattr(reference, "agreement", counted)
    bundle_dir = _copy(exports, tmp_path)
    fp32 = onnx.load(str(bundle_dir / "model.onnx"))
    _as_int8(bundle_dir, fp32)
    bars = load_bars(_short_bars(exports, tmp_path))
    first = [predict(load_bundle(bundle_dir), bars, last=True) for _ in range(3)]
    assert checked == [1.0] and all(f.equals(first[0]) for f in first)
    fp32.graph.doc_string = "exported again"  # other bytes, same answers
    _as_int8(bundle_dir, fp32)
    assert predict(load_bundle(bundle_dir), bars, last=True).equals(first[0])
    assert checked == [1.0, 1.0]


@pytest.mark.slow
def test_int8_is_rechecked_here_and_the_predictor_falls_back_to_fp32(
    exports: Exports, tmp_path: Path
) -> None:
    bundle_dir = _copy(exports, tmp_path)
    fp32 = onnx.load(str(bundle_dir / "model.onnx"))
    _as_int8(bundle_dir, fp32)  # "int8" that is fp32: agrees on every class
    bot = Predictor(bundle_dir)
    assert bot.model == "model.int8.onnx" and bot.int8_agreement == 1.0
    graph = fp32.graph  # now negate the logits: with two classes, every argmax flips
    logits = next(o for o in graph.output if o.name == "logits")
    for node in graph.node:
        node.output[:] = ["logits_raw" if o == "logits" else o for o in node.output]
    graph.node.append(onnx.helper.make_node("Neg", ["logits_raw"], ["logits"]))
    _as_int8(bundle_dir, fp32)
    assert logits.name == "logits"
    bot = Predictor(bundle_dir)
    assert bot.model == "model.onnx" and bot.int8_agreement == 0.0
    # batch predict (and with it `xtune predict` and consensus) chooses as the bot does
    bars = load_bars(_short_bars(exports, tmp_path))
    batch = predict(load_bundle(bundle_dir), bars, last=True).filter(like="_p_").to_numpy()
    live = bot.predict_last(bars).probabilities[1]
    np.testing.assert_allclose(batch[0], list(live.values()), atol=1e-6)
    out = tmp_path / "report.json"
    code, report, _ = _certify(bundle_dir, "--out", out, "--data", _short_bars(exports, tmp_path))
    int8 = _check(report, "int8 agreement")
    assert code == 1 and int8["ok"] is False and "the Predictor uses model.onnx" in int8["detail"]
    assert report["model"] == "model.onnx" and report["precision"] == "fp32"
    assert _check(report, "fp32 parity")["ok"] and _check(report, "latency cap")["ok"]


def test_latency_scale_multiplies_the_measured_latency_before_the_cap(tmp_path: Path) -> None:
    study = write_study(tmp_path)  # max_latency_ms = 50.0
    plan = cast(Plan, SimpleNamespace(units=("returns",)))
    plain = constraints(load_study_config(study), plan, Resources(1000, 20.0))
    assert plain["latency_ms"] == pytest.approx(20.0 / 50.0 - 1.0)
    study.write_text(study.read_text().replace("max_latency_ms = 50.0", "max_latency_ms = 50.0\nlatency_scale = 3.0"))  # fmt: skip
    config = load_study_config(study)
    assert config.caps.latency_scale == 3.0
    scaled = constraints(config, plan, Resources(1000, 20.0))
    assert scaled["latency_ms"] == pytest.approx(60.0 / 50.0 - 1.0) and scaled["latency_ms"] > 0
    study.write_text(study.read_text().replace("latency_scale = 3.0", "latency_scale = 0.5"))
    with pytest.raises(XtuneError, match=r"\[caps\] latency_scale = 0.5: .*outside \[1, 1000000\]"):
        load_study_config(study)
