"""``xtune export`` (research PC) and ``xtune predict`` (trading PC, no torch or optuna)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xtune.cli._app import (
    EXPORT,
    TRADING,
    Command,
    OldBarsArg,
    app,
    bars_given,
    data_option,
    err,
    open_study_file,
    out,
)

if TYPE_CHECKING:
    import pandas as pd

    from xtune.export import ExportReport
    from xtune.search.luck import Luck

# Options of the two commands that refit a study's trial and write a bundle: export, distill.
StorageOpt = Annotated[
    str | None, typer.Option(help="Storage URL or journal path (default as for search).")
]
RefitDataOpt = Annotated[
    str | None, data_option("Bars to refit on (default: those the study recorded).")
]
PickOpt = Annotated[
    str,
    typer.Option(
        help="Rule when no --trial, among the feasible Pareto front: accuracy (highest "
        "validation accuracy, ties: lower loss), loss (lowest validation loss, ties: higher "
        "accuracy) or knee (nearest the best accuracy and the best loss at once)."
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Allow a --trial that is not on the feasible front.")
]
AllowOtherDataOpt = Annotated[
    bool,
    typer.Option(
        "--allow-other-data", help="Refit on --data even if its hash differs from the study's."
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace a bundle xtune wrote at --out.")
]


@app.command(rich_help_panel=EXPORT)
def export(
    study_file: Annotated[Path, typer.Argument(help="Study file (TOML).", show_default=False)],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write the bundle to.", metavar="FOLDER")
    ],
    storage: StorageOpt = None,
    data: RefitDataOpt = None,
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number to export (must be on the feasible Pareto front)."),
    ] = None,
    pick: PickOpt = "accuracy",
    force: ForceOpt = False,
    allow_other_data: AllowOtherDataOpt = False,
    overwrite: OverwriteOpt = False,
    device: Annotated[str, typer.Option(help="Device for the refit.")] = "cpu",
) -> None:
    """Turn the winning trial into a bundle for the trading PC.

    Refits the trial on train + validation (its early-stopped epoch count and seed), evaluates
    it once on the untouched test part, exports ONNX (plus int8 only where it is faster here and
    agrees on 99%+ of test directions), checks that onnxruntime matches torch within 1e-4, and
    writes manifest.json (features, scaler, window, labels, metrics, versions) with checksums.
    """
    from xtune.export import export_bundle, pick_trial
    from xtune.search.report import luck

    opened = open_study_file(study_file, storage)
    config, study, env = opened.config, opened.study, opened.settings
    chosen = pick_trial(study, rule=pick, number=trial, force=force)
    out.print(
        f"exporting trial {chosen.number} of '{config.study.name}' (refit on train + validation, then test once)"
    )
    report = export_bundle(
        config,
        chosen,
        out_dir,
        env,
        data=data,
        allow_other_data=allow_other_data,
        overwrite=overwrite,
        device=device,
    )
    _print_export(report)
    assert report.validation is not None  # an exported trial was validated in the search
    _print_luck(luck(study, chosen), report.validation.edge)


PREDICT_KEY = (
    "h<N>_ = N bars ahead. p_<class>: the direction head's probability (2 classes: down = down "
    "or unchanged); direction: the likeliest class; return: a second head's log-return "
    "estimate. The heads answer apart: a 'down' beside a small positive return is no "
    "contradiction; trade on the probabilities."
)


def _print_luck(odds: Luck, edge: float) -> None:
    verdict = "NOT distinguishable from luck" if odds.lucky else "above what luck explains"
    out.print(
        f"luck: the best of {odds.trials} trained trials gains about "
        f"{odds.expected_best_edge:+.3f} edge by chance alone; this trial's validation edge "
        f"{edge:+.3f} is {verdict} (95% bar {odds.edge_bar:+.3f}); deflated Sharpe "
        f"{odds.deflated_sharpe:.2f}. The test figures above were never searched on."
    )


def _print_export(report: ExportReport) -> None:
    table = Table(title=f"trial {report.trial} -> {report.folder}")
    for col in ("", "accuracy", "baseline", "edge", "log loss", "sharpe"):
        table.add_column(col, justify="right")
    for name, m in (("validation", report.validation), ("test (once)", report.test)):
        if m is None:
            continue
        table.add_row(
            name,
            f"{m.accuracy:.4f}",
            f"{m.baseline:.4f}",
            f"{m.edge:+.4f}",
            f"{m.loss:.4f}",
            f"{m.sharpe:.2f}",
        )
    out.print(table)
    print_checks(report)
    if report.test.edge <= 0:
        err.print(
            "[yellow]note[/]: on the test part this model does not beat always guessing the majority class."
        )


def print_checks(report: ExportReport) -> None:
    """What export verified in the bundle: parity, latencies, the int8 decision."""
    lat = report.latency_ms
    int8 = report.int8
    out.print(f"parity: onnxruntime vs torch max |diff| {report.parity:.2e} (<= 1e-4)")
    out.print(
        f"latency, batch 1, one thread: torch {lat['torch_eager']:.3f} ms, onnx fp32 {lat['onnx_fp32']:.3f} ms"
        + (f", onnx int8 {lat['onnx_int8']:.3f} ms" if lat["onnx_int8"] else "")
    )
    out.print("int8: kept" if int8.used else f"int8: not kept ({int8.reason})")


def _predictions(bundle_dir: Path, data: str, last: bool, allow: bool) -> pd.DataFrame:
    """A bundle's predictions, or a consensus bundle's (members' columns after its own)."""
    from xtune.features import load_bars
    from xtune.runtime import load_bundle
    from xtune.runtime import predict as run_predict
    from xtune.runtime.consensus import is_consensus, load_consensus, predict_consensus

    if is_consensus(bundle_dir):  # from `xtune consensus --out`: members and their rule
        chosen = load_consensus(bundle_dir)
        bars = load_bars(data, columns=chosen.columns)
        return predict_consensus(chosen, bars, last=last, allow_other_interval=allow)
    bundle = load_bundle(bundle_dir)
    bars = load_bars(data, columns=bundle.manifest.columns)
    return run_predict(bundle, bars, last=last, allow_other_interval=allow)


PredictionsOut = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="File to write the predictions to, its format by suffix: .csv, .parquet or "
        ".pq (default: print them).",
        metavar="FILE",
    ),
]
LastOpt = Annotated[bool, typer.Option("--last", help="Only the newest bar (for a live bot).")]
OtherIntervalOpt = Annotated[
    bool,
    typer.Option(
        "--allow-other-interval",
        help="Predict on bars at another interval than the model was trained on.",
    ),
]


@app.command(cls=Command, rich_help_panel=TRADING)
def predict(
    bundle_dir: Annotated[
        Path,
        typer.Argument(
            help="Bundle folder from `xtune export` (or `xtune consensus --out`).",
            show_default=False,
        ),
    ],
    data: Annotated[
        str | None,
        data_option("CSV or Parquet bars, history long enough for warm-up + window. Required."),
    ] = None,
    old_data: OldBarsArg = None,
    out_path: PredictionsOut = None,
    last: LastOpt = False,
    allow_other_interval: OtherIntervalOpt = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace predictions xtune wrote at --out.")
    ] = False,
) -> None:
    """Predict direction and return per bar from a bundle.

    Per horizon h: h{h}_p_<class> are the direction head's probabilities for the move from
    this bar's close to the close h bars later (with 2 classes, down means down or
    unchanged); h{h}_direction is the likeliest class; h{h}_return is a second head's
    estimate of the log return over the same bars. The two heads answer apart, so a "down"
    beside a small positive return is no contradiction: trade on the probabilities.

    Needs neither torch nor optuna: the trading PC installs xtune with its `runtime` extra
    (docs/quickstart.md). Verifies the bundle's checksums and format first and recomputes the
    features from raw bars exactly as training did. --out never replaces a file xtune did not
    write, nor the bars, nor anything in a bundle."""
    from xtune.outputs import PREDICTIONS, as_inputs, check_output_file, save_frame, write_file

    data = bars_given(data, old_data, f"xtune predict {bundle_dir}")
    inputs = as_inputs(bundle_dir, data)
    if out_path is not None:  # before any work
        check_output_file(out_path, PREDICTIONS, inputs=inputs, overwrite=overwrite)
    frame = _predictions(bundle_dir, data, last, allow_other_interval)
    if out_path is None:
        out.print(
            frame.to_string(float_format=lambda v: f"{v:.6f}"), soft_wrap=True, highlight=False
        )
        err.print(PREDICT_KEY, highlight=False)  # stdout stays the table alone
        return
    write_file(
        out_path,
        PREDICTIONS,
        lambda tmp: save_frame(frame, tmp, out_path.suffix),
        inputs=inputs,
        overwrite=overwrite,
    )
    out.print(f"wrote {len(frame)} prediction(s) to {out_path}")
