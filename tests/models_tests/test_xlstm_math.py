"""The xLSTM cells against the paper: mLSTM parallel form == recurrent form, and the sLSTM
layer == a direct transcription of the paper's equations (no stabilizer, full matrices)."""

from __future__ import annotations

import pytest
import torch

from xtune.models.mlstm import MLSTMConfig, MLSTMLayer, mlstm_parallel, mlstm_recurrent
from xtune.models.slstm import SLSTMConfig, SLSTMLayer


@pytest.mark.parametrize("gate_scale", [0.5, 3.0, 10.0])
def test_mlstm_parallel_equals_recurrent_in_float64(gate_scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    b, nh, t, dh = 2, 3, 64, 8
    q, k, v = (torch.randn(b, nh, t, dh, generator=g, dtype=torch.float64) for _ in range(3))
    i_pre = torch.randn(b, nh, t, generator=g, dtype=torch.float64) * gate_scale
    f_pre = torch.randn(b, nh, t, generator=g, dtype=torch.float64) * gate_scale
    diff = (
        (mlstm_parallel(q, k, v, i_pre, f_pre) - mlstm_recurrent(q, k, v, i_pre, f_pre)).abs().max()
    )
    assert diff < 1e-8


def test_mlstm_recurrent_is_the_papers_matrix_memory() -> None:
    """Unstabilized: C_t = f C + i v k^T, n_t = f n + i k, h = C q / max(|n.q|, 1)."""
    g = torch.Generator().manual_seed(1)
    t, dh = 12, 4
    q, k, v = (torch.randn(1, 1, t, dh, generator=g, dtype=torch.float64) for _ in range(3))
    i_pre = torch.randn(1, 1, t, generator=g, dtype=torch.float64)
    f_pre = torch.randn(1, 1, t, generator=g, dtype=torch.float64)
    c, n, outs = torch.zeros(dh, dh, dtype=torch.float64), torch.zeros(dh, dtype=torch.float64), []
    for s in range(t):
        i, f = torch.exp(i_pre[0, 0, s]), torch.sigmoid(f_pre[0, 0, s])
        ks = k[0, 0, s] / dh**0.5
        c = f * c + i * torch.outer(v[0, 0, s], ks)
        n = f * n + i * ks
        outs.append(c @ q[0, 0, s] / torch.clamp((n @ q[0, 0, s]).abs(), min=1.0))
    paper = torch.stack(outs)
    ours = mlstm_recurrent(q, k, v, i_pre, f_pre)[0, 0]
    assert (paper - ours).abs().max() < 1e-5  # the eps in our denominator is the only change


def _paper_slstm(layer: SLSTMLayer, x: torch.Tensor) -> torch.Tensor:
    """sLSTM as written in the paper (eqs. 8-14), with full matrices and no stabilizer."""
    cfg = layer.config
    d, nh = cfg.embed, cfg.heads
    w_i, w_f = layer.w_if.weight[:d], layer.w_if.weight[d:]
    b_i, b_f = layer.w_if.bias[:d], layer.w_if.bias[d:]
    w_z, w_o = layer.w_zo.weight[:d], layer.w_zo.weight[d:]
    b_z, b_o = layer.w_zo.bias[:d], layer.w_zo.bias[d:]
    # block-diagonal recurrent matrices: head j only mixes its own DH units
    big = [torch.block_diag(*[layer.r[gate, j].T for j in range(nh)]) for gate in range(4)]
    r_i, r_f, r_z, r_o = big
    h = c = n = torch.zeros(x.shape[0], d, dtype=x.dtype)
    hs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = torch.tanh(xt @ w_z.T + h @ r_z.T + b_z)
        i = torch.exp(xt @ w_i.T + h @ r_i.T + b_i)
        f = torch.sigmoid(xt @ w_f.T + h @ r_f.T + b_f)
        o = torch.sigmoid(xt @ w_o.T + h @ r_o.T + b_o)
        c = f * c + i * z
        n = f * n + i
        h = o * (c / n)
        hs.append(h)
    return layer.norm(torch.stack(hs, dim=1))


def test_slstm_layer_matches_the_papers_equations() -> None:
    torch.manual_seed(0)
    layer = SLSTMLayer(SLSTMConfig(embed=16, heads=4, conv_kernel=0)).double().eval()
    with torch.no_grad():  # random recurrent weights, so memory mixing is really exercised
        layer.r.normal_(0, 0.3)
        layer.w_if.bias.normal_(0, 0.5)
    x = torch.randn(3, 40, 16, dtype=torch.float64)
    with torch.no_grad():
        assert (layer(x) - _paper_slstm(layer, x)).abs().max() < 1e-10


def test_slstm_stabilizer_survives_gates_that_overflow_the_paper_form() -> None:
    """exp(100) overflows float32; the stabilized cell stays finite (the point of m_t)."""
    layer = SLSTMLayer(SLSTMConfig(embed=8, heads=2, conv_kernel=0)).eval()
    with torch.no_grad():
        layer.w_if.bias[:8] = 100.0
        out = layer(torch.randn(2, 30, 8))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "layer",
    [SLSTMLayer(SLSTMConfig(embed=16, heads=4)), MLSTMLayer(MLSTMConfig(embed=16, heads=4))],
)
def test_layers_are_causal(layer: torch.nn.Module) -> None:
    """Changing inputs after step t never changes outputs up to t."""
    layer.eval()
    x = torch.randn(2, 30, 16)
    y = x.clone()
    y[:, 20:] = torch.randn(2, 10, 16) * 5
    with torch.no_grad():
        a, b = layer(x), layer(y)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)
    assert not torch.allclose(a[:, 20:], b[:, 20:])
