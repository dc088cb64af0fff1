"""``xtune distill``: the student's size under a cap, its bundle with the teacher in the
manifest, the report's warnings, and bad input refused before any work."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
import pytest

from tests.search_tests.studies import write_study
from tests.test_cli import xtune
from xtune.cli._distill import print_distill
from xtune.errors import SpecError
from xtune.export import DistillError, ExportReport, StudentCap, distill_bundle, pick_trial
from xtune.export.distill import DistillReport, Side
from xtune.export.student import Cost, resize, size_student
from xtune.features import load_bars
from xtune.models import (
    DistillConfig,
    LSTMConfig,
    ModelConfig,
    Scores,
    XLSTMConfig,
    build_model,
    count_params,
    width_depth,
)
from xtune.runtime import load_bundle, predict
from xtune.runtime.manifest import Int8Entry
from xtune.search import load_study_config, read, resolve_storage, run_search
from xtune.settings import Settings

ENV = Settings()


def _params(m: ModelConfig) -> int:
    return count_params(build_model(m))


TEACHER = LSTMConfig(n_features=4, hidden=32, layers=2)
XTEACHER = XLSTMConfig(n_features=4, embed=32, heads=2, blocks=2, slstm_at=(1,))


@pytest.fixture
def fake_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 ms per 1,000 parameters for a teacher; a student's timings cycle through 0.9, 1.0 and
    1.2 times that. Exact, so the choice under a latency cap is testable without timing noise
    (and without an ONNX export per candidate)."""
    teachers, cycles = {_params(TEACHER), _params(XTEACHER)}, {}

    def ms(path: Path, x: object) -> float:
        params = int(path.name)
        cycle = cycles.setdefault(params, itertools.cycle((0.9, 1.0, 1.2)))
        return (1.0 if params in teachers else next(cycle)) * params / 1e3

    monkeypatch.setattr("xtune.export.student.onnx_file", lambda m, w, path: Path(str(_params(m))))
    monkeypatch.setattr("xtune.export.student.ort_latency_ms", ms)


def _best_by_brute_force(teacher: ModelConfig, max_params: float) -> int:
    tw, td = width_depth(teacher)
    sizes = [(w, d) for w, d in itertools.product(range(1, tw + 1), range(1, td + 1))]
    return max(_params(m) for m in _buildable(teacher, sizes)
               if width_depth(m) != (tw, td) and _params(m) <= max_params)  # fmt: skip


def _buildable(teacher: ModelConfig, sizes: list[tuple[int, int]]) -> list[ModelConfig]:
    """The sizes the teacher's family can take (e.g. no LayerNorm over fewer than 3 units)."""
    out = []
    for w, d in sizes:
        try:
            out.append(resize(teacher, w, d))
        except SpecError:
            continue
    return out


@pytest.mark.parametrize(
    ("cap", "scale", "budget"),  # budget: the parameters whose slowest timing fits
    [
        (StudentCap(max_params=2500), 1.0, 2500),
        (StudentCap(max_latency_ms=2.0), 1.0, 2000 / 1.2),
        (StudentCap(max_latency_ms=2.0), 2.0, 1000 / 1.2),  # the trading PC is twice as slow
        (StudentCap(min_speedup=4), 1.0, _params(TEACHER) / 4 / 1.2),  # of the teacher's median
        (StudentCap(max_params=3000, max_latency_ms=1.5), 1.0, 1500 / 1.2),
    ],
)
@pytest.mark.usefixtures("fake_latency")
def test_the_student_is_the_largest_model_under_the_cap(
    cap: StudentCap, scale: float, budget: float
) -> None:
    sizing = size_student(TEACHER, 16, cap, scale)
    assert sizing.student.family == "lstm" and sizing.student.n_features == 4
    assert sizing.cost.params == _params(sizing.student) <= budget  # the cap is respected
    assert sizing.cost.params == _best_by_brute_force(TEACHER, budget)  # nothing larger fits
    assert sizing.teacher == Cost(_params(TEACHER), _params(TEACHER) / 1e3)  # median timing
    assert sizing.cost == Cost(
        sizing.cost.params, sizing.cost.params / 1e3
    )  # 0.9, 1.0, 1.2, 0.9, 1.0


@pytest.mark.usefixtures("fake_latency")
def test_an_xlstm_student_keeps_its_heads_and_the_slstm_blocks_it_still_has() -> None:
    teacher = XTEACHER
    sizing = size_student(teacher, 16, StudentCap(max_params=_params(teacher) // 3))
    student = sizing.student
    assert isinstance(student, XLSTMConfig) and student.heads == 2 and student.embed % 2 == 0
    assert student.slstm_at == tuple(i for i in (1,) if i < student.blocks)
    assert sizing.cost.params <= _params(teacher) // 3
    fixed = size_student(teacher, 16, StudentCap(width=16, depth=1)).student
    assert (fixed.embed, fixed.blocks, fixed.slstm_at) == (16, 1, ())  # [m, s] -> [m]


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        (
            StudentCap(max_params=10),
            "meets the cap (at most 10 parameters); the smallest is LSTM 3x1",
        ),
        (StudentCap(max_params=10**6), "already meets the cap"),
        (StudentCap(max_latency_ms=1e6), "already meets the cap"),
        (StudentCap(width=64), "must not be larger than the teacher (LSTM 32x2)"),
        (StudentCap(width=32, depth=2), "no student is smaller than the teacher"),
    ],
)
@pytest.mark.usefixtures("fake_latency")
def test_a_cap_that_cannot_be_met_is_refused(cap: StudentCap, message: str) -> None:
    with pytest.raises(DistillError, match=re.escape(message)):
        size_student(LSTMConfig(n_features=4, hidden=32, layers=2), 16, cap)


def test_a_cap_is_required_and_checked() -> None:
    with pytest.raises(DistillError, match="give the student a cap"):
        StudentCap()
    for bad in ({"max_params": 0}, {"max_latency_ms": -1.0}, {"width": 2.5}, {"min_speedup": True}):
        with pytest.raises(DistillError, match="must be a positive"):
            StudentCap(**bad)  # type: ignore[arg-type]
    with pytest.raises(DistillError, match="--min-speedup must be above 1"):
        StudentCap(min_speedup=1.0)


def _report(teacher_edge: float, student_edge: float, student_ms: float = 0.1) -> DistillReport:
    def scores(edge: float) -> Scores:
        return Scores(0.5 + edge, 0.69, 0.5, (0.5 + edge,), 0.0, 1000)

    model = LSTMConfig(n_features=3, hidden=8)
    bundle = ExportReport(Path("student"), 4, None, scores(student_edge), 1e-7,
                          Int8Entry(False, "not faster"),
                          {"torch_eager": 0.2, "onnx_fp32": student_ms, "onnx_int8": None})  # fmt: skip
    return DistillReport(
        bundle, Side(replace(model, hidden=32), 5000, scores(teacher_edge), 0.4),
        Side(model, 600, scores(student_edge), student_ms), DistillConfig(), 0.13, 0.016,
    )  # fmt: skip


def test_the_report_says_plainly_when_less_than_80_percent_of_the_edge_was_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _report(0.05, 0.045).warnings == ()  # 90% kept, within the latency it was sized for
    low = _report(0.05, 0.03)
    assert low.kept == pytest.approx(0.6) and low.speedup == pytest.approx(4.0)
    assert len(low.warnings) == 1 and "kept only 60% of the teacher's test edge" in low.warnings[0]
    print_distill(low)
    captured = capsys.readouterr()
    err, out = " ".join(captured.err.split()), " ".join(captured.out.split())
    assert (
        "warning: the student kept only 60% of the teacher's test edge (+0.0300 vs +0.0500)" in err
    )
    assert "LSTM 32x1" in out and "LSTM 8x1" in out and "0.25x its latency (4.0x faster)" in out
    assert "no edge on the test part" in _report(-0.01, 0.02).warnings[0]
    assert "over the 0.130 ms it was sized for" in _report(0.05, 0.05, student_ms=0.2).warnings[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the student a cap"),
        (["--max-params", "0"], "--max-params must be a positive integer"),
        (["--max-params", "500", "--temperature", "0"], "temperature must be a number"),
        (["--max-params", "500", "--weight", "2"], "weight must be a number in [0, 1]"),
    ],
)
def test_bad_settings_exit_2_with_one_line_before_the_study_is_opened(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = xtune("distill", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "s"), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "s").exists()


@dataclass(frozen=True)
class Distilled:
    study_file: Path
    study: optuna.Study
    report: DistillReport
    max_params: int


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> Distilled:
    folder = tmp_path_factory.mktemp("distill")
    study_file = write_study(folder, trials=2, families='["lstm"]')
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, ENV), ENV)
    teacher = pick_trial(study)
    plan = read(teacher).plan
    assert plan is not None
    max_params = _params(plan.params.model) // 2
    report = distill_bundle(
        config, teacher, folder / "student", ENV, StudentCap(max_params=max_params)
    )
    return Distilled(study_file, study, report, max_params)


@pytest.mark.slow
def test_the_student_bundle_loads_predicts_and_records_its_teacher(distilled: Distilled) -> None:
    report = distilled.report
    bundle = load_bundle(report.bundle.folder)
    m = bundle.manifest
    teacher = pick_trial(distilled.study)  # the trial `xtune export` would write
    assert m.teacher is not None and m.study.trial == m.teacher.trial == teacher.number
    assert m.teacher.study == distilled.study.study_name
    assert m.teacher.metrics["edge"] == pytest.approx(report.teacher.test.edge)
    assert m.teacher.latency_ms == report.teacher.latency_ms > 0
    assert m.teacher.speedup == report.speedup
    assert (m.teacher.temperature, m.teacher.weight) == (2.0, 0.5)
    assert m.teacher.model["hidden"] == read(teacher).plan.params.model.hidden  # type: ignore[union-attr]
    assert set(m.metrics) == {"test"}  # the student trained on validation: no validation score
    assert m.metrics["test"]["accuracy"] == report.student.test.accuracy
    assert m.caps is not None and m.caps.searched_ms is None
    assert m.study.plan["params"]["model"] == asdict(report.student.model)  # the student's
    bars = load_bars(distilled.study_file.parent / "bars.csv")
    frame = predict(bundle, bars, last=True)
    assert len(frame) == 1 and frame.filter(like="_p_").sum(axis=1).iloc[0] == pytest.approx(1.0)


@pytest.mark.slow
def test_the_student_respects_the_cap(distilled: Distilled) -> None:
    student = distilled.report.student
    assert student.params == _params(student.model) <= distilled.max_params
    width, depth = width_depth(student.model)
    assert _params(resize(student.model, width + 1, depth)) > distilled.max_params


@pytest.mark.slow
def test_bad_input_on_a_real_study_exits_2_with_one_line_and_writes_nothing(
    distilled: Distilled, tmp_path: Path
) -> None:
    study = str(distilled.study_file)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    cases = [
        (["--trial", "99", "--max-params", "500"], tmp_path / "a", "has no trial 99"),
        (["--max-params", "5"], tmp_path / "b", "meets the cap (at most 5 parameters)"),
        (["--max-params", "500"], foreign, "holds files xtune did not write (todo.txt)"),
    ]
    for args, out, message in cases:
        result = xtune("distill", study, "--out", str(out), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert out == foreign or not out.exists()
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]
