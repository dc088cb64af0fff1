"""What a trial trains: the model config and the training settings, with their dict round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from xtune.errors import SpecError
from xtune.models.factory import ModelConfig, model_config_from_dict
from xtune.models.loss import LossConfig


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
    max_seconds: float | None = None  # stop training a fold here; scored on its best epoch
    seed: int = 0
    loss: LossConfig = field(default_factory=LossConfig)
    threads: int | None = None  # CPU threads; None: default_threads()
    compile: bool = False  # torch.compile (CUDA)
    bf16: bool = True  # bf16 autocast on CUDA

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise SpecError(f"epochs, batch_size and patience must be >= 1, got {self}.")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise SpecError(
                f"max_seconds must be > 0 (or None for no limit), got {self.max_seconds}."
            )
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Params:
        """Inverse of :meth:`to_dict`."""
        t = dict(d["train"])
        t["loss"] = LossConfig(**t["loss"])
        return cls(model_config_from_dict(d["model"]), TrainConfig(**t))
