"""The device a worker trains on: refused when unusable, checked once, recorded per trial."""

from __future__ import annotations

import logging

import pytest
import torch

from xtune.search.device import DeviceError, check_device, one_step, require_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_with_the_install_line() -> None:
    with pytest.raises(DeviceError, match=r"pip install torch --index-url .*/whl/cu"):
        require_device("cuda")
    with pytest.raises(DeviceError, match="--device cpu"):
        require_device("cuda:0")


def test_an_unknown_device_is_refused() -> None:
    with pytest.raises(DeviceError, match="use cpu, cuda or cuda:K"):
        require_device("tpu")
    require_device("cpu")


def test_the_cpu_passes_the_start_check_in_fp32() -> None:
    record = check_device("cpu", bf16=True)  # bf16 autocast is for CUDA only
    assert (record.device, record.precision, record.gpu) == ("cpu", "fp32", "")
    assert record.torch.startswith(torch.__version__.split("+")[0])


def test_a_failing_bf16_step_falls_back_to_fp32_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tried: list[bool] = []

    def step(device: str, bf16: bool) -> None:  # cuDNN without bf16 RNNs fails like this
        tried.append(bf16)
        if bf16:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED")
        one_step("cpu", False)

    with caplog.at_level(logging.WARNING, logger="xtune"):
        record = check_device("cuda:0", bf16=True, step=step)
    assert tried == [True, False] and record.precision == "fp32"
    assert "bf16 autocast fails here" in caplog.text and "CUDNN_STATUS_NOT_SUPPORTED" in caplog.text


def test_a_device_that_cannot_train_at_all_is_one_clear_error() -> None:
    def step(device: str, bf16: bool) -> None:
        raise RuntimeError("no kernel image is available for execution on the device")

    with pytest.raises(DeviceError, match="fails even in fp32"):
        check_device("cuda:0", bf16=False, step=step)
