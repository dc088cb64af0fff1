"""``xtune distill``: a smaller student of the exported trial, as a bundle that names its teacher."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xtune.cli._app import EXPORT, app, err, open_study_file, out
from xtune.cli._bundle import (
    AllowOtherDataOpt,
    ForceOpt,
    OverwriteOpt,
    PickOpt,
    RefitDataOpt,
    StorageOpt,
    print_checks,
)

if TYPE_CHECKING:
    from xtune.export.distill import DistillReport


# The student's cap (at least one of them) or size; None: not set, or chosen.
MaxParamsOpt = Annotated[
    int | None, typer.Option(help="Cap: the student's parameters.", show_default=False)
]
MaxLatencyOpt = Annotated[
    float | None,
    typer.Option(
        help="Cap: the student's ONNX fp32 latency (batch 1, one thread) in the "
        "trading PC's ms (what is measured here times the study's latency_scale).",
        show_default=False,
    ),
]
MinSpeedupOpt = Annotated[
    float | None,
    typer.Option(
        help="Cap: at least this many times faster than the teacher (ONNX fp32).",
        show_default=False,
    ),
]
WidthOpt = Annotated[
    int | None,
    typer.Option(
        help="The student's LSTM hidden size / xLSTM embedding (default: chosen).",
        show_default=False,
    ),
]
DepthOpt = Annotated[
    int | None,
    typer.Option(
        help="The student's LSTM layers / xLSTM blocks (default: chosen).", show_default=False
    ),
]
EpochsOpt = Annotated[
    int | None,
    typer.Option(help="The student's epochs (default: the teacher's refit's).", show_default=False),
]
WeightOpt = Annotated[
    float, typer.Option(help="Share of the soft-label term (0: hard labels only).")
]
TeacherOpt = Annotated[
    int | None, typer.Option(help="The teacher (default: the trial export would pick).")
]


@app.command(rich_help_panel=EXPORT)
def distill(
    study_file: Annotated[Path, typer.Argument(help="Study file (TOML).", show_default=False)],
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Folder to write the student's bundle to.", metavar="FOLDER"),
    ],
    max_params: MaxParamsOpt = None,
    max_latency_ms: MaxLatencyOpt = None,
    min_speedup: MinSpeedupOpt = None,
    width: WidthOpt = None,
    depth: DepthOpt = None,
    temperature: Annotated[float, typer.Option(help="Softens both models' probabilities.")] = 2.0,
    weight: WeightOpt = 0.5,
    epochs: EpochsOpt = None,
    trial: TeacherOpt = None,
    pick: PickOpt = "accuracy",
    force: ForceOpt = False,
    storage: StorageOpt = None,
    data: RefitDataOpt = None,
    allow_other_data: AllowOtherDataOpt = False,
    overwrite: OverwriteOpt = False,
    device: Annotated[str, typer.Option(help="Device for both fits.")] = "cpu",
) -> None:
    """Distill the winning trial into a smaller student bundle.

    The student learns from the teacher's soft labels. The teacher is the trial `xtune export`
    would write, refit the same way. The student keeps its family, features, window and training
    settings at the largest width and depth under the cap (chosen before any training), and
    learns from the teacher's probabilities at the given temperature on train + validation
    windows only: loss = weight * T^2 * KL(teacher || student) + (1 - weight) * hard-label loss,
    plus the return head's loss. Both are scored once on the untouched test part; the student's
    bundle is what `xtune export` writes, with the teacher in its manifest."""
    from xtune.export import pick_trial
    from xtune.export.distill import distill_bundle
    from xtune.export.student import StudentCap
    from xtune.models.distill import DistillConfig

    cap = StudentCap(max_params, max_latency_ms, min_speedup, width, depth)  # checked first
    settings = DistillConfig(temperature, weight)
    opened = open_study_file(study_file, storage)
    config, study = opened.config, opened.study
    chosen = pick_trial(study, rule=pick, number=trial, force=force)
    out.print(
        f"distilling trial {chosen.number} of '{config.study.name}' ({cap.describe()}; "
        f"temperature {settings.temperature:g}, weight {settings.weight:g})"
    )
    report = distill_bundle(
        config,
        chosen,
        out_dir,
        opened.settings,
        cap,
        settings,
        epochs=epochs,
        data=data,
        allow_other_data=allow_other_data,
        overwrite=overwrite,
        device=device,
    )
    print_distill(report)


def print_distill(report: DistillReport) -> None:
    """Teacher and student side by side, on the same test part; warnings in plain words."""
    from xtune.export.student import describe

    t, s = report.teacher, report.student
    table = Table(
        title=f"teacher: trial {report.bundle.trial}; student bundle: {report.bundle.folder}"
    )
    for col in ("untouched test part, once", f"teacher (trial {report.bundle.trial})", "student"):
        table.add_column(col, justify="right")
    rows = [
        ("model", describe(t.model), describe(s.model)),
        ("parameters", f"{t.params:,}", f"{s.params:,}"),
        ("accuracy", f"{t.test.accuracy:.4f}", f"{s.test.accuracy:.4f}"),
        ("baseline", f"{t.test.baseline:.4f}", f"{s.test.baseline:.4f}"),
        ("edge", f"{t.test.edge:+.4f}", f"{s.test.edge:+.4f}"),
        ("log loss", f"{t.test.loss:.4f}", f"{s.test.loss:.4f}"),
        ("sharpe", f"{t.test.sharpe:.2f}", f"{s.test.sharpe:.2f}"),
        ("onnx fp32 ms, timed together", f"{t.latency_ms:.3f}", f"{s.latency_ms:.3f}"),
    ]
    for row in rows:
        table.add_row(*row)
    out.print(table)
    kept = "-" if report.kept is None else f"{report.kept:.0%}"
    cap = "" if math.isinf(report.limit_ms) else f" (sized for <= {report.limit_ms:.3f} ms here)"
    out.print(
        f"the student kept {kept} of the teacher's test edge at {1 / report.speedup:.2f}x its "
        f"latency ({report.speedup:.1f}x faster){cap}; on {s.test.samples} test windows an "
        f"edge without skill is 0 +- {report.noise:.4f} (one standard error)"
    )
    print_checks(report.bundle)
    for line in report.warnings:
        err.print(f"[bold yellow]warning[/]: {line}")
