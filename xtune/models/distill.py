"""Knowledge distillation: a smaller student learns from a refit teacher's soft labels.

Hinton et al. 2015 (arXiv 1503.02531): the student matches the teacher's class probabilities
softened by a temperature ``T`` as well as the true labels::

    loss = w * T^2 * KL(teacher_T || student_T) + (1 - w) * hard + return_weight * returns

``T^2`` keeps the soft term's gradients on the scale of the hard term's whatever ``T`` is (the
softened gradients shrink as 1/T^2). The hard term and the return head's loss are exactly what
plain training uses (:func:`~xtune.models.loss.total_loss`), so ``w = 0`` trains the student the
plain way, which is what the benchmark compares against.

Soft labels come from the teacher's refit on train + validation, on those windows only: the
student trains on the same fold (:meth:`~xtune.features.dataset.Dataset.final`), and a window
without a soft label (a test window) is refused rather than looked up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xtune.errors import SpecError
from xtune.features.dataset import Dataset, ScaledFold
from xtune.models._evaluate import FoldArrays
from xtune.models._train import fit_final
from xtune.models.loss import LossConfig, direction_loss, return_loss
from xtune.models.params import Params
from xtune.models.results import FinalFit


@dataclass(frozen=True)
class DistillConfig:
    """``temperature`` softens both models' probabilities; ``weight`` is the soft term's share
    of the direction loss (0: hard labels only, the plain way; 1: soft labels only)."""

    temperature: float = 2.0
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, int | float) and 0 < self.temperature < 1e3):
            raise SpecError(f"temperature must be a number in (0, 1000), got {self.temperature!r}.")
        if not (isinstance(self.weight, int | float) and 0 <= self.weight <= 1):
            raise SpecError(f"weight must be a number in [0, 1], got {self.weight!r}.")


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(teacher_T || student_T)``, the mean over samples and horizons.
    logits, teacher_logits [B, H, C]."""
    t = temperature
    student = F.log_softmax(logits.float() / t, dim=-1)  # [B, H, C]
    teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)  # [B, H, C]
    kl = (teacher.exp() * (teacher - student)).sum(-1)  # [B, H]
    return t * t * kl.mean()


def student_loss(
    logits: torch.Tensor,
    ret_pred: torch.Tensor,
    teacher_logits: torch.Tensor,
    direction: torch.Tensor,
    ret_target: torch.Tensor,
    loss: LossConfig,
    distill: DistillConfig,
) -> torch.Tensor:
    """The student's loss (module docstring); ``loss`` is the trial's own loss settings."""
    w = distill.weight
    out = (1.0 - w) * direction_loss(logits, direction, loss)
    if w > 0:
        out = out + w * distillation_loss(logits, teacher_logits, distill.temperature)
    if loss.return_weight > 0:
        out = out + loss.return_weight * return_loss(ret_pred, ret_target, loss)
    return out


@dataclass(frozen=True)
class SoftLabels:
    """The teacher's logits on the windows ending at ``ends`` (its training rows)."""

    ends: range  # window end rows, step 1
    logits: np.ndarray  # [len(ends), H, C] float32


@torch.no_grad()
def soft_labels(
    teacher: nn.Module, data: Dataset, fold: ScaledFold, batch: int = 4096
) -> SoftLabels:
    """The teacher's logits on ``fold.train``: in the final fold (``data.final()``), the train
    and validation windows of the search, never the test part (``fold.val``)."""
    arrays = FoldArrays(data, fold, torch.device("cpu"))
    teacher = teacher.to("cpu").eval()
    ends = arrays.train_ends  # [N]
    parts = [teacher(arrays.batch(ends[k : k + batch])[0])[0] for k in range(0, len(ends), batch)]
    return SoftLabels(fold.train, torch.cat(parts).float().numpy())  # [N, H, C]


class SoftCriterion:
    """The student's training loss for :func:`~xtune.models._train.fit_final`: each window's
    soft label is looked up by its end row; a window outside ``soft.ends`` has none and is
    refused, so a test window can never be trained on by mistake."""

    def __init__(
        self, soft: SoftLabels, loss: LossConfig, distill: DistillConfig, device: torch.device
    ) -> None:
        self.table = torch.from_numpy(soft.logits).to(device)  # [N, H, C]
        self.start, self.stop = soft.ends.start, soft.ends.stop
        self.loss, self.distill = loss, distill

    def __call__(
        self,
        logits: torch.Tensor,
        ret_pred: torch.Tensor,
        direction: torch.Tensor,
        ret_target: torch.Tensor,
        ends: torch.Tensor,
    ) -> torch.Tensor:
        if bool(((ends < self.start) | (ends >= self.stop)).any()):
            raise SpecError(
                f"a training window ends outside the teacher's rows {self.start}..{self.stop - 1}; "
                "soft labels exist for train + validation windows only."
            )
        teacher = self.table[ends - self.start]  # [B, H, C]
        return student_loss(
            logits, ret_pred, teacher, direction, ret_target, self.loss, self.distill
        )


def fit_student(
    params: Params,
    data: Dataset,
    soft: SoftLabels,
    epochs: int,
    distill: DistillConfig,
    *,
    device: str | torch.device = "cpu",
    fee: float = 0.0,
    confident_share: float = 0.3,
) -> FinalFit:
    """Train the student ``params`` on the final fold's development windows with the teacher's
    ``soft`` labels for ``epochs`` epochs, then score it once on the untouched test part."""
    fold, _ = data.final()
    if fold.train != soft.ends:
        raise SpecError(
            f"the soft labels cover rows {soft.ends.start}..{soft.ends.stop - 1}, the student "
            f"trains on {fold.train.start}..{fold.train.stop - 1}: not the same teacher refit."
        )
    criterion = SoftCriterion(soft, params.train.loss, distill, torch.device(device))
    return fit_final(
        params,
        data,
        epochs,
        device=device,
        fee=fee,
        confident_share=confident_share,
        criterion=criterion,
    )
