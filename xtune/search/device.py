"""The device a worker trains on, checked before its first trial and recorded on every trial.

``--device cuda`` with a torch that has no usable GPU (a CPU wheel installed by mistake on the
GPU PC) is refused with the install line that fixes it, instead of training on the CPU without
a word. A worker runs one forward and backward pass of each model family in the chosen
precision at start; bf16 autocast of ``nn.LSTM`` fails on some GPU and cuDNN combinations
(cuDNN RNNs take bf16 only since cuDNN 9.13), so a failure there falls back to fp32 with a
warning, once, instead of failing every trial the same way mid-search.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from xtune.errors import DeviceError

CUDA_INSTALL = (
    "pip install torch --index-url https://download.pytorch.org/whl/cu128 "
    "(use the CUDA tag pytorch.org lists for your driver)"
)


@dataclass(frozen=True)
class DeviceRecord:
    """Where a trial actually ran."""

    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32" or "bf16" (autocast)
    torch: str  # torch version, with its CUDA build ("2.13.0+cpu", "2.13.0 cuda 12.8")
    gpu: str = ""  # the GPU's name; empty on the CPU
    gpu_index: int | None = None  # the GPU as nvidia-smi numbers it


def _torch_build() -> str:
    import torch

    cuda = torch.version.cuda
    return f"{torch.__version__}" + (f" cuda {cuda}" if cuda else "")


def require_device(device: str) -> None:
    """Refuse a CUDA device this torch cannot use, before any study or worker starts.

    Raises:
        DeviceError: naming the torch build and the install line that fixes it.
    """
    if not device.startswith("cuda"):
        if device != "cpu":
            raise DeviceError(f"--device {device!r}: use cpu, cuda or cuda:K.")
        return
    import torch

    if not torch.cuda.is_available():
        why = (
            "is a CPU-only build"
            if torch.version.cuda is None
            else f"was built for CUDA {torch.version.cuda} but finds no GPU (check the driver)"
        )
        raise DeviceError(
            f"--device {device}: this torch ({_torch_build()}) {why}. Install the CUDA build: "
            f"{CUDA_INSTALL}; or search with --device cpu."
        )
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise DeviceError(
            f"--device {device}: there are {torch.cuda.device_count()} GPU(s), numbered from 0."
        )


def one_step(device: str, bf16: bool) -> None:
    """A forward and backward pass of a tiny LSTM and xLSTM (sLSTM and mLSTM blocks)."""
    import torch

    from xtune.models import LSTMConfig, XLSTMConfig, build_model

    kind = torch.device(device).type
    for config in (
        LSTMConfig(n_features=4, hidden=8, layers=2),
        XLSTMConfig(n_features=4, embed=8, heads=2, blocks=2, slstm_at=(1,)),
    ):
        model = build_model(config).to(device)
        x = torch.randn(2, 8, 4, device=device)  # [B, L, F]
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16):
            logits, ret = model(x)
        (logits.float().sum() + ret.float().sum()).backward()


def check_device(
    device: str, bf16: bool, step: Callable[[str, bool], None] = one_step
) -> DeviceRecord:
    """Check that ``device`` trains both families, in bf16 where asked for and possible.

    bf16 autocast applies on CUDA only; on the CPU training runs in fp32.

    Raises:
        DeviceError: the device cannot train even in fp32.
    """
    import torch

    precision = "bf16" if bf16 and device.startswith("cuda") else "fp32"
    if precision == "bf16":
        try:
            step(device, True)
        except Exception as exc:  # cuDNN raises plain RuntimeErrors
            logging.getLogger("xtune").warning(
                "%s: bf16 autocast fails here (%s: %s); training in fp32 instead.",
                device,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            precision = "fp32"
    if precision == "fp32":
        try:
            step(device, False)
        except Exception as exc:
            raise DeviceError(
                f"{device}: a training step fails even in fp32 ({type(exc).__name__}: {exc})."
            ) from None
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(torch.device(device)) if cuda else ""
    index = physical_index(device) if cuda else None
    return DeviceRecord(device, precision, _torch_build(), gpu, index)


def physical_index(device: str) -> int | None:
    """The GPU ``device`` is, as NVML and ``nvidia-smi`` number it (None on the CPU, or for a
    GPU that ``CUDA_VISIBLE_DEVICES`` names by UUID)."""
    if not device.startswith("cuda"):
        return None
    ordinal = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return ordinal
    idents = [p.strip() for p in visible.split(",")]
    ident = idents[ordinal] if ordinal < len(idents) else ""
    return int(ident) if ident.isdigit() else None
