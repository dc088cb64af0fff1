"""How many search workers each GPU gets, and which GPU each worker sees.

``xtune search --device cuda --workers auto`` trains several small models on every GPU at once:
one model rarely keeps a GPU busy. The plan:

1. The study's largest model of each family (every range at its capped top, every feature on,
   the largest window and batch) trains one step in a throwaway process; its peak memory, times
   a margin, plus a CUDA context is what one worker needs (:func:`probe_worker_mb`).
2. Each visible GPU gets as many workers as its free memory holds, less a reserve, capped at
   :data:`MAX_PER_GPU`, and at least one (:func:`plan_workers`). Workers are dealt round-robin,
   so worker k of K always lands on the least loaded GPU so far.
3. Each worker process sees only its own GPU (``CUDA_VISIBLE_DEVICES``), trains on ``cuda:0``
   and records the physical index on every trial (``run/gpu_index``).

GPUs are listed through NVML (``nvidia-ml-py``), which creates no CUDA context in the parent
process; the parent never touches CUDA, so it holds no GPU memory while its workers train. On a
CPU device ``auto`` means one worker: one process already uses every core through torch's
intra-op threads.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from xtune.errors import DeviceError

if TYPE_CHECKING:
    from xtune.search.config import StudyConfig

MAX_PER_GPU = 8
CONTEXT_MB = 600.0  # a CUDA context, cuBLAS/cuDNN handles and workspaces, per process
MARGIN = 1.5  # on the probed peak: validation batches, allocator fragmentation
RESERVE = 0.10  # of each GPU's total memory, left free for the driver and other users


@dataclass(frozen=True)
class Gpu:
    """One visible GPU: ``ident`` is what a worker's ``CUDA_VISIBLE_DEVICES`` names (an index or
    a UUID, as the parent's own variable named it); ``index`` is NVML's physical index."""

    ident: str
    index: int
    name: str
    free_mb: float
    total_mb: float


@dataclass(frozen=True)
class WorkerPlan:
    """Per worker, the GPU it sees; with the memory one worker was planned to need."""

    gpus: tuple[Gpu, ...]
    worker_mb: float

    @property
    def workers(self) -> int:
        return len(self.gpus)

    def per_gpu(self) -> dict[int, int]:
        """Workers on each GPU, by physical index."""
        counts: dict[int, int] = {}
        for gpu in self.gpus:
            counts[gpu.index] = counts.get(gpu.index, 0) + 1
        return counts

    def describe(self) -> str:
        each = ", ".join(f"GPU {i}: {n}" for i, n in sorted(self.per_gpu().items()))
        return f"{self.workers} workers ({each}); {self.worker_mb:.0f} MB planned per worker"


def fits(gpu: Gpu, worker_mb: float, *, reserve: float = RESERVE, cap: int = MAX_PER_GPU) -> int:
    """How many workers of ``worker_mb`` each this GPU's free memory holds (0 to ``cap``)."""
    usable = gpu.free_mb - reserve * gpu.total_mb
    return max(0, min(cap, math.floor(usable / worker_mb))) if worker_mb > 0 else cap


def plan_workers(
    gpus: Sequence[Gpu], worker_mb: float, *, reserve: float = RESERVE, cap: int = MAX_PER_GPU
) -> WorkerPlan:
    """Deal workers over ``gpus`` round-robin, each GPU up to what its free memory holds.

    A GPU whose free memory holds no worker still gets one: its largest trials may then fail
    out of memory, which fails that trial alone (recorded with its reason), not the search.

    Raises:
        DeviceError: no GPU is visible.
    """
    if not gpus:
        raise DeviceError(
            "--workers auto --device cuda: NVML lists no GPU (check the driver, nvidia-smi, "
            "and CUDA_VISIBLE_DEVICES)."
        )
    room = [max(1, fits(g, worker_mb, reserve=reserve, cap=cap)) for g in gpus]
    dealt = [g for turn in range(max(room)) for g, n in zip(gpus, room, strict=True) if turn < n]
    return WorkerPlan(tuple(dealt), worker_mb)


@dataclass(frozen=True)
class Slot:
    """Where one worker trains: its device as that worker names it, and, for a worker given a
    GPU of its own, the ``CUDA_VISIBLE_DEVICES`` its process starts with."""

    device: str
    visible: str | None = None


def parse_workers(text: str) -> int | str:
    """``--workers``: a whole number from 1, or ``auto``.

    Raises:
        DeviceError: anything else, in one line.
    """
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise DeviceError(f"--workers {text!r}: give a number from 1, or auto.")
    return int(text)


def worker_slots(config: StudyConfig, device: str, workers: int | str, n_rows: int) -> list[Slot]:
    """The search's workers: ``workers`` of them (``cuda`` dealt over every GPU, ``cuda:K`` all
    on GPU K), or with ``"auto"`` as many as the GPUs' free memory holds (one on the CPU)."""
    if workers != "auto":
        return [Slot(spread(device, k)) for k in range(int(workers))]
    if not device.startswith("cuda"):
        return [Slot(device)]
    gpus = visible_gpus()
    pinned = device.partition(":")[2]
    if pinned:
        gpus = [gpus[int(pinned)]] if int(pinned) < len(gpus) else []
    plan = plan_workers(gpus, probe_worker_mb(config, n_rows, gpus[0]) if gpus else 0.0)
    logging.getLogger("xtune").info("--workers auto: %s", plan.describe())
    return [Slot("cuda:0", g.ident) for g in plan.gpus]


def spread(device: str, worker: int) -> str:
    """``cuda`` deals workers over all GPUs round-robin; ``cuda:K`` pins them all to GPU K."""
    if device == "cuda":
        import torch

        n = torch.cuda.device_count()
        return f"cuda:{worker % n}" if n else "cpu"
    return device


def visible_gpus() -> list[Gpu]:
    """The GPUs this process may use, with their free memory, from NVML (no CUDA context).

    ``CUDA_VISIBLE_DEVICES`` narrows the list as CUDA would (indices or ``GPU-`` UUIDs).

    Raises:
        DeviceError: ``nvidia-ml-py`` is missing or NVML cannot start.
    """
    try:
        import pynvml
    except ImportError:
        raise DeviceError(
            "--workers auto on a GPU reads free memory through NVML: pip install nvidia-ml-py"
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise DeviceError(
            f"--workers auto: NVML does not start ({exc}); check the driver."
        ) from None
    try:
        return [_gpu(pynvml, ident) for ident in _visible_idents(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def _visible_idents(count: int) -> list[str]:
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return [str(i) for i in range(count)]
    idents = [p.strip() for p in raw.split(",") if p.strip()]
    valid = []
    for ident in idents:  # CUDA stops at the first entry it cannot use
        if ident.isdigit() and int(ident) >= count:
            break
        valid.append(ident)
    return valid


def _gpu(pynvml: Any, ident: str) -> Gpu:
    handle = (
        pynvml.nvmlDeviceGetHandleByIndex(int(ident))
        if ident.isdigit()
        else pynvml.nvmlDeviceGetHandleByUUID(ident)
    )
    mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    name = pynvml.nvmlDeviceGetName(handle)
    return Gpu(
        ident=ident,
        index=int(pynvml.nvmlDeviceGetIndex(handle)),
        name=name.decode() if isinstance(name, bytes) else str(name),
        free_mb=mem.free / 2**20,
        total_mb=mem.total / 2**20,
    )


def probe_worker_mb(config: StudyConfig, n_rows: int, gpu: Gpu) -> float:
    """Memory one worker needs, in MB: the largest model's one-step peak on ``gpu`` (measured
    in a throwaway process, so this one holds no CUDA context), times a margin, plus a
    context."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        peak = pool.apply(_probe_in_child, (config, n_rows, gpu.ident))
    return peak * MARGIN + CONTEXT_MB


def _probe_in_child(config: StudyConfig, n_rows: int, ident: str) -> float:
    os.environ["CUDA_VISIBLE_DEVICES"] = ident  # set before this process first touches CUDA
    return largest_step_mb(config, n_rows, "cuda:0")


def largest_step_mb(config: StudyConfig, n_rows: int, device: str) -> float:
    """Peak memory (MB) of one bf16-or-fp32 training step of the study's largest model of each
    family, with the whole fold's rows on the device as training puts them."""
    import torch

    from xtune.models import build_model

    peak = 0.0
    for plan in largest_plans(config):
        cfg, batch = plan.params.model, plan.params.train.batch_size
        torch.cuda.reset_peak_memory_stats(device)
        rows = torch.zeros(n_rows, len(plan.data.features), device=device)  # [rows, F]
        model = build_model(cfg).to(device)
        x = torch.randn(
            batch, plan.data.window, len(plan.data.features), device=device
        )  # [B, L, F]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, ret = model(x)
        (logits.float().sum() + ret.float().sum()).backward()
        torch.optim.AdamW(model.parameters()).step()
        torch.cuda.synchronize(device)
        peak = max(peak, torch.cuda.max_memory_allocated(device) / 2**20)
        del rows, model, x, logits, ret
        torch.cuda.empty_cache()
    return peak


def largest_plans(config: StudyConfig) -> list[Any]:
    """The study's largest plan of each family: every range at its (capped) top, every
    feature unit on, the largest window and batch size."""
    from xtune.search.space import _Explorer, suggest

    every_unit_on = {f"use/{u}": True for u in config.features.units}
    plans = []
    for family in config.model.families:
        one = replace(config, model=replace(config.model, families=(family,)))
        plans.append(suggest(_Explorer(True, every_unit_on), one))
    return plans
