"""Two models in consensus: the rules, the scores on the common test period, the refusals, and
the consensus bundle through `xtune predict` and `open_predictor`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import xtune
from tests.export_tests.test_export import _blocked_env
from xtune.errors import XtuneError
from xtune.export import ExportError
from xtune.export.consensus import write_consensus
from xtune.features import Bars, load_bars
from xtune.runtime import (
    BundleError,
    ConsensusPredictor,
    Predictor,
    load_bundle,
    open_predictor,
    predict,
)
from xtune.runtime.bundle import MANIFEST, SUMS, write_sums
from xtune.runtime.consensus import (
    CONSENSUS,
    Consensus,
    ConsensusError,
    ConsensusFile,
    MemberEntry,
    combine,
    load_consensus,
    predict_consensus,
)
from xtune.runtime.consensus_score import common_test_period, score_consensus, score_positions

Exports = dict[str, tuple[Path, Path, object]]

# ---------------------------------------------------------------- the rules, by hand
# Two members, two classes (down, up): P(up) per bar.
A_UP = [0.9, 0.6, 0.3, 0.2]  # up, up, down, down
B_UP = [0.8, 0.38, 0.45, 0.1]  # up, down, down, down
TRUTH = np.array([1, 0, 0, 1])  # up, down, down, up
RETURNS = np.array([0.01, -0.02, -0.01, 0.03])


def _two_class(*ups: list[float]) -> np.ndarray:
    up = np.array(ups)  # [M, N]
    return np.stack([1 - up, up], axis=-1)  # [M, N, 2]


def _three_class(*argmax: list[int]) -> np.ndarray:
    """[M, N, 3] probabilities: 0.7 on each member's chosen class, 0.15 on the others."""
    return np.where(np.eye(3)[np.array(argmax)] > 0, 0.7, 0.15)


@pytest.mark.parametrize(
    ("rule", "threshold", "want", "coverage", "accuracy", "baseline"),
    [
        ("unanimous", 0.0, [1, 0, -1, -1], 0.75, 2 / 3, 2 / 3),  # bars 0, 2, 3: up, down, up
        ("majority", 0.0, [1, 0, -1, -1], 0.75, 2 / 3, 2 / 3),  # of 2, more than half is both
        ("mean", 0.0, [1, -1, -1, -1], 1.0, 0.75, 0.5),  # mean P(up) .85 .49 .375 .15
        ("mean", 0.6, [1, 0, -1, -1], 0.75, 2 / 3, 2 / 3),  # top mean .85 .51 .625 .85
    ],
)
def test_two_members_by_hand(
    rule: str, threshold: float, want: list[int], coverage: float, accuracy: float, baseline: float
) -> None:
    position = combine(_two_class(A_UP, B_UP), rule, threshold)
    assert position.tolist() == want
    s = score_positions("c", 1, position, TRUTH, RETURNS, classes=2, fee=0.001, per_year=1.0)
    assert (s.bars, s.coverage) == (4, coverage)
    assert s.accuracy == pytest.approx(accuracy) and s.baseline == pytest.approx(baseline)


def test_the_sharpe_ratio_is_flat_without_a_position_and_pays_the_fee_on_each_change() -> None:
    position = np.array([1, 0, -1, -1])
    s = score_positions("c", 1, position, TRUTH, RETURNS, classes=2, fee=0.001, per_year=4.0)
    pnl = np.array([0.01 - 0.001, -0.001, 0.01 - 0.001, -0.03])  # in, out, in short, held
    assert s.sharpe == pytest.approx(pnl.mean() / pnl.std() * 2.0)


def test_three_members_three_classes_by_hand() -> None:
    # bars:  0: up up down  1: up flat down  2: down down flat  3: flat flat up  4: all down
    probs = _three_class([2, 2, 0, 1, 0], [2, 1, 0, 1, 0], [0, 0, 1, 2, 0])
    assert combine(probs, "majority").tolist() == [1, 0, -1, 0, -1]
    assert combine(probs, "unanimous").tolist() == [0, 0, 0, 0, -1]
    truth = np.array([2, 1, 1, 0, 0])  # a "flat" label makes a position wrong
    s = score_positions("m", 1, combine(probs, "majority"), truth, np.zeros(5), 3, 0.0, 1.0)
    assert (s.coverage, s.accuracy, s.baseline) == (0.6, pytest.approx(2 / 3), pytest.approx(1 / 3))
    none = score_positions("u", 1, np.zeros(5, np.int64), truth, np.zeros(5), 3, 0.0, 1.0)
    assert (none.coverage, none.accuracy, none.baseline, none.sharpe) == (0.0, None, None, 0.0)


def test_an_unknown_rule_or_a_threshold_off_the_mean_rule_is_refused() -> None:
    with pytest.raises(ConsensusError, match="unknown rule 'vote'"):
        combine(_two_class(A_UP, B_UP), "vote")
    text = ConsensusFile("majority", 0.5, (MemberEntry("../a", "0" * 64),), "now", {}).to_json()
    with pytest.raises(BundleError, match="only for the mean rule"):
        ConsensusFile.from_json(text, "c.json")
    ok = ConsensusFile("mean", 0.5, (MemberEntry("../a", "0" * 64),), "now", {})
    assert ConsensusFile.from_json(ok.to_json(), "c.json") == ok
    with pytest.raises(BundleError, match="not an xtune consensus"):
        ConsensusFile.from_json(json.dumps({"format": "xtune-bundle"}), "c.json")


# ---------------------------------------------------------------- with real bundles
def _bars(exports: Exports) -> Bars:
    return load_bars(exports["lstm"][1].parent / "bars.csv")


def _pair(exports: Exports, rule: str = "unanimous") -> Consensus:
    bundles = tuple(load_bundle(exports[f][0]) for f in ("lstm", "xlstm"))
    return Consensus(None, rule, 0.0, bundles)


def _xtune(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return xtune(*map(str, args), cwd=cwd, columns=300)


def _edited(
    exports: Exports, to: Path, edit: Callable[[dict], None], family: str = "xlstm"
) -> Path:  # type: ignore[type-arg]
    """A copy of a bundle with its manifest edited and its checksums redone (loads fine)."""
    shutil.copytree(exports[family][0], to)
    raw = json.loads((to / MANIFEST).read_text())
    edit(raw)
    (to / MANIFEST).write_text(json.dumps(raw))
    write_sums(to, [p.name for p in to.iterdir() if p.name != SUMS])
    return to


@pytest.mark.slow
def test_members_alone_score_their_recorded_test_part(exports: Exports) -> None:
    pair, bars = _pair(exports), _bars(exports)
    report = score_consensus(pair, bars)
    start, end = common_test_period(pair.members)
    assert (pd.Timestamp(report.period[0]), pd.Timestamp(report.period[1])) == (start, end)
    assert report.fee == pair.members[0].manifest.fee == 0.0001  # the study's [trading] fee
    frames = [predict(b, bars).loc[start:end] for b in pair.members]  # type: ignore[misc]
    whole = 0  # members whose whole test part is the common one (same bars, same split: all)
    for b, s in zip(pair.members, report.scores, strict=False):
        test = b.manifest.metrics["test"]
        if b.manifest.data.test_span == (str(start), str(end)):
            whole += 1
            assert s.bars == test["samples"]
            assert abs(s.accuracy - test["accuracy"]) <= 0.02  # type: ignore[operator]  # onnx vs torch ties
        assert s.coverage == 1.0 and s.name == str(b.folder)  # two classes: always a position
    assert whole >= 1
    agree = (frames[0]["h1_direction"] == frames[1]["h1_direction"]).to_numpy()
    both = report.scores[-1]
    assert both.name == "consensus (unanimous)" and both.coverage == pytest.approx(agree.mean())


@pytest.mark.slow
def test_bundles_that_cannot_be_combined_are_refused_in_one_line(
    exports: Exports, tmp_path: Path
) -> None:
    lstm, bars_file = exports["lstm"][0], exports["lstm"][1].parent / "bars.csv"
    cases = {
        "trained on different bars": _edited(exports, tmp_path / "other_bars",
                                             lambda m: m["data"].update(sha256="f" * 64)),
        "test periods do not overlap": _edited(exports, tmp_path / "early", lambda m: m["data"].update(
            test_span=["2000-01-01 00:00:00+00:00", "2000-02-01 00:00:00+00:00"])),
        "predict different labels": _edited(exports, tmp_path / "h2", lambda m: m.update(
            horizons=[2], return_scale=[1.0])),
    }  # fmt: skip
    for message, other in cases.items():
        result = _xtune("consensus", lstm, other, "--data", bars_file)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    one = _xtune("consensus", lstm, "--data", bars_file)
    assert one.returncode == 2 and "at least 2 bundles, got 1" in one.stderr
    edited = _bars(exports).frame.copy()
    edited.iloc[700, edited.columns.get_loc("volume")] += 1.0
    edited.to_csv(tmp_path / "edited.csv")
    result = _xtune("consensus", lstm, exports["xlstm"][0], "--data", tmp_path / "edited.csv")
    assert result.returncode == 2 and "does not contain the bars" in result.stderr


@pytest.mark.slow
def test_bars_that_grew_since_training_are_accepted(exports: Exports) -> None:
    pair, bars = _pair(exports), _bars(exports)
    step = bars.index[-1] - bars.index[-2]
    more = pd.DataFrame(
        [bars.frame.iloc[-1].to_numpy()] * 5,
        columns=bars.frame.columns,
        index=pd.DatetimeIndex([bars.index[-1] + step * (k + 1) for k in range(5)], name="time"),
    )
    longer = load_bars(pd.concat([bars.frame, more]).reset_index())
    assert score_consensus(pair, longer) == score_consensus(pair, bars)


@pytest.mark.slow
def test_the_consensus_bundle_round_trip(exports: Exports, tmp_path: Path) -> None:
    out, bars_file = tmp_path / "both", exports["lstm"][1].parent / "bars.csv"
    lstm, xlstm = exports["lstm"][0], exports["xlstm"][0]
    result = _xtune("consensus", lstm, xlstm, "--data", bars_file, "--rule", "mean", "--out", out,
                    "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rule"] == "mean" and len(report["scores"]) == 3
    assert sorted(p.name for p in out.iterdir()) == [SUMS, CONSENSUS]
    spec = json.loads((out / CONSENSUS).read_text())
    assert [m["path"] for m in spec["members"]] == [os.path.relpath(b, out) for b in (lstm, xlstm)]
    assert spec["members"][0]["manifest_sha256"] == load_bundle(lstm).manifest_sha256
    bars = _bars(exports)
    batch = predict_consensus(load_consensus(out), bars)
    printed = _xtune("predict", out, "--data", bars_file, "--last")
    assert printed.returncode == 0 and "m2_h1_p_up" in printed.stdout, printed.stderr
    last = printed.stdout.splitlines()[-1].split()  # date, time, p_down, p_up, direction...
    assert last[4] == batch["h1_direction"].iloc[-1] and float(last[3]) == pytest.approx(
        batch["h1_p_up"].iloc[-1], abs=1e-6
    )
    bot = open_predictor(out)
    assert isinstance(bot, ConsensusPredictor)
    assert bot.history == max(m.history for m in bot.members)
    got = [bot.predict_last(bars.head(len(bars) - 20))]
    got += [bot.update({"time": t, **bars.frame.loc[t].to_dict()}) for t in bars.index[-20:]]
    rows = pd.DataFrame([p.row() for p in got], index=pd.DatetimeIndex([p.time for p in got]))
    want = batch.loc[rows.index]
    assert list(rows.columns) == list(want.columns) and len(got[-1].members) == 2
    numbers = [c for c in want.columns if not c.endswith("_direction")]
    assert np.abs(rows[numbers].to_numpy(float) - want[numbers].to_numpy(float)).max() <= 1e-6
    assert (rows["h1_direction"] == want["h1_direction"]).mean() >= 0.95  # ties only


@pytest.mark.slow
def test_a_tampered_member_or_consensus_is_refused(exports: Exports, tmp_path: Path) -> None:
    for family in ("lstm", "xlstm"):
        shutil.copytree(exports[family][0], tmp_path / family)
    pair = Consensus(
        None, "majority", 0.0, tuple(load_bundle(tmp_path / f) for f in ("lstm", "xlstm"))
    )
    out = write_consensus(pair, tmp_path / "both")
    assert load_consensus(out).rule == "majority"
    raw = json.loads((tmp_path / "xlstm" / MANIFEST).read_text())
    raw["study"]["epochs"] += 1  # another refit: a valid bundle, not the member recorded
    (tmp_path / "xlstm" / MANIFEST).write_text(json.dumps(raw))
    write_sums(
        tmp_path / "xlstm", [p.name for p in (tmp_path / "xlstm").iterdir() if p.name != SUMS]
    )
    load_bundle(tmp_path / "xlstm")
    with pytest.raises(BundleError, match=r"member \.\./xlstm is not the bundle this consensus"):
        open_predictor(out)
    result = _xtune("predict", out, "--data", exports["lstm"][1].parent / "bars.csv", "--last")
    assert result.returncode == 2 and "was replaced or exported again" in result.stderr
    spec = (out / CONSENSUS).read_text()
    (out / CONSENSUS).write_text(spec.replace('"majority"', '"mean"'))
    with pytest.raises(BundleError, match="does not match its checksum"):
        load_consensus(out)
    (out / CONSENSUS).write_text(spec)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="did not write"):
        write_consensus(pair, out, overwrite=True)
    (out / "notes.txt").unlink()
    with pytest.raises(ExportError, match="already holds a bundle"):
        write_consensus(pair, out)
    assert write_consensus(pair, out, overwrite=True) == out  # ours: replaced


@pytest.mark.slow
def test_a_consensus_is_never_written_over_around_or_into_a_member(
    exports: Exports, tmp_path: Path
) -> None:
    """Issue 21 B: a consensus written over a member would leave only its own two files."""
    for family in ("lstm", "xlstm"):
        shutil.copytree(exports[family][0], tmp_path / family)
    bars_file = exports["lstm"][1].parent / "bars.csv"
    before = {p: p.read_bytes() for f in ("lstm", "xlstm") for p in (tmp_path / f).iterdir()}
    cases = {
        "lstm": "that is lstm, which this command reads",
        "./xlstm/": "that is xlstm, which this command reads",
        ".": "that folder holds lstm",
        "lstm/both": "inside the bundle",
    }
    for out, says in cases.items():
        result = _xtune("consensus", "lstm", "xlstm", "--data", bars_file, "--out", out,
                        "--overwrite", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2 and says in result.stderr, (out, result.stderr)
        assert "Traceback" not in result.stderr
    pair = Consensus(
        None, "majority", 0.0, tuple(load_bundle(tmp_path / f) for f in ("lstm", "xlstm"))
    )
    with pytest.raises(XtuneError, match="which this command reads"):
        write_consensus(pair, tmp_path / "xlstm", overwrite=True)
    assert {
        p: p.read_bytes() for f in ("lstm", "xlstm") for p in (tmp_path / f).iterdir()
    } == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm", "xlstm"]


@pytest.mark.slow
def test_one_bundle_twice_or_a_consensus_as_a_member_is_refused_in_one_line(
    exports: Exports, tmp_path: Path
) -> None:
    lstm, xlstm = exports["lstm"][0], exports["xlstm"][0]
    bars_file = exports["lstm"][1].parent / "bars.csv"
    shutil.copytree(lstm, tmp_path / "copy")
    both = write_consensus(_pair(exports), tmp_path / "both")
    cases = {
        (lstm, lstm): f"{lstm} is named twice: the same model twice",
        (lstm, tmp_path / "copy"): f"{tmp_path / 'copy'} is a copy of {lstm}",
        (both, xlstm): f"{both} is a consensus bundle (consensus.json), not a model bundle",
    }
    for (a, b), says in cases.items():
        result = _xtune("consensus", a, b, "--data", bars_file)
        message = " ".join(result.stderr.split())
        assert result.returncode == 2 and says in message, message
        assert "Traceback" not in result.stderr and "incomplete" not in message
    with pytest.raises(ConsensusError, match="the same model twice"):
        write_consensus(Consensus(None, "unanimous", 0.0, (load_bundle(lstm),) * 2), tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_the_consensus_predictor_runs_without_torch_or_optuna(
    exports: Exports, tmp_path: Path
) -> None:
    out = write_consensus(_pair(exports), tmp_path / "both")
    script = (
        "import sys, pandas as pd\n"
        "from xtune.runtime import open_predictor\n"
        f"bars = pd.read_csv({str(exports['lstm'][1].parent / 'bars.csv')!r})\n"
        f"p = open_predictor({str(out)!r}).predict_last(bars)\n"
        "print(p.direction, len(p.members))\n"
        "assert 'torch' not in sys.modules and 'optuna' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=_blocked_env(tmp_path),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(" 2") and "{1: '" in result.stdout
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.slow
def test_open_predictor_gives_each_folder_its_class_and_predictor_of_a_consensus_warns(
    exports: Exports, tmp_path: Path
) -> None:
    out, plain = write_consensus(_pair(exports), tmp_path / "both"), exports["lstm"][0]
    bars = _bars(exports)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither open_predictor nor Predictor(bundle) warns
        single, both = open_predictor(plain), open_predictor(out)
        assert type(single) is Predictor and type(Predictor(plain)) is Predictor
    assert type(both) is ConsensusPredictor and single.model.endswith(".onnx")
    with pytest.warns(FutureWarning, match=r"write open_predictor\(folder\)"):
        old = Predictor(out)  # a bot written before open_predictor keeps trading
    assert type(old) is ConsensusPredictor
    assert old.predict_last(bars).row() == both.predict_last(bars).row()


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["unanimous", "mean"])
def test_on_a_random_walk_the_consensus_scores_chance(
    random_walk_exports: Exports, rule: str
) -> None:
    pair = _pair(random_walk_exports, rule)
    report = score_consensus(pair, _bars(random_walk_exports))
    assert report.bars >= 300
    for s in report.scores:
        assert s.accuracy is not None and s.baseline is not None
        taken = round(s.coverage * s.bars)
        se = np.sqrt(s.baseline * (1 - s.baseline) / taken)  # of an accuracy on `taken` bars
        assert taken >= 50 and abs(s.accuracy - s.baseline) <= 3 * se, (s, se)
