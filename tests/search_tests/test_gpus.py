"""--workers auto: workers per GPU from free memory, dealt over every visible GPU."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from xtune.search import load_study_config
from xtune.search.device import DeviceError, physical_index
from xtune.search.gpus import (
    Gpu,
    Slot,
    fits,
    largest_plans,
    largest_step_mb,
    parse_workers,
    plan_workers,
    visible_gpus,
    worker_slots,
)

ROOT = Path(__file__).resolve().parents[2]


def _gpu(index: int, free: float, total: float = 24_000.0) -> Gpu:
    return Gpu(str(index), index, f"GPU{index}", free, total)


def test_a_gpu_holds_what_its_free_memory_less_the_reserve_allows() -> None:
    assert fits(_gpu(0, 10_000, 20_000), 1_000) == 8  # (10,000 - 2,000) / 1,000, at the cap
    assert fits(_gpu(0, 10_000, 20_000), 1_500) == 5
    assert fits(_gpu(0, 10_000, 20_000), 1_000, cap=4) == 4
    assert fits(_gpu(0, 2_500, 20_000), 1_000) == 0


def test_workers_are_dealt_round_robin_over_every_gpu() -> None:
    plan = plan_workers([_gpu(0, 6_400, 10_000), _gpu(1, 3_400, 10_000)], 1_000)
    assert [g.index for g in plan.gpus] == [0, 1, 0, 1, 0, 0, 0]  # 5 fit on GPU 0, 2 on GPU 1
    assert plan.per_gpu() == {0: 5, 1: 2} and plan.workers == 7
    assert plan.describe() == "7 workers (GPU 0: 5, GPU 1: 2); 1000 MB planned per worker"


def test_a_full_gpu_still_gets_one_worker_and_no_gpu_is_refused() -> None:
    plan = plan_workers([_gpu(0, 100)], 5_000)
    assert [g.index for g in plan.gpus] == [0]
    with pytest.raises(DeviceError, match="lists no GPU"):
        plan_workers([], 1_000)


def test_workers_option_is_a_number_or_auto() -> None:
    assert parse_workers("auto") == "auto" and parse_workers("3") == 3
    for bad in ("0", "-1", "two", "1.5", ""):
        with pytest.raises(DeviceError, match="give a number from 1, or auto"):
            parse_workers(bad)


def test_a_bad_workers_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xtune.cli import app

    result = CliRunner().invoke(app, ["search", str(ROOT / "studies/quickstart.toml"),
                                      "--storage", str(tmp_path / "s.journal"), "--workers", "x"])  # fmt: skip
    assert result.exit_code != 0
    assert "give a number from 1, or auto" in str(result.exception) + result.output
    assert not (tmp_path / "s.journal").exists()  # nothing was created


def test_auto_on_the_cpu_is_one_worker_and_a_number_keeps_its_devices() -> None:
    config = load_study_config(ROOT / "studies/quickstart.toml")
    assert worker_slots(config, "cpu", "auto", 1000) == [Slot("cpu")]
    assert worker_slots(config, "cpu", 3, 1000) == [Slot("cpu")] * 3
    assert worker_slots(config, "cuda:1", 2, 1000) == [Slot("cuda:1")] * 2


def test_the_largest_plans_take_every_range_at_its_capped_top() -> None:
    config = load_study_config(ROOT / "studies/quickstart.toml")
    lstm, xlstm = largest_plans(config)
    assert (lstm.params.model.hidden, lstm.params.model.layers) == (48, 2)
    assert (xlstm.params.model.embed, xlstm.params.model.blocks) == (32, 2)
    for plan in (lstm, xlstm):
        assert plan.data.window == 48 and plan.params.train.batch_size == 256
        assert len(plan.data.features) == len(config.features.candidates)


class _Nvml:
    """The NVML calls visible_gpus makes, for three GPUs with 1, 2 and 3 GB free."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 3

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        return int(uuid.removeprefix("GPU-"))

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(free=(h + 1) * 2**30, total=8 * 2**30)

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"Fake GPU"

    def nvmlDeviceGetIndex(self, h: int) -> int:
        return h


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _Nvml())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = visible_gpus()
    assert [(g.index, g.free_mb, g.name) for g in gpus] == [
        (0, 1024.0, "Fake GPU"), (1, 2048.0, "Fake GPU"), (2, 3072.0, "Fake GPU")]  # fmt: skip
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-0,7,1")  # CUDA stops at the bad 7
    assert [(g.ident, g.index) for g in visible_gpus()] == [("2", 2), ("GPU-0", 0)]


def test_the_physical_index_reads_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert physical_index("cpu") is None and physical_index("cuda:2") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert physical_index("cuda:0") == 3 and physical_index("cuda") == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc")
    assert physical_index("cuda:0") is None


@pytest.mark.gpu
def test_the_probe_measures_the_largest_models_step_on_a_gpu() -> None:
    config = load_study_config(ROOT / "studies/quickstart.toml")
    assert largest_step_mb(config, 6000, "cuda:0") > 0.0


def test_every_trial_records_its_gpu_index() -> None:
    from xtune.search.device import DeviceRecord
    from xtune.search.record import TrialRecord

    record = TrialRecord(device=DeviceRecord("cuda:0", "bf16", "2.13.0 cuda 12.8", "H200", 3))
    attrs = record.to_attrs()
    assert attrs["run/gpu_index"] == 3
    assert TrialRecord.from_attrs(attrs).device == record.device
    del attrs["run/gpu_index"]  # a trial stored before the field existed still reads
    assert TrialRecord.from_attrs(attrs).device == DeviceRecord(
        "cuda:0", "bf16", "2.13.0 cuda 12.8", "H200"
    )
