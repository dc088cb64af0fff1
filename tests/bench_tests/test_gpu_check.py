"""bench/gpu_check.py's own logic on the CPU: NVML sampling, the table, and the no-GPU exit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


class FakeNvml:
    """NVML's four calls the sampler makes, replaying a script of (busy %, {pid: bytes})."""

    def __init__(self, script: list[tuple[float, dict[int, int | None]]]) -> None:
        self.script, self.calls, self.handles = script, 0, []

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        self.handles.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        return SimpleNamespace(gpu=self.script[self.calls][0])

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list[Any]:
        _, procs = self.script[self.calls]
        self.calls += 1
        return [SimpleNamespace(pid=p, usedGpuMemory=b) for p, b in procs.items()]


def test_the_sampler_keeps_busy_percent_and_each_workers_peak_memory() -> None:
    mb = 2**20
    nvml = FakeNvml([(20.0, {11: 300 * mb}), (80.0, {11: 500 * mb, 12: 400 * mb}),
                     (50.0, {11: 450 * mb, 12: None})])  # fmt: skip
    sampler = gpu_check.Sampler(nvml, index=1)
    for _ in range(3):
        sampler.sample()
    s = sampler.samples
    assert s.busy == [20.0, 80.0, 50.0] and nvml.handles == [1, 1, 1]
    assert s.memory_mb == {11: 500.0, 12: 400.0}  # each process's most, a None read as 0
    assert s.busy_text() == "50% mean, 80% max"
    assert s.memory_text() == "500 MB max per worker"


def test_the_sampler_thread_samples_until_stopped() -> None:
    nvml = FakeNvml([(10.0, {1: 2**20})] * 1000)
    with gpu_check.Sampler(nvml, interval=0.01) as sampler:
        import time

        time.sleep(0.2)
    taken = nvml.calls
    assert 3 <= taken < 1000
    time.sleep(0.05)
    assert nvml.calls == taken  # stopped: no sample after the block
    assert sampler.samples.memory_text() == "1 MB max per worker"


def test_empty_samples_say_not_available() -> None:
    s = gpu_check.Samples()
    assert (s.busy_text(), s.memory_text()) == ("n/a", "n/a")


def test_the_table_is_one_markdown_table_with_a_row_each() -> None:
    rows = [gpu_check.Row("step", "LSTM, bf16", "1.20 ms", "ran in bf16"),
            gpu_check.Row("search", "4 worker(s)", "900 trials/h")]  # fmt: skip
    lines = gpu_check.render(rows).splitlines()
    assert lines[0] == "| check | setting | result | detail |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2:] == ["| step | LSTM, bf16 | 1.20 ms | ran in bf16 |",
                         "| search | 4 worker(s) | 900 trials/h |  |"]  # fmt: skip


def test_trials_per_hour() -> None:
    assert gpu_check.trials_per_hour(12.5, 60.0) == pytest.approx(750.0)
    assert gpu_check.trials_per_hour(3.0, 0.0) == 0.0


def test_without_cuda_it_says_so_in_one_line_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the check would run")
    assert gpu_check.main([]) == 0  # the script's exit code
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU here" in lines[0]
