"""Model shapes for every head layout, configs, resource probes, ONNX parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from xtune.errors import SpecError
from xtune.models import (
    HeadConfig,
    LossConfig,
    LSTMConfig,
    XLSTMConfig,
    build_model,
    count_params,
    cpu_latency_ms,
    export_onnx,
    onnx_parity,
)
from xtune.models.loss import total_loss

FAMILIES = {
    "lstm": lambda f, head: LSTMConfig(n_features=f, hidden=16, layers=2, head=head),
    "xlstm": lambda f, head: XLSTMConfig(
        n_features=f, embed=16, heads=2, blocks=3, slstm_at=(1,), head=head
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("horizons, classes", [(1, 2), (3, 2), (1, 3), (2, 3)])
def test_output_shapes_for_every_head_layout(family: str, horizons: int, classes: int) -> None:
    model = build_model(FAMILIES[family](7, HeadConfig(horizons, classes)))
    logits, ret = model(torch.randn(5, 24, 7))
    assert logits.shape == (5, horizons, classes)
    assert ret.shape == (5, horizons)


def test_lstm_parameter_count_by_hand() -> None:
    f, h = 7, 16
    model = build_model(LSTMConfig(n_features=f, hidden=h, layers=2, layernorm=False))
    lstm = 4 * h * (f + h) + 8 * h + 4 * h * (h + h) + 8 * h
    heads = (h * 2 + 2) + (h * 1 + 1)
    assert count_params(model) == lstm + heads


def test_xlstm_block_layout_follows_slstm_at() -> None:
    model = build_model(XLSTMConfig(n_features=4, embed=16, heads=2, blocks=4, slstm_at=(0, 2)))
    kinds = [type(b).__name__ for b in model.blocks]  # type: ignore[union-attr]
    assert kinds == ["SLSTMBlock", "MLSTMBlock", "SLSTMBlock", "MLSTMBlock"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LSTMConfig(n_features=0), ">= 1"),
        (lambda: LSTMConfig(n_features=3, dropout=1.0), "dropout"),
        (lambda: XLSTMConfig(n_features=3, embed=30, heads=4), "divisible"),
        (lambda: XLSTMConfig(n_features=3, blocks=2, slstm_at=(2,)), "slstm_at"),
        (lambda: HeadConfig(classes=5), "classes 2 or 3"),
        (lambda: LossConfig(label_smoothing=0.7), "label_smoothing"),
    ],
)
def test_bad_configs_are_refused(make: object, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        make()  # type: ignore[operator]


def test_latency_probe_runs_one_thread_and_restores_the_setting() -> None:
    model = build_model(FAMILIES["lstm"](5, HeadConfig()))
    before = torch.get_num_threads()
    ms = cpu_latency_ms(model, 30, 5, repeats=5)
    assert 0 < ms < 1000
    assert torch.get_num_threads() == before


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_tiny_batch_is_overfit(family: str) -> None:
    """Gradient flow check: 32 windows with random labels are memorized (loss falls by 90%)."""
    torch.manual_seed(0)
    model = build_model(FAMILIES[family](6, HeadConfig(2, 2)))
    x = torch.randn(32, 20, 6)
    y = torch.randint(0, 2, (32, 2))
    r = torch.randn(32, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    config = LossConfig(return_weight=0.5)
    first = None
    for _ in range(300):
        logits, ret = model(x)
        loss = total_loss(logits, ret, y, r, config)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1 * first


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_parity_and_input_shape(family: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    window, features = 60, 7
    model = build_model(FAMILIES[family](features, HeadConfig(2, 3)))
    path = export_onnx(model, window, features, tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", window, features]
    assert [o.name for o in graph.output] == ["logits", "returns"]
    x = np.random.default_rng(0).standard_normal((5, window, features)).astype(np.float32)
    assert onnx_parity(model, path, x) < 1e-4
    assert onnx_parity(model, path, x[:1]) < 1e-4  # batch 1, as the live bot runs it


@pytest.mark.slow
def test_xlstm_export_does_not_unroll_the_window(tmp_path: Path) -> None:
    """The sLSTM recurrence exports as one Scan node: the graph has (almost) the same node
    count at window 20 and at window 500 (unrolling would add ~500 nodes per step), and the
    file stays small."""
    torch.manual_seed(0)
    model = build_model(XLSTMConfig(n_features=5, embed=16, heads=2, blocks=2, slstm_at=(1,)))
    short = onnx.load(str(export_onnx(model, 20, 5, tmp_path / "short.onnx")))
    long_path = export_onnx(model, 500, 5, tmp_path / "long.onnx")
    long = onnx.load(str(long_path))
    assert "Scan" in {n.op_type for n in long.graph.node}
    assert len(long.graph.node) <= len(short.graph.node) + 10
    assert long_path.stat().st_size < 1_000_000
    x = np.random.default_rng(1).standard_normal((2, 500, 5)).astype(np.float32)
    assert onnx_parity(model, long_path, x) < 1e-4
