"""How big a distilled student may be: the largest model of the teacher's family under a cap.

The student keeps the teacher's family, features, window, heads and training settings; only
its width (LSTM hidden size / xLSTM embedding) and depth (LSTM layers / xLSTM blocks) shrink.
Of the sizes below the teacher's that meet the cap, it takes the one with the most parameters:
the most capacity the cap allows, so the least edge to lose. Everything here is decided before
any training, from untrained models: parameters are counted, and latency is measured as export
measures a bundle's (ONNX fp32, batch 1, one onnxruntime thread; weights do not change it).

Timing on a shared machine drifts within minutes, and the largest model under a cap sits right
at it, so a student sized on timings taken apart from the teacher's can land over the cap.
Each candidate is therefore timed in ``ROUNDS`` rounds interleaved with the teacher, each
timing in a fresh onnxruntime session as export times a bundle; it must fit in every round: its slowest timing under
``--max-latency-ms``, its largest share of the teacher's timing in the same round under
``--min-speedup``. The latencies recorded are the medians of those timings.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xtune.errors import DistillError, SpecError
from xtune.export.quantize import ort_latency_ms
from xtune.models import ModelConfig, build_model, count_params, export_onnx, width_depth
from xtune.models.families import family_of


def _positive(name: str, value: float | None, integer: bool = False) -> None:
    kind = int if integer else int | float
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind) or not (0 < value < math.inf):
        raise DistillError(
            f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}."
        )


@dataclass(frozen=True)
class StudentCap:
    """What the student must fit; at least one is set. ``max_latency_ms`` is in the trading
    PC's ms (the study's ``[caps] latency_scale`` times what is measured here, as the search's
    cap); ``min_speedup``: the teacher's latency over the student's, both measured here.
    ``width`` / ``depth`` fix the student's size instead of choosing it."""

    max_params: int | None = None
    max_latency_ms: float | None = None
    min_speedup: float | None = None
    width: int | None = None
    depth: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "width", "depth"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name), integer=True)
        _positive("--max-latency-ms", self.max_latency_ms)
        _positive("--min-speedup", self.min_speedup)
        if self.min_speedup is not None and not self.min_speedup > 1:
            raise DistillError(f"--min-speedup must be above 1, got {self.min_speedup!r}.")
        if all(
            getattr(self, k) is None
            for k in ("max_params", "max_latency_ms", "min_speedup", "width", "depth")
        ):
            raise DistillError(
                "give the student a cap: --max-params, --max-latency-ms, --min-speedup, "
                "or its size with --width / --depth."
            )

    @property
    def explicit(self) -> bool:
        """Whether the student's size was given rather than chosen under a cap."""
        return self.width is not None or self.depth is not None

    def describe(self) -> str:
        parts = [
            f"at most {self.max_params:,} parameters" if self.max_params else "",
            f"at most {self.max_latency_ms:g} ms" if self.max_latency_ms else "",
            f"{self.min_speedup:g}x faster than the teacher" if self.min_speedup else "",
            f"width {self.width}" if self.width else "",
            f"depth {self.depth}" if self.depth else "",
        ]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Cost:
    """A model's size and its latency as a bundle would run it (ONNX fp32, batch 1, 1 thread)."""

    params: int
    latency_ms: float


@dataclass(frozen=True)
class Sizing:
    """The teacher's cost and the chosen student's, decided before any training; latencies are
    medians of timings interleaved with each other."""

    teacher: Cost
    student: ModelConfig
    cost: Cost  # the student's
    limit_ms: float  # the latency the student had to meet, measured here (inf: no such cap)

    @property
    def speedup(self) -> float:
        return self.teacher.latency_ms / self.cost.latency_ms


def resize(m: ModelConfig, width: int, depth: int) -> ModelConfig:
    """``m`` at another width and depth, as its family resizes it."""
    resized: ModelConfig = family_of(m).resize(m, width, depth)
    return resized


def _valid(m: ModelConfig, width: int, depth: int) -> bool:
    """Whether ``m`` can take this size (an xLSTM's width must divide into its heads)."""
    try:
        resize(m, width, depth)
    except SpecError:
        return False
    return True


ROUNDS = 5  # rounds of timing per candidate, each timing the teacher and then the candidate


def onnx_file(m: ModelConfig, window: int, path: Path) -> Path:
    """An untrained ``m`` (seeded) as ONNX: its latency is a trained one's."""
    torch.manual_seed(0)
    return export_onnx(build_model(m), window, m.n_features, path)


def _largest(models: list[ModelConfig], fits: Callable[[ModelConfig], bool]) -> ModelConfig | None:
    """The widest of ``models`` (one depth, by rising width) that fits, by bisection: a wider
    model is never cheaper."""
    lo, hi, best = 0, len(models) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(models[mid]):
            best, lo = models[mid], mid + 1
        else:
            hi = mid - 1
    return best


class _Costs:
    """Parameters (counted) and latencies (timed only when needed, with the teacher's; see the
    module docstring) of the teacher and the candidates, each computed once."""

    def __init__(self, teacher: ModelConfig, window: int, folder: Path) -> None:
        self.teacher, self.window, self.folder = teacher, window, folder
        x = np.random.default_rng(0).standard_normal((1, window, teacher.n_features))
        self.x = x.astype(np.float32)  # [1, L, F]: one window, as the live bot calls it
        self.params: dict[ModelConfig, int] = {}
        self.files: dict[ModelConfig, Path] = {}
        self.times: dict[ModelConfig, list[float]] = {}  # ms, every timing
        self.shares: dict[ModelConfig, list[float]] = {}  # of the teacher's ms, per round

    def count(self, m: ModelConfig) -> int:
        if m not in self.params:
            self.params[m] = count_params(build_model(m))
        return self.params[m]

    def _ms(self, m: ModelConfig) -> float:
        if m not in self.files:
            path = self.folder / f"{len(self.files)}.onnx"
            self.files[m] = onnx_file(m, self.window, path)
        ms = ort_latency_ms(self.files[m], self.x)
        self.times.setdefault(m, []).append(ms)
        return ms

    def _time(self, m: ModelConfig) -> None:
        if m not in self.shares:  # the teacher's too: a round of it against itself
            self.shares[m] = [self._ms(m) / self._ms(self.teacher) for _ in range(ROUNDS)]

    def slowest(self, m: ModelConfig) -> float:
        self._time(m)
        return max(self.times[m])

    def largest_share(self, m: ModelConfig) -> float:
        self._time(m)
        return max(self.shares[m])

    def median(self, m: ModelConfig) -> float:
        self._time(m)
        return float(np.median(self.times[m]))


def describe(m: ModelConfig) -> str:
    """``LSTM 32x2`` or ``xLSTM 64 [m, s]``, as the README writes models."""
    return family_of(m).describe(m)


def _candidates(teacher: ModelConfig, cap: StudentCap) -> list[list[ModelConfig]]:
    """The sizes to choose from, one list per depth by rising width: every valid size below
    the teacher's, or those with the width or depth given."""
    tw, td = width_depth(teacher)
    if (cap.width or 0) > tw or (cap.depth or 0) > td:
        raise DistillError(
            f"the student (width {cap.width or tw}, depth {cap.depth or td}) must not be larger "
            f"than the teacher ({describe(teacher)})."
        )
    if cap.width and not _valid(teacher, cap.width, cap.depth or 1):
        raise DistillError(
            f"--width {cap.width} is not a valid {teacher.family} width here (an xLSTM's width "
            f"must divide into its {getattr(teacher, 'heads', 1)} heads)."
        )
    out = []
    for d in [cap.depth] if cap.depth else range(1, td + 1):
        widths = [cap.width] if cap.width else range(1, tw + 1)
        smaller = [w for w in widths if (w, d) != (tw, td) and _valid(teacher, w, d)]
        out.append([resize(teacher, w, d) for w in smaller])
    return out


def size_student(
    teacher: ModelConfig, window: int, cap: StudentCap, latency_scale: float = 1.0
) -> Sizing:
    """The student for ``teacher`` under ``cap`` (module docstring), before any training.

    Raises:
        DistillError: a size larger than the teacher's, a cap the teacher already meets (export
            it instead), or one no smaller model can meet.
    """
    sizes = _candidates(teacher, cap)
    with tempfile.TemporaryDirectory(prefix="xtune-student-") as tmp:
        costs = _Costs(teacher, window, Path(tmp))  # no timing before a params-only error
        limit = math.inf if cap.max_latency_ms is None else cap.max_latency_ms / latency_scale
        share = 1 / cap.min_speedup if cap.min_speedup is not None else math.inf
        max_params, timed = cap.max_params or math.inf, limit < math.inf or share < math.inf

        def fits(m: ModelConfig) -> bool:
            if costs.count(m) > max_params:
                return False
            return costs.slowest(m) <= limit and costs.largest_share(m) <= share if timed else True

        if not cap.explicit and fits(teacher):
            raise DistillError(
                f"the teacher ({_cost(teacher, costs, timed)}) already meets the cap "
                f"({cap.describe()}); export it with `xtune export`, or give a tighter cap."
            )
        chosen = [m for m in (_largest(models, fits) for models in sizes) if m is not None]
        if not chosen:
            raise DistillError(_none_fits(teacher, sizes, cap, costs, timed))
        best = max(chosen, key=lambda m: (costs.count(m), -width_depth(m)[1]))
        student = Cost(costs.count(best), costs.median(best))  # timed with the teacher
        mine = Cost(costs.count(teacher), costs.median(teacher))
        return Sizing(mine, best, student, min(limit, mine.latency_ms * share))


def _cost(m: ModelConfig, costs: _Costs, timed: bool) -> str:
    ms = f", {costs.slowest(m):.3f} ms here at its slowest" if timed else ""
    return f"{describe(m)}: {costs.count(m):,} parameters{ms}"


def _none_fits(
    teacher: ModelConfig,
    sizes: list[list[ModelConfig]],
    cap: StudentCap,
    costs: _Costs,
    timed: bool,
) -> str:
    if not sizes[0]:
        return f"no student is smaller than the teacher ({describe(teacher)}) at that size."
    return (
        f"no {teacher.family} smaller than the teacher ({describe(teacher)}) meets the cap "
        f"({cap.describe()}); the smallest is {_cost(sizes[0][0], costs, timed)}. Loosen the cap."
    )
