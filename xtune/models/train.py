"""Train one configuration and return honest validation metrics: the function the search calls.

The whole fold (one contiguous [rows, F] float32 array) and its labels move to the device once;
each batch is gathered there by index (window end rows + offsets). No DataLoader, no per-batch
host-to-device copy. AdamW, linear warm-up then cosine or plateau decay, gradient clipping,
early stopping on validation log loss with the best weights restored.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from xtune.errors import SpecError
from xtune.features.dataset import Dataset, ScaledFold
from xtune.features.labels import MISSING
from xtune.models.factory import ModelConfig, build_model
from xtune.models.loss import LossConfig, direction_loss, total_loss
from xtune.models.probe import count_params, cpu_latency_ms, torch_threads
from xtune.models.trading import periods_per_year, sharpe


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    schedule: Literal["cosine", "plateau"] = "cosine"
    warmup: float = 0.05  # fraction of all steps with a linear learning-rate ramp
    grad_clip: float = 1.0
    patience: int = 5  # epochs without a better validation log loss before stopping
    seed: int = 0
    loss: LossConfig = field(default_factory=LossConfig)
    threads: int | None = None  # CPU threads; None: default_threads()
    compile: bool = False  # torch.compile (CUDA)
    bf16: bool = True  # bf16 autocast on CUDA

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise SpecError(f"epochs, batch_size and patience must be >= 1, got {self}.")
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 <= self.warmup < 1):
            raise SpecError("lr must be > 0, weight_decay >= 0 and warmup in [0, 1).")
        if self.schedule not in ("cosine", "plateau"):
            raise SpecError(f"schedule must be 'cosine' or 'plateau', got {self.schedule!r}.")


@dataclass(frozen=True)
class Params:
    """Everything a trial trains (the data side is in the Dataset it is given)."""

    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.model), "train": asdict(self.train)}


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float


@dataclass(frozen=True)
class Metrics:
    """Validation metrics of one configuration, averaged over folds and horizons.

    ``val_loss`` is the plain cross-entropy (log loss) of the direction heads, comparable across
    trials whatever their loss settings; ``baseline_accuracy`` is the share of the most common
    class in the validation labels: the accuracy of always guessing it.
    """

    val_accuracy: float
    val_loss: float
    baseline_accuracy: float
    val_accuracy_per_horizon: tuple[float, ...]
    epochs_run: int
    best_epoch: int
    train_seconds: float
    params: int
    latency_ms: float
    curve: tuple[EpochRecord, ...]
    val_sharpe: float = 0.0
    status: Literal["ok", "diverged"] = "ok"
    reason: str = ""
    stopped: str = ""  # why training ended: early stopping or the epoch budget

    @property
    def edge(self) -> float:
        """Accuracy above always guessing the majority class."""
        return self.val_accuracy - self.baseline_accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_threads() -> int:
    """The cores this process may use, at most 4: small recurrent models gain nothing from more,
    and oversubscribed OpenMP threads spin (one user saw a plain pipeline 8x slower)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class _Fold:
    """One fold's arrays on the training device, with batch gathering by index."""

    def __init__(self, data: Dataset, fold: ScaledFold, device: torch.device) -> None:
        window = data.spec.window
        self.x = torch.from_numpy(fold.x).to(device)  # [rows, F]
        self.direction = torch.from_numpy(data.direction).to(device)  # [rows, H]
        train_ret = data.returns[fold.train.start : fold.train.stop]  # [N, H]
        # Returns are ~1e-3: train on them in units of their training std (kept for export).
        self.ret_scale = np.maximum(train_ret.std(axis=0), 1e-12).astype(np.float32)
        scaled = np.nan_to_num(data.returns / self.ret_scale, nan=0.0)
        self.returns = torch.from_numpy(scaled.astype(np.float32)).to(device)  # [rows, H]
        self.offsets = torch.arange(-window + 1, 1, device=device)  # [L]
        self.train_ends = torch.arange(fold.train.start, fold.train.stop, device=device)
        self.val_ends = torch.arange(fold.val.start, fold.val.stop, device=device)

    def batch(self, ends: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows = ends[:, None] + self.offsets  # [B, L]
        return self.x[rows], self.direction[ends], self.returns[ends]  # [B, L, F], [B, H], [B, H]


def _lr_factor(step: int, total: int, warmup_steps: int, schedule: str, plateau: float) -> float:
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if schedule == "cosine":
        progress = min(1.0, step / max(1, total))
        return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm * plateau


@torch.no_grad()
def _evaluate(
    model: nn.Module, fold: _Fold, ends: torch.Tensor, batch: int = 4096
) -> tuple[float, np.ndarray, np.ndarray]:
    """Log loss, per-horizon accuracy and the predicted classes [N, H] on ``ends``."""
    model.eval()
    losses, preds = 0.0, []
    for k in range(0, len(ends), batch):
        x, y, _ = fold.batch(ends[k : k + batch])
        logits, _ = model(x)
        losses += float(direction_loss(logits, y, LossConfig())) * len(x)
        preds.append(logits.argmax(-1))
    model.train()
    predicted = torch.cat(preds).cpu().numpy()  # [N, H]
    truth = fold.direction[ends].cpu().numpy()
    return losses / len(ends), (predicted == truth).mean(axis=0), predicted


def _baseline(direction: np.ndarray) -> float:
    """Majority-class share per horizon, averaged: the accuracy of always guessing it."""
    return float(np.mean([np.bincount(col).max() / len(col) for col in direction.T]))


def _sharpe(data: Dataset, ends: range, predicted: np.ndarray, fee: float) -> float:
    h = data.spec.labels.horizons[0]
    return sharpe(
        predicted[:, 0], data.returns[ends.start : ends.stop, 0].astype(np.float64), h,
        data.spec.labels.classes, fee, periods_per_year(data.times),
    )  # fmt: skip


def _check_heads(params: Params, data: Dataset) -> None:
    head, labels = params.model.head, data.spec.labels
    if (head.horizons, head.classes) != (len(labels.horizons), labels.classes):
        raise SpecError(
            f"model heads ({head.horizons} horizon(s), {head.classes} classes) do not match the "
            f"data's labels ({len(labels.horizons)} horizon(s), {labels.classes} classes)."
        )


def _fit(
    params: Params,
    data: Dataset,
    sfold: ScaledFold,
    device: str | torch.device,
    *,
    fixed_epochs: int | None = None,
    fee: float = 0.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[nn.Module, Metrics, np.ndarray]:
    """Train on ``sfold.train`` and evaluate on ``sfold.val``.

    With ``fixed_epochs`` (the final refit) it trains exactly that many epochs and looks at
    ``sfold.val`` once, at the end: that part is then the test part and must not steer training.
    """
    _check_heads(params, data)
    cfg = params.train
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    arrays = _Fold(data, sfold, dev)
    if (data.direction[sfold.val.start : sfold.val.stop] == MISSING).any():
        raise SpecError("evaluation rows without labels; the split is inconsistent.")
    model = build_model(params.model).to(dev)
    n_params = count_params(model)
    step_fn = torch.compile(model) if cfg.compile and dev.type == "cuda" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs = fixed_epochs or cfg.epochs
    steps_per_epoch = math.ceil(len(arrays.train_ends) / cfg.batch_size)
    total = epochs * steps_per_epoch
    warmup_steps = int(cfg.warmup * total)
    autocast = dev.type == "cuda" and cfg.bf16

    best_loss, best_state, best_epoch, stale, plateau = math.inf, None, 0, 0, 1.0
    curve: list[EpochRecord] = []
    reason, step, lr = "", 0, cfg.lr
    started = time.perf_counter()
    with torch_threads(cfg.threads or default_threads()):
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(len(arrays.train_ends), generator=gen).to(dev)
            running, seen = 0.0, 0
            for k in range(0, len(perm), cfg.batch_size):
                x, y, r = arrays.batch(arrays.train_ends[perm[k : k + cfg.batch_size]])
                lr = cfg.lr * _lr_factor(step, total, warmup_steps, cfg.schedule, plateau)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                    logits, ret = step_fn(x)
                loss = total_loss(logits, ret, y, r, cfg.loss)
                if not torch.isfinite(loss):
                    reason = f"non-finite training loss at epoch {epoch}, step {step}"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                running += float(loss.detach()) * len(x)
                seen += len(x)
                step += 1
            if reason:
                break
            if fixed_epochs is not None:
                curve.append(EpochRecord(epoch, running / seen, math.nan, math.nan, lr))
                continue
            val_loss, val_acc, _ = _evaluate(model, arrays, arrays.val_ends)
            if not math.isfinite(val_loss):
                reason = f"non-finite validation loss at epoch {epoch}"
                break
            record = EpochRecord(epoch, running / seen, val_loss, float(val_acc.mean()), lr)
            curve.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if val_loss < best_loss - 1e-6:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if cfg.schedule == "plateau" and stale % max(1, cfg.patience // 2) == 0:
                    plateau *= 0.5
                if stale >= cfg.patience:
                    break
    stopped = (
        f"early stopping: no better validation log loss for {cfg.patience} epochs after epoch {best_epoch}"
        if fixed_epochs is None and 0 < len(curve) < epochs and not reason
        else f"ran all {epochs} epochs"
    )
    seconds = time.perf_counter() - started
    baseline = _baseline(data.direction[sfold.val.start : sfold.val.stop])
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to("cpu").eval()
    latency = cpu_latency_ms(model, data.spec.window, len(data.features))
    if reason or (fixed_epochs is None and best_state is None):
        metrics = Metrics(0.0, math.inf, baseline, (), len(curve), 0, seconds, n_params, latency,
                          tuple(curve), 0.0, "diverged", reason or "no finite validation loss")  # fmt: skip
        return model, metrics, arrays.ret_scale
    cpu = _Fold(data, sfold, torch.device("cpu"))
    loss_, acc, predicted = _evaluate(model, cpu, cpu.val_ends)
    metrics = Metrics(
        val_accuracy=float(acc.mean()),
        val_loss=best_loss if fixed_epochs is None else loss_,
        baseline_accuracy=baseline,
        val_accuracy_per_horizon=tuple(float(a) for a in acc),
        epochs_run=len(curve),
        best_epoch=best_epoch if fixed_epochs is None else len(curve),
        train_seconds=seconds,
        params=n_params,
        latency_ms=latency,
        curve=tuple(curve),
        val_sharpe=_sharpe(data, sfold.val, predicted, fee),
        stopped=stopped,
    )
    return model, metrics, arrays.ret_scale


def train(
    params: Params,
    data: Dataset,
    *,
    fold: int = 0,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[nn.Module, Metrics, np.ndarray]:
    """Train on one fold. Returns the best model (on CPU), its metrics and the return scale."""
    return _fit(params, data, data.folds[fold], device, fee=fee, on_epoch=on_epoch)


def train_and_evaluate(
    params: Params,
    data: Dataset,
    *,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> Metrics:
    """Train on every fold of ``data`` and average the validation metrics over folds.

    Never raises for a diverging configuration: NaN/inf loss ends training and comes back as
    ``status="diverged"`` with the reason, so a search worker keeps going.
    """
    results = [
        train(params, data, fold=k, device=device, fee=fee, on_epoch=on_epoch)[1]
        for k in range(len(data.folds))
    ]
    bad = [m for m in results if m.status != "ok"]
    if len(results) == 1 or bad:
        return (bad or results)[0]
    mean = lambda values: float(np.mean(values))  # noqa: E731
    return Metrics(
        val_accuracy=mean([m.val_accuracy for m in results]),
        val_loss=mean([m.val_loss for m in results]),
        baseline_accuracy=mean([m.baseline_accuracy for m in results]),
        val_accuracy_per_horizon=tuple(
            float(v) for v in np.mean([m.val_accuracy_per_horizon for m in results], axis=0)
        ),
        epochs_run=max(m.epochs_run for m in results),
        best_epoch=round(mean([m.best_epoch for m in results])),
        train_seconds=sum(m.train_seconds for m in results),
        params=results[0].params,
        latency_ms=results[0].latency_ms,
        curve=results[-1].curve,
        val_sharpe=mean([m.val_sharpe for m in results]),
        stopped="; ".join(f"fold {k}: {m.stopped}" for k, m in enumerate(results)),
    )


def fit_final(
    params: Params,
    data: Dataset,
    epochs: int,
    *,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
) -> tuple[nn.Module, Metrics, np.ndarray, ScaledFold]:
    """Refit on all development rows (train + validation) for ``epochs`` epochs (the count
    early stopping chose), then evaluate once on the untouched test part.

    The returned metrics' ``val_*`` fields are **test** figures. Only the final model (export)
    should ever call this: a search that looks at the test part is no longer honest.
    """
    fold, _ = data.final()
    model, metrics, ret_scale = _fit(
        params, data, fold, device, fixed_epochs=max(1, epochs), fee=fee
    )
    return model, metrics, ret_scale, fold
