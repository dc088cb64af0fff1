"""``evaluate(model, data, fold, ends) -> Scores``: how one model does on one part.

The same function scores validation during the search and the untouched test part at export,
so the two figures are computed the same way; only their names (``Metrics.val``,
``FinalFit.test``) say which part they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from xtune.features.dataset import Dataset, ScaledFold
from xtune.models.loss import LossConfig, direction_loss
from xtune.runtime.trading import bars_per_year, calmar, max_drawdown, rule_pnl, sharpe

# Figures a walk-forward mean averages fold by fold.
AVERAGED = ("balanced_accuracy", "confident_accuracy", "coverage", "max_drawdown", "calmar")


@dataclass(frozen=True)
class Scores:
    """One model on one part (validation or test), averaged over horizons.

    ``loss`` is the plain cross-entropy (log loss) of the direction heads, comparable across
    trials whatever their loss settings; ``baseline`` is the share of the most common class in
    the part's labels: the accuracy of always guessing it. ``balanced_accuracy`` is the mean
    recall over classes (0.5 for any constant guess with 2 classes). ``confident_accuracy`` is
    the accuracy on the ``coverage`` share of windows where the model is most sure (first
    horizon). ``sharpe``, ``max_drawdown`` (a fraction) and ``calmar`` describe trading the
    first horizon's predicted direction, long or short, after fees; ``bars_per_year`` is the
    data set's (:func:`~xtune.runtime.trading.bars_per_year`) that annualized them, and the
    one the deflated Sharpe divides back out (0.0: not recorded, in a trial stored without it).
    """

    accuracy: float
    loss: float
    baseline: float
    per_horizon: tuple[float, ...]
    sharpe: float
    samples: int
    balanced_accuracy: float = 0.0
    confident_accuracy: float = 0.0
    coverage: float = 0.0
    max_drawdown: float = 0.0
    calmar: float = 0.0
    bars_per_year: float = 0.0

    @property
    def edge(self) -> float:
        """Accuracy above always guessing the majority class."""
        return self.accuracy - self.baseline

    def values(self, objectives: Sequence[str]) -> tuple[float, ...]:
        """The figures ``objectives`` name (fields, or ``edge``), in their order: a trial's
        objective values.

        Example::

            scores.values(("accuracy", "loss"))  # (0.54, 0.69)
        """
        return tuple(float(getattr(self, name)) for name in objectives)

    def to_dict(self) -> dict[str, float | int | list[float]]:
        """Every field by name, ``per_horizon`` as a list, and ``edge``."""
        out: dict[str, float | int | list[float]] = {
            f.name: getattr(self, f.name) for f in fields(self)
        }
        return out | {"per_horizon": list(self.per_horizon), "edge": self.edge}

    @classmethod
    def mean(cls, parts: list[Scores]) -> Scores:
        """Walk-forward folds: the mean of each figure, the total sample count."""
        avg = lambda values: float(np.mean(values))  # noqa: E731
        return cls(
            accuracy=avg([s.accuracy for s in parts]),
            loss=avg([s.loss for s in parts]),
            baseline=avg([s.baseline for s in parts]),
            per_horizon=tuple(float(v) for v in np.mean([s.per_horizon for s in parts], axis=0)),
            sharpe=avg([s.sharpe for s in parts]),
            samples=sum(s.samples for s in parts),
            bars_per_year=parts[0].bars_per_year,  # one data set: the same on every fold
            **{k: avg([getattr(s, k) for s in parts]) for k in AVERAGED},
        )


class FoldArrays:
    """One fold's arrays on a device, with batch gathering by index (no DataLoader, no
    per-batch host-to-device copy)."""

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


@torch.no_grad()
def loss_and_predictions(
    model: nn.Module, arrays: FoldArrays, ends: torch.Tensor, batch: int = 4096
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Log loss, predicted classes [N, H], true classes [N, H] and the predicted class's
    probability [N, H] on the windows ``ends``."""
    model.eval()
    losses, preds, sure = 0.0, [], []
    for k in range(0, len(ends), batch):
        x, y, _ = arrays.batch(ends[k : k + batch])
        logits, _ = model(x)  # [B, H, C]
        losses += float(direction_loss(logits, y, LossConfig())) * len(x)
        best = logits.float().softmax(-1).max(-1)
        preds.append(best.indices)
        sure.append(best.values)
    model.train()
    predicted = torch.cat(preds).cpu().numpy()  # [N, H]
    confidence = torch.cat(sure).cpu().numpy()  # [N, H]
    return losses / len(ends), predicted, arrays.direction[ends].cpu().numpy(), confidence


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean recall over the classes present, averaged over horizons ([N, H] arrays)."""
    per_horizon = [
        np.mean([(p[t == c] == c).mean() for c in np.unique(t)])
        for p, t in zip(predicted.T, truth.T, strict=True)
    ]
    return float(np.mean(per_horizon))


def confident_accuracy(
    predicted: np.ndarray, truth: np.ndarray, confidence: np.ndarray, share: float
) -> tuple[float, float]:
    """Accuracy on the ``share`` most confident windows ([N] arrays), and the share of windows
    that is (ties at the threshold are all in)."""
    threshold = np.quantile(confidence, 1.0 - share)
    chosen = confidence >= threshold
    return float((predicted[chosen] == truth[chosen]).mean()), float(chosen.mean())


def baseline(direction: np.ndarray) -> float:
    """Majority-class share per horizon, averaged: the accuracy of always guessing it."""
    return float(np.mean([np.bincount(col).max() / len(col) for col in direction.T]))


Outputs = tuple[float, np.ndarray, np.ndarray, np.ndarray]  # what loss_and_predictions returns


def evaluate(
    model: nn.Module,
    data: Dataset,
    fold: ScaledFold,
    ends: range,
    *,
    fee: float = 0.0,
    confident_share: float = 0.3,
) -> Scores:
    """Score ``model`` (on CPU) on the windows ending at ``ends`` of ``fold``'s scaled array."""
    arrays = FoldArrays(data, fold, torch.device("cpu"))
    outputs = loss_and_predictions(model, arrays, torch.arange(ends.start, ends.stop))
    return score(data, ends, outputs, fee=fee, confident_share=confident_share)


def score(
    data: Dataset, ends: range, outputs: Outputs, *, fee: float, confident_share: float
) -> Scores:
    """Scores from a model's outputs on the windows ending at ``ends`` (no second forward
    pass: the training loop scores its rungs from the outputs it already has)."""
    loss, predicted, truth, confidence = outputs
    accuracy = (predicted == truth).mean(axis=0)  # [H]
    h, per_year = data.spec.labels.horizons[0], bars_per_year(data.times)
    returns = data.returns[ends.start : ends.stop, 0].astype(np.float64)
    pnl = rule_pnl(predicted[:, 0], returns, h, data.spec.labels.classes, fee)
    sure, coverage = confident_accuracy(
        predicted[:, 0], truth[:, 0], confidence[:, 0], confident_share
    )
    return Scores(
        accuracy=float(accuracy.mean()),
        loss=loss,
        baseline=baseline(truth),
        per_horizon=tuple(float(a) for a in accuracy),
        sharpe=sharpe(pnl, h, per_year),
        samples=len(ends),
        balanced_accuracy=balanced_accuracy(predicted, truth),
        confident_accuracy=sure,
        coverage=coverage,
        max_drawdown=max_drawdown(pnl),
        calmar=calmar(pnl, per_year),
        bars_per_year=per_year,
    )
