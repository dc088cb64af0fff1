"""What training returns: the learning curve, why it stopped, and the scores it earned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from xtune.features.dataset import ScaledFold
from xtune.models._evaluate import Scores


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float  # NaN in a fixed-epoch refit: nothing is evaluated during it
    val_accuracy: float
    lr: float


@dataclass(frozen=True)
class TrainLog:
    """How training went: the curve, the epoch whose weights were kept, and why it ended.

    A non-empty ``reason`` means training diverged (non-finite loss); the model is then
    unusable and the scores are placeholders.
    """

    curve: tuple[EpochRecord, ...]
    epochs_run: int
    best_epoch: int
    seconds: float
    stopped: str
    reason: str = ""

    @property
    def status(self) -> Literal["ok", "diverged"]:
        return "diverged" if self.reason else "ok"


@dataclass(frozen=True)
class Metrics:
    """A trial's result: validation scores (averaged over walk-forward folds) and its log."""

    val: Scores
    log: TrainLog

    @property
    def status(self) -> Literal["ok", "diverged"]:
        return self.log.status


@dataclass(frozen=True)
class Fit:
    """One trained model (best weights, on CPU), its validation metrics and its return scale."""

    model: nn.Module
    metrics: Metrics
    ret_scale: np.ndarray


@dataclass(frozen=True)
class FinalFit:
    """The refit on train + validation, scored once on the untouched test part."""

    model: nn.Module
    test: Scores
    log: TrainLog
    ret_scale: np.ndarray
    fold: ScaledFold


@dataclass(frozen=True)
class Rungs:
    """Where a trial reports its validation scores while it trains, to be judged: after the
    listed ``epochs`` of its first walk-forward fold (scored on that fold's validation part
    with the best weights so far, as the trial would report if it ended there; the epoch's
    own weights ranked trials past their best below their final standing), and after every
    fold but the last (the mean over the folds so far). ``judge(rung, scores)`` returns to go on or raises :class:`Stopped`."""

    epochs: frozenset[int]
    judge: Callable[[str, Scores], None]
