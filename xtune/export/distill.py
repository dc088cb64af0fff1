"""``xtune distill``: the exported trial teaches a smaller student, which becomes a bundle.

One pass, in this order, so that bad input fails before any training and the test part is
looked at once per model, at the end of its training:

    size the student under the cap (untrained models)          export/student.py
    refit the teacher exactly as ``xtune export`` does          export/build.py: refit_trial
      (train + validation, its epochs and seed; scored once on test)
    soft labels: the teacher's logits on train + validation     models/distill.py
    train the student on them for as many epochs (scored once on test)
    write the student's bundle with ``export``'s own code, its teacher in the manifest
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from optuna.trial import FrozenTrial

from xtune.errors import DistillError
from xtune.export.build import (
    ExportReport,
    Refit,
    refit_trial,
    scores_entry,
    trained,
    write_bundle,
)
from xtune.export.replace import check_target
from xtune.export.student import Sizing, StudentCap, size_student
from xtune.models import ModelConfig, Scores
from xtune.models.distill import DistillConfig, fit_student, soft_labels
from xtune.outputs import as_inputs
from xtune.runtime.manifest import CapsEntry, TeacherEntry
from xtune.search.config import StudyConfig
from xtune.search.luck import edge_bar
from xtune.settings import Settings

KEEP = 0.8  # below this share of the teacher's test edge, the report says so plainly


@dataclass(frozen=True)
class Side:
    """One model of the pair, as the report puts them side by side."""

    model: ModelConfig
    params: int
    test: Scores  # on the untouched test part, once
    latency_ms: float  # ONNX fp32, batch 1, one thread, here: timed together when sizing


@dataclass(frozen=True)
class DistillReport:
    bundle: ExportReport  # the student's bundle: its test scores, parity, int8, latencies
    teacher: Side
    student: Side
    distill: DistillConfig
    limit_ms: float  # the latency the student had to meet here (inf: no latency cap)
    noise: float  # standard error of a skill-less edge on this test part (search/luck.py)

    @property
    def kept(self) -> float | None:
        """The share of the teacher's test edge the student kept; None: the teacher had none."""
        edge = self.teacher.test.edge
        return self.student.test.edge / edge if edge > 0 else None

    @property
    def speedup(self) -> float:
        return self.teacher.latency_ms / self.student.latency_ms

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the user must not miss: too little edge kept, a cap missed when measured again."""
        t, s = self.teacher.test.edge, self.student.test.edge
        out = []
        if self.kept is None:
            out.append(
                f"the teacher has no edge on the test part ({t:+.4f}), so the student had none "
                "to keep; do not trade either on this evidence."
            )
        elif self.kept < KEEP:
            out.append(
                f"the student kept only {self.kept:.0%} of the teacher's test edge ({s:+.4f} vs "
                f"{t:+.4f}), less than {KEEP:.0%}: trade the teacher, or loosen the cap."
            )
        exported = self.bundle.latency_ms["onnx_fp32"] or 0.0
        if exported > self.limit_ms:
            out.append(
                f"the student timed {exported:.3f} ms at export, over the {self.limit_ms:.3f} ms "
                f"it was sized for ({self.student.latency_ms:.3f} ms when timed with the "
                "teacher): timings drift on this machine; run `xtune certify` on the trading PC."
            )
        return tuple(out)


def _student(
    teacher: Refit, sizing: Sizing, distill: DistillConfig, epochs: int | None, device: str
) -> Refit:
    """The student trained on the teacher's soft labels, as a refit ``write_bundle`` takes."""
    soft = soft_labels(teacher.final.model, teacher.dataset, teacher.final.fold)
    params = replace(teacher.params, model=sizing.student)
    trading, caps = teacher.config.trading, teacher.config.caps
    final = fit_student(
        params,
        teacher.dataset,
        soft,
        epochs or teacher.final.log.epochs_run,
        distill,
        device=device,
        fee=trading.fee,
        confident_share=trading.confident_share,
    )
    if final.log.reason:
        raise DistillError(
            f"the student diverged: {final.log.reason}. Try a lower --temperature or --weight."
        )
    entry = TeacherEntry(
        teacher.config.study.name,
        teacher.trial.number,
        asdict(teacher.plan.params.model),
        sizing.teacher.params,
        scores_entry(teacher.final.test),
        sizing.teacher.latency_ms,
        sizing.speedup,
        distill.temperature,
        distill.weight,
    )
    # The cap a trading PC checks (``xtune certify``): the study's, or the student's if tighter.
    cap = min(caps.max_latency_ms, sizing.limit_ms * caps.latency_scale)
    plan = replace(teacher.plan, params=replace(teacher.plan.params, model=sizing.student))
    return replace(
        teacher,
        plan=plan,
        params=params,
        final=final,
        validation=None,
        caps=CapsEntry(cap, caps.latency_scale, None),
        teacher=entry,
    )


def distill_bundle(
    config: StudyConfig,
    trial: FrozenTrial,
    out: Path,
    settings: Settings,
    cap: StudentCap,
    distill: DistillConfig | None = None,
    *,
    epochs: int | None = None,
    data: str | None = None,
    allow_other_data: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
) -> DistillReport:
    """Distill ``trial``'s refit into a student under ``cap`` and write its bundle to ``out``
    (see the module docstring). ``epochs``: the student's; default the teacher's refit's.

    Raises:
        ExportError: ``out`` is not a folder xtune may write, the trial was not trained, or
            the bars differ from the study's.
        DistillError: a cap no smaller model meets or the teacher already meets, a student
            that diverged.
    """
    distill = distill or DistillConfig()
    check_target(
        out, overwrite, as_inputs(config.path, data, config.data.source)
    )  # before any work
    if epochs is not None and epochs < 1:
        raise DistillError(f"--epochs must be at least 1, got {epochs}.")
    record = trained(trial)
    assert record.plan is not None  # trained
    plan = record.plan
    sizing = size_student(plan.params.model, plan.data.window, cap, config.caps.latency_scale)
    teacher = refit_trial(
        config, trial, settings, data=data, allow_other_data=allow_other_data, device=device
    )
    student = _student(teacher, sizing, distill, epochs, device)
    bundle = write_bundle(student, out, overwrite)
    return DistillReport(
        bundle,
        Side(
            teacher.plan.params.model,
            sizing.teacher.params,
            teacher.final.test,
            sizing.teacher.latency_ms,
        ),
        Side(sizing.student, sizing.cost.params, bundle.test, sizing.cost.latency_ms),
        distill,
        sizing.limit_ms,
        edge_bar(1, bundle.test.samples, bundle.test.baseline, plan.data.labels.max_horizon).noise,
    )
