"""Nothing lost, nothing swapped: replacing bundles, and bundles edited by hand or by an attacker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import xtune
from xtune.export import ExportError
from xtune.export.replace import check_target, install
from xtune.runtime import BundleError, load_bundle
from xtune.runtime.bundle import MANIFEST, SUMS, sha256_file, write_sums

pytestmark = pytest.mark.slow

Exports = dict[str, tuple[Path, Path, object]]


def _copy(exports: Exports, to: Path, family: str = "lstm") -> Path:
    shutil.copytree(exports[family][0], to)
    return to


def _xtune(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return xtune(*args, cwd=cwd, columns=300)


# ---------------------------------------------------------------- 1. overwriting
def test_overwrite_refuses_a_folder_with_files_xtune_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my trading journal")
    (tmp_path / "bars.csv").write_text("time,open\n")
    for target in (tmp_path, tmp_path / "."):
        with pytest.raises(ExportError, match="did not write"):
            check_target(target, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "my trading journal"


def test_overwrite_refuses_a_bundle_with_a_foreign_file_added(
    exports: Exports, tmp_path: Path
) -> None:
    bundle = _copy(exports, tmp_path / "bundle")
    (bundle / "my_model_notes.md").write_text("keep me")
    with pytest.raises(ExportError, match=r"did not write \(my_model_notes.md\)"):
        check_target(bundle, overwrite=True)
    assert (bundle / "my_model_notes.md").exists()


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        check_target(tmp_path / "file", overwrite=True)


def test_export_cli_in_a_busy_folder_deletes_nothing(exports: Exports, tmp_path: Path) -> None:
    _, study_file, _ = exports["lstm"]
    before = sorted(p.name for p in study_file.parent.iterdir())
    result = _xtune("export", str(study_file), "--out", ".", "--overwrite", cwd=study_file.parent)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "did not write" in result.stderr
    assert sorted(p.name for p in study_file.parent.iterdir()) == before


def test_a_bundle_is_replaced_atomically(exports: Exports, tmp_path: Path) -> None:
    """A reader polling the bundle while it is replaced 30 times never finds it missing."""
    out = _copy(exports, tmp_path / "live", "lstm")
    missing: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            if not (out / MANIFEST).exists():
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k in range(30):
            family = ("xlstm", "lstm")[k % 2]
            install(_copy(exports, tmp_path / f".new{k}", family), out, overwrite=True)
    finally:
        done.set()
        thread.join()
    assert not missing
    assert load_bundle(out).manifest.model.family == "lstm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live"]  # no temporary folder left


def test_two_exports_to_one_new_folder_cannot_both_win(exports: Exports, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    news = [_copy(exports, tmp_path / f".new{k}", f) for k, f in enumerate(("lstm", "xlstm"))]
    errors: list[Exception] = []

    def export(new: Path) -> None:
        try:
            install(new, out, overwrite=False)
        except ExportError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(new,)) for new in news]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and "already holds a bundle" in str(errors[0])
    load_bundle(out)  # the winner is complete


# ---------------------------------------------------------------- 8, 9. hostile bundles
def _resum(bundle: Path) -> None:
    write_sums(bundle, [p.name for p in bundle.iterdir() if p.name != SUMS])


def _edit_manifest(bundle: Path, edit: object) -> None:
    raw = json.loads((bundle / MANIFEST).read_text())
    edit(raw)  # type: ignore[operator]
    (bundle / MANIFEST).write_text(json.dumps(raw))
    _resum(bundle)


def test_a_swapped_model_with_updated_checksums_is_refused(
    exports: Exports, tmp_path: Path
) -> None:
    bundle = _copy(exports, tmp_path / "b")
    shutil.copy(exports["xlstm"][0] / "model.onnx", bundle / "model.onnx")  # another valid model
    _resum(bundle)
    with pytest.raises(BundleError, match="a file was swapped"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["model"].update(file="/etc/passwd"), "not in SHA256SUMS"),
        (lambda m: m["model"].update(fp32="../other/model.onnx"), "not in SHA256SUMS"),
        (lambda m: m.pop("scaler"), "key is missing"),
        (lambda m: m.update(window="sixteen"), "wrong type"),
    ],
    ids=["absolute-model-path", "outside-model-path", "missing-key", "mistyped-key"],
)
def test_an_edited_manifest_is_refused(
    exports: Exports, tmp_path: Path, edit: object, message: str
) -> None:
    bundle = _copy(exports, tmp_path / "b")
    _edit_manifest(bundle, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_a_manifest_that_is_not_json_is_refused(exports: Exports, tmp_path: Path) -> None:
    bundle = _copy(exports, tmp_path / "b")
    (bundle / MANIFEST).write_text("{not json")
    _resum(bundle)
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle)


def test_checksum_lines_are_parsed_strictly_and_never_leave_the_bundle(
    exports: Exports, tmp_path: Path
) -> None:
    bundle = _copy(exports, tmp_path / "b")
    sums = (bundle / SUMS).read_text().splitlines()
    (bundle / SUMS).write_text("\n" + "\n".join(line.replace("  ", " *") for line in sums) + "\n\n")
    load_bundle(bundle)  # blank lines and the '*' (binary mode) marker of sha256sum are fine
    (bundle / SUMS).write_text("\n".join([*sums, "garbage"]))
    with pytest.raises(BundleError, match=f"line {len(sums) + 1} is not"):
        load_bundle(bundle)
    (bundle / SUMS).write_text("\n".join([*sums, f"{'0' * 64}  /dev/zero"]))
    with pytest.raises(BundleError, match="not a plain file name"):
        load_bundle(bundle)  # refused at once, never read (reading /dev/zero never ends)


def test_a_symlinked_file_is_refused(exports: Exports, tmp_path: Path) -> None:
    bundle = _copy(exports, tmp_path / "b")
    real = tmp_path / "elsewhere.onnx"
    (bundle / "model.onnx").rename(real)
    (bundle / "model.onnx").symlink_to(real)
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle)


def test_an_onnx_file_of_the_wrong_shape_is_refused(exports: Exports, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    bundle = _copy(exports, tmp_path / "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 2])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["logits"])], "g", [x], [y])
    used = load_bundle(bundle).manifest.model.file  # model.int8.onnx where export kept it
    onnx.save(helper.make_model(graph), bundle / used)
    _edit_manifest(bundle, lambda m: m["files"].update({used: sha256_file(bundle / used)}))
    result = _xtune(
        "predict", str(bundle), "--data", str(exports["lstm"][1].parent / "bars.csv"), "--last"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "does not belong to this bundle" in result.stderr


def test_predict_out_into_a_missing_folder_is_one_line(exports: Exports, tmp_path: Path) -> None:
    bundle, study_file, _ = exports["lstm"]
    result = _xtune("predict", str(bundle), "--data", str(study_file.parent / "bars.csv"), "--out",
                    str(tmp_path / "missing" / "p.csv"))  # fmt: skip
    assert result.returncode == 2 and "does not exist; create it first" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_out_never_replaces_its_bars_a_study_file_or_a_bundle_file(
    exports: Exports, tmp_path: Path
) -> None:
    """Issue 21 A: `--out` over the bars (by any name: relative, a link, a hard link), the
    study file, or a file in the bundle is refused before any work; nothing changes."""
    bundle = _copy(exports, tmp_path / "b")
    bars, study = tmp_path / "bars.csv", tmp_path / "mk.toml"
    shutil.copy(exports["lstm"][1].parent / "bars.csv", bars)
    shutil.copy(exports["lstm"][1], study)
    (tmp_path / "link.csv").symlink_to(bars)
    os.link(bars, tmp_path / "hard.csv")
    files = [bars, study, *bundle.iterdir()]
    before = {p: p.read_bytes() for p in files}
    cases = {
        "bars.csv": "which this command reads",
        "./b/../bars.csv": "which this command reads",
        "hard.csv": "which this command reads",
        "link.csv": "which this command reads",
        "mk.toml": "name a file ending in .csv",
        "b/manifest.json": "inside the bundle",
        "b/p.csv": "inside the bundle",
    }
    for (out, says), flags in zip(cases.items(), [[], ["--overwrite"]] * 4, strict=False):
        result = _xtune("predict", "b", "--data", str(bars), "--out", out, *flags, cwd=tmp_path)
        assert result.returncode == 2 and says in result.stderr, (out, result.stderr)
        assert "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in files} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["b", "bars.csv", "mk.toml", "link.csv", "hard.csv"]
    )
    load_bundle(bundle)  # still whole


def test_predict_out_replaces_only_its_own_predictions_and_only_when_asked(
    exports: Exports, tmp_path: Path
) -> None:
    bundle, study_file, _ = exports["lstm"]
    bars = str(study_file.parent / "bars.csv")
    mine = tmp_path / "mine.csv"
    mine.write_text("time,h1_note\n2024-01-01,keep\n")  # not xtune's predictions
    for flags in ([], ["--overwrite"]):
        result = _xtune("predict", str(bundle), "--data", bars, "--out", str(mine), *flags)
        assert result.returncode == 2 and "xtune did not write" in result.stderr
    assert mine.read_text() == "time,h1_note\n2024-01-01,keep\n"
    for name in ("p.csv", "p.parquet"):
        out = tmp_path / name
        assert (
            _xtune("predict", str(bundle), "--data", bars, "--out", str(out), "--last").returncode
            == 0
        )
        again = _xtune("predict", str(bundle), "--data", bars, "--out", str(out))
        assert again.returncode == 2 and "pass --overwrite" in again.stderr
        assert (
            _xtune(
                "predict", str(bundle), "--data", bars, "--out", str(out), "--overwrite"
            ).returncode
            == 0
        )
        frame = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out)
        assert len(frame) > 1 and "h1_direction" in frame.columns  # replaced: all bars now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "p.csv", "p.parquet"]


def test_a_loaded_bundle_keeps_predicting_with_its_own_model_after_a_swap(
    exports: Exports, tmp_path: Path
) -> None:
    """A bot holds a verified bundle; an export replaces the folder meanwhile. The bot goes on
    with the model whose hash it checked, never the new file with the old features."""
    from xtune.features import load_bars
    from xtune.runtime import predict

    live = _with_int8(_copy(exports, tmp_path / "live", "xlstm"))  # it reads its reference too
    bars = load_bars(exports["xlstm"][1].parent / "bars.csv")
    held = load_bundle(live)
    before = predict(held, bars, last=True)
    install(_copy(exports, tmp_path / ".new", "lstm"), live, overwrite=True)
    assert load_bundle(live).manifest.model.family == "lstm"
    assert predict(held, bars, last=True).equals(before)


def _with_int8(bundle: Path) -> Path:
    """The bundle as if export had kept an int8 model."""
    from xtune.export import quantize_int8

    quantize_int8(bundle / "model.onnx", bundle / "model.int8.onnx")

    def use_int8(m: dict) -> None:  # type: ignore[type-arg]
        m["model"]["file"] = "model.int8.onnx"
        m["files"]["model.int8.onnx"] = sha256_file(bundle / "model.int8.onnx")

    _edit_manifest(bundle, use_int8)
    return bundle


def test_an_int8_bundle_gives_each_bar_the_answer_the_live_bot_gets(
    exports: Exports, tmp_path: Path
) -> None:
    """int8 quantizes activations per batch: a bar's probabilities must not depend on which
    other bars were predicted with it (the bot predicts one window at a time)."""
    from xtune.features import load_bars
    from xtune.runtime import predict

    loaded = load_bundle(_with_int8(_copy(exports, tmp_path / "b", "xlstm")))
    bars = load_bars(exports["xlstm"][1].parent / "bars.csv")
    every_bar = predict(loaded, bars)
    for cut in (0, 7, 50):
        history = bars.head(len(bars) - cut)
        assert predict(loaded, history, last=True).equals(every_bar.loc[[history.index[-1]]])


def test_bars_at_another_interval_are_refused_unless_asked(
    exports: Exports, tmp_path: Path
) -> None:
    """An hourly model fed 2-hour bars would compute every feature on the wrong time scale."""
    import pandas as pd

    bundle, study_file, _ = exports["lstm"]
    assert load_bundle(bundle).manifest.data.interval_s == 3600.0
    two_hourly = tmp_path / "bars_2h.csv"
    pd.read_csv(study_file.parent / "bars.csv").iloc[::2].to_csv(two_hourly, index=False)
    refused = _xtune("predict", str(bundle), "--data", str(two_hourly), "--last")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        "bars every 02:00:00, but this model was trained on bars every 01:00:00" in refused.stderr
    )
    allowed = _xtune(
        "predict", str(bundle), "--data", str(two_hourly), "--last", "--allow-other-interval"
    )
    assert allowed.returncode == 0, allowed.stderr
