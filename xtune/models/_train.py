"""Train one configuration and return honest validation metrics: the function the search calls.

The whole fold (one contiguous [rows, F] float32 array) and its labels move to the device once;
each batch is gathered there by index (window end rows + offsets). AdamW, linear warm-up then
cosine or plateau decay, gradient clipping, early stopping on validation log loss with the best
weights restored. The loop is flat: ``_Run`` holds the state, ``_train_epoch`` runs one epoch,
and two short functions drive it: with early stopping (search) or a fixed epoch count (export).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from xtune.errors import SpecError
from xtune.features.dataset import Dataset, ScaledFold
from xtune.features.labels import MISSING
from xtune.models._evaluate import (
    FoldArrays,
    Outputs,
    Scores,
    baseline,
    evaluate,
    loss_and_predictions,
    score,
)
from xtune.models._probe import torch_threads
from xtune.models.factory import build_model
from xtune.models.loss import total_loss
from xtune.models.params import Params, TrainConfig
from xtune.models.results import EpochRecord, FinalFit, Fit, Metrics, Rungs, TrainLog

__all__ = [
    "Criterion",
    "Initial",
    "default_threads",
    "fit_final",
    "initialize",
    "train",
    "train_and_evaluate",
]

# A training loss other than the plain one (a distilled student's, :mod:`xtune.models.distill`):
# (logits [B, H, C], returns [B, H], direction [B, H], return targets [B, H], window ends [B]).
# The ends name each window by its last row, so the loss can look up what it keeps per window.
Criterion = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]


@dataclass(frozen=True)
class Initial:
    """A model's initial weights and the CPU RNG state right after they were drawn. Every fold
    starts from a copy, exactly as if it had seeded and built the model itself, so the model is
    built (and probed) once per trial."""

    model: nn.Module
    rng: torch.Tensor
    seed: int


def initialize(params: Params) -> Initial:
    torch.manual_seed(params.train.seed)
    model = build_model(params.model)
    return Initial(model, torch.get_rng_state(), params.train.seed)


def default_threads() -> int:
    """The cores this process may use, at most 4: small recurrent models gain nothing from more,
    and oversubscribed OpenMP threads spin (one user saw a plain pipeline 8x slower)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _lr_factor(step: int, total: int, warmup_steps: int, schedule: str, plateau: float) -> float:
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if schedule == "cosine":
        progress = min(1.0, step / max(1, total))
        return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm * plateau


def _check_heads(params: Params, data: Dataset) -> None:
    head, labels = params.model.head, data.spec.labels
    if (head.horizons, head.classes) != (len(labels.horizons), labels.classes):
        raise SpecError(
            f"model heads ({head.horizons} horizon(s), {head.classes} classes) do not match the "
            f"data's labels ({len(labels.horizons)} horizon(s), {labels.classes} classes)."
        )


class _Run:
    """The state of one training run: model, optimizer, schedule, fold arrays, step count."""

    def __init__(
        self,
        params: Params,
        data: Dataset,
        fold: ScaledFold,
        device: str | torch.device,
        epochs: int,
        init: Initial,
        criterion: Criterion | None = None,
    ) -> None:
        _check_heads(params, data)
        if (data.direction[fold.val.start : fold.val.stop] == MISSING).any():
            raise SpecError("evaluation rows without labels; the split is inconsistent.")
        self.cfg = cfg = params.train
        self.dev = dev = torch.device(device)
        torch.manual_seed(cfg.seed)  # seeds CUDA too; the CPU state continues after the build
        torch.set_rng_state(init.rng)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.arrays = FoldArrays(data, fold, dev)
        self.model = copy.deepcopy(init.model).to(dev)
        self.step_fn = (
            torch.compile(self.model) if cfg.compile and dev.type == "cuda" else self.model
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.total = epochs * math.ceil(len(self.arrays.train_ends) / cfg.batch_size)
        self.warmup_steps = int(cfg.warmup * self.total)
        self.autocast = dev.type == "cuda" and cfg.bf16
        self.step, self.plateau, self.lr = 0, 1.0, cfg.lr
        self.criterion = criterion
        limit = cfg.max_seconds
        self.deadline = math.inf if limit is None else time.perf_counter() + limit

    @property
    def out_of_time(self) -> bool:
        return time.perf_counter() > self.deadline


def _train_epoch(run: _Run, epoch: int) -> tuple[float, str]:
    """One pass over the training windows in a seeded random order: (mean loss, reason), the
    reason non-empty when the loss stopped being finite."""
    cfg, arrays = run.cfg, run.arrays
    perm = torch.randperm(len(arrays.train_ends), generator=run.gen).to(run.dev)
    running, seen = 0.0, 0
    for k in range(0, len(perm), cfg.batch_size):
        ends = arrays.train_ends[perm[k : k + cfg.batch_size]]  # [B]
        x, y, r = arrays.batch(ends)
        run.lr = cfg.lr * _lr_factor(
            run.step, run.total, run.warmup_steps, cfg.schedule, run.plateau
        )
        for group in run.optimizer.param_groups:
            group["lr"] = run.lr
        with torch.autocast(run.dev.type, dtype=torch.bfloat16, enabled=run.autocast):
            logits, ret = run.step_fn(x)  # [B, H, C], [B, H]
        if run.criterion is None:
            loss = total_loss(logits, ret, y, r, cfg.loss)
        else:
            loss = run.criterion(logits, ret, y, r, ends)
        if not torch.isfinite(loss):
            return math.nan, f"non-finite training loss at epoch {epoch}, step {run.step}"
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        run.optimizer.step()
        running += float(loss.detach()) * len(x)
        seen += len(x)
        run.step += 1
        if run.out_of_time:  # a partial epoch still counts: it is evaluated like any other
            break
    return running / seen, ""


def _fit_early_stopping(
    params: Params,
    data: Dataset,
    fold: ScaledFold,
    device: str | torch.device,
    init: Initial,
    on_epoch: Callable[[EpochRecord], None] | None,
    at_epoch: Callable[[int, Outputs], None] | None = None,
) -> tuple[nn.Module, TrainLog, float, np.ndarray]:
    """Train on ``fold.train``, judge every epoch on ``fold.val``, keep the best weights.
    Returns the model (on CPU), the log, the best validation loss and the return scale.
    ``at_epoch`` sees, after each epoch, the validation outputs of the best epoch so far: what
    the trial would report if it ended there (a rung's judge may stop the trial)."""
    cfg = params.train
    run = _Run(params, data, fold, device, cfg.epochs, init)
    best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
    best_outputs: Outputs | None = None
    curve: list[EpochRecord] = []
    reason, started = "", time.perf_counter()
    with torch_threads(cfg.threads or default_threads()):
        for epoch in range(1, cfg.epochs + 1):
            train_loss, reason = _train_epoch(run, epoch)
            if reason:
                break
            outputs = loss_and_predictions(run.model, run.arrays, run.arrays.val_ends)
            val_loss, predicted, truth, _ = outputs
            if not math.isfinite(val_loss):
                reason = f"non-finite validation loss at epoch {epoch}"
                break
            record = EpochRecord(
                epoch, train_loss, val_loss, float((predicted == truth).mean()), run.lr
            )
            curve.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if val_loss < best_loss - 1e-6:
                best_loss, best_epoch, stale, best_outputs = val_loss, epoch, 0, outputs
                best_state = copy.deepcopy(run.model.state_dict())
            else:
                stale += 1
                if cfg.schedule == "plateau" and stale % max(1, cfg.patience // 2) == 0:
                    run.plateau *= 0.5
            if at_epoch is not None and best_outputs is not None:
                at_epoch(epoch, best_outputs)  # what the trial would report if it ended here
            if stale >= cfg.patience:
                break
            if run.out_of_time:
                break
    if best_state is not None:
        run.model.load_state_dict(best_state)
    stopped = _why_stopped(cfg, len(curve), best_epoch, run.out_of_time, reason)
    if not reason and best_state is None:
        reason = "no finite validation loss"
    seconds = time.perf_counter() - started
    log = TrainLog(tuple(curve), len(curve), best_epoch, seconds, stopped, reason)
    return run.model.to("cpu").eval(), log, best_loss, run.arrays.ret_scale


def _why_stopped(
    cfg: TrainConfig, epochs: int, best_epoch: int, timed_out: bool, reason: str
) -> str:
    if reason:
        return f"diverged: {reason}"
    if timed_out and epochs < cfg.epochs:
        return (
            f"time limit: max_seconds = {cfg.max_seconds:g} reached in epoch {epochs}; "
            f"scored on the best epoch, {best_epoch}"
        )
    if 0 < epochs < cfg.epochs:
        return f"early stopping: no better validation log loss for {cfg.patience} epochs after epoch {best_epoch}"
    return f"ran all {cfg.epochs} epochs"


def _fit_fixed(
    params: Params,
    data: Dataset,
    fold: ScaledFold,
    epochs: int,
    device: str | torch.device,
    init: Initial,
    criterion: Criterion | None = None,
) -> tuple[nn.Module, TrainLog, np.ndarray]:
    """Train exactly ``epochs`` epochs on ``fold.train`` without looking at ``fold.val``: in
    the final refit that part is the test part and must not steer training."""
    run = _Run(params, data, fold, device, epochs, init, criterion)
    curve: list[EpochRecord] = []
    reason, started = "", time.perf_counter()
    with torch_threads(params.train.threads or default_threads()):
        for epoch in range(1, epochs + 1):
            train_loss, reason = _train_epoch(run, epoch)
            if reason:
                break
            curve.append(EpochRecord(epoch, train_loss, math.nan, math.nan, run.lr))
    seconds = time.perf_counter() - started
    log = TrainLog(
        tuple(curve), len(curve), len(curve), seconds, f"ran all {epochs} epochs", reason
    )
    return run.model.to("cpu").eval(), log, run.arrays.ret_scale


def _diverged(data: Dataset, fold: ScaledFold, log: TrainLog) -> Metrics:
    direction = data.direction[fold.val.start : fold.val.stop]
    scores = Scores(0.0, math.inf, baseline(direction), (), 0.0, len(fold.val))
    return Metrics(scores, log)


def train(
    params: Params,
    data: Dataset,
    *,
    fold: int = 0,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    init: Initial | None = None,
    confident_share: float = 0.3,
    rungs: Rungs | None = None,
) -> Fit:
    """Train on one fold with early stopping; the best model comes back on CPU. With
    ``rungs``, the first fold's rung epochs are judged (see :class:`Rungs`)."""
    sfold = data.folds[fold]
    at_epoch = None
    if rungs is not None and fold == 0:
        judge, epochs = rungs.judge, rungs.epochs

        def at_epoch(epoch: int, outputs: Outputs) -> None:
            if epoch in epochs:
                scores = score(data, sfold.val, outputs, fee=fee, confident_share=confident_share)
                judge(f"fold0/epoch{epoch}", scores)

    model, log, best_loss, ret_scale = _fit_early_stopping(
        params, data, sfold, device, init or initialize(params), on_epoch, at_epoch
    )
    if log.reason:
        return Fit(model, _diverged(data, sfold, log), ret_scale)
    # The kept weights' validation loss is the one measured in the loop, on the training device.
    scores = evaluate(model, data, sfold, sfold.val, fee=fee, confident_share=confident_share)
    scores = replace(scores, loss=best_loss)
    return Fit(model, Metrics(scores, log), ret_scale)


def train_and_evaluate(
    params: Params,
    data: Dataset,
    *,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    init: Initial | None = None,
    confident_share: float = 0.3,
    rungs: Rungs | None = None,
) -> Metrics:
    """Train on every fold of ``data`` from the same initial weights and average the
    validation scores over folds.

    Never raises for a diverging configuration: NaN/inf loss ends training and comes back as
    ``status == "diverged"`` with the reason, so a search worker keeps going. Raises
    :class:`Stopped` when a judge of ``rungs`` stops the trial.
    """
    init = init or initialize(params)
    results: list[Metrics] = []
    for k in range(len(data.folds)):
        if results and rungs is not None:  # the mean over the folds so far is a rung too
            rungs.judge(f"fold{k - 1}", Scores.mean([m.val for m in results]))
        fit = train(
            params,
            data,
            fold=k,
            device=device,
            fee=fee,
            on_epoch=on_epoch,
            init=init,
            confident_share=confident_share,
            rungs=rungs,
        )
        results.append(fit.metrics)
        if fit.metrics.status != "ok":
            return fit.metrics
    if len(results) == 1:
        return results[0]
    logs = [m.log for m in results]
    log = TrainLog(
        curve=logs[-1].curve,
        epochs_run=max(g.epochs_run for g in logs),
        best_epoch=round(float(np.mean([g.best_epoch for g in logs]))),
        seconds=sum(g.seconds for g in logs),
        stopped="; ".join(f"fold {k}: {g.stopped}" for k, g in enumerate(logs)),
    )
    return Metrics(Scores.mean([m.val for m in results]), log)


def fit_final(
    params: Params,
    data: Dataset,
    epochs: int,
    *,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    confident_share: float = 0.3,
    criterion: Criterion | None = None,
) -> FinalFit:
    """Refit on all development rows (train + validation) for ``epochs`` epochs (the count
    early stopping chose), then evaluate once on the untouched test part. ``criterion``
    replaces the plain loss (a distilled student's; it sees development windows only).

    Only the final model (export, distill) should ever call this: a search that looks at the
    test part is no longer honest.
    """
    fold, _ = data.final()
    # The epoch count is fixed here; a search's time limit would cut every epoch to one step.
    params = replace(params, train=replace(params.train, max_seconds=None))
    model, log, ret_scale = _fit_fixed(
        params, data, fold, max(1, epochs), device, initialize(params), criterion
    )
    if log.reason:
        return FinalFit(model, _diverged(data, fold, log).val, log, ret_scale, fold)
    test = evaluate(model, data, fold, fold.val, fee=fee, confident_share=confident_share)
    return FinalFit(model, test, log, ret_scale, fold)
