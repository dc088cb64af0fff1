"""sLSTM (Beck et al. 2024, arXiv 2405.04517, section 2.2) in pure PyTorch.

Per step, for each head (memory mixing happens inside a head through block-diagonal
recurrent weights R, never across heads)::

    z = tanh(W_z x + R_z h' + b_z)            cell input
    i = exp(ĩ),  ĩ = W_i x + R_i h' + b_i     exponential input gate
    f = sigmoid(f̃) (as log f = logsigmoid f̃) forget gate
    o = sigmoid(W_o x + R_o h' + b_o)         output gate
    c = f c' + i z,  n = f n' + i,  h = o c / n

with the stabilizer state m = max(log f + m', ĩ) that replaces i and f by exp(ĩ - m) and
exp(log f + m' - m): the same h, no overflow (eqs. 15-17). Training runs a Python loop;
under ``torch.onnx.export`` the same step runs inside ``scan``, so the graph holds one ONNX
``Scan`` node instead of ``window`` unrolled copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch._higher_order_ops.scan import scan

from xtune.errors import SpecError
from xtune.models.heads import check_norm_width

_M0 = -1e30  # log-space "minus infinity" for the first stabilizer state (finite: no inf - inf)


@dataclass(frozen=True)
class SLSTMConfig:
    embed: int
    heads: int = 4
    conv_kernel: int = 4  # causal conv feeding the i and f gates; 0 disables it
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.embed % self.heads:
            raise SpecError(f"sLSTM embed {self.embed} must be divisible by heads {self.heads}.")
        check_norm_width("sLSTM embed", self.embed)
        check_norm_width(
            f"sLSTM head width (embed {self.embed} / heads {self.heads})", self.head_dim
        )

    @property
    def head_dim(self) -> int:
        return self.embed // self.heads


def slstm_step(
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    wx: torch.Tensor,
    r: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One stabilized sLSTM step.

    Args:
        state: (h, c, n, m), each [B, NH, DH].
        wx: input pre-activations W x + b, [B, 4, NH, DH] in gate order i, f, z, o.
        r: block-diagonal recurrent weights, [4, NH, DH, DH].
    """
    h, c, n, m = state
    raw = wx + torch.einsum("bhd,ghde->bghe", h, r)  # [B, 4, NH, DH]
    i_raw, f_raw, z_raw, o_raw = raw.unbind(1)  # each [B, NH, DH]
    log_f_plus_m = m + F.logsigmoid(f_raw)
    m_new = torch.maximum(i_raw, log_f_plus_m)
    i = torch.exp(i_raw - m_new)
    f = torch.exp(log_f_plus_m - m_new)
    c_new = f * c + i * torch.tanh(z_raw)
    n_new = f * n + i  # >= 1 after the first step, so h never divides by ~0
    h_new = torch.sigmoid(o_raw) * c_new / n_new
    return h_new, c_new, n_new, m_new


class MultiHeadNorm(nn.Module):
    """LayerNorm over each head's features separately (the paper's group norm)."""

    def __init__(self, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.weight = nn.Parameter(torch.ones(heads * head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape  # [..., NH * DH]
        y = F.layer_norm(x.reshape(*shape[:-1], self.heads, self.head_dim), (self.head_dim,))
        return y.reshape(shape) * self.weight


class CausalConv1d(nn.Module):
    """Depthwise conv over time that sees only the current and past steps: [B, T, D] -> same."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(dim, dim, kernel, groups=dim, padding=kernel - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        return self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2)  # [B, T, D]


class SLSTMLayer(nn.Module):
    """[B, T, D] -> [B, T, D]: gates, the recurrence over time, per-head norm."""

    def __init__(self, config: SLSTMConfig) -> None:
        super().__init__()
        self.config = config
        d, nh, dh = config.embed, config.heads, config.head_dim
        self.conv = CausalConv1d(d, config.conv_kernel) if config.conv_kernel else None
        self.w_if = nn.Linear(d, 2 * d)  # i, f gates from the (conv) input
        self.w_zo = nn.Linear(d, 2 * d)  # z, o from the raw input
        self.r = nn.Parameter(torch.zeros(4, nh, dh, dh))  # block-diagonal memory mixing
        self.norm = MultiHeadNorm(nh, dh)
        self.dropout = nn.Dropout(config.dropout)
        with torch.no_grad():  # forget gates start open (long memory), as in the paper's code
            self.w_if.bias[d:] = torch.linspace(3.0, 6.0, d)

    def gate_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """W x + b for all four gates: [B, T, 4, NH, DH]."""
        b, t, _ = x.shape
        xc = F.silu(self.conv(x)) if self.conv is not None else x
        wx = torch.cat([self.w_if(xc), self.w_zo(x)], dim=-1)  # [B, T, 4D] in order i, f, z, o
        return wx.view(b, t, 4, self.config.heads, self.config.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wx = self.gate_inputs(x)  # [B, T, 4, NH, DH]
        b, _, _, nh, dh = wx.shape
        # Four distinct tensors: scan refuses carries that alias each other.
        init = (
            wx.new_zeros(b, nh, dh),
            wx.new_zeros(b, nh, dh),
            wx.new_zeros(b, nh, dh),
            wx.new_full((b, nh, dh), _M0),
        )
        if torch.compiler.is_exporting():
            hs = self._scan(init, wx)
        else:
            state, outs = init, []
            # unbind, not wx[:, t]: each slice's backward would zero-fill a full-size gradient
            # (O(T^2) memory traffic); unbind's backward is a single stack.
            for wx_t in wx.unbind(1):
                state = slstm_step(state, wx_t, self.r)
                outs.append(state[0])
            hs = torch.stack(outs, dim=1)  # [B, T, NH, DH]
        y = self.norm(hs.reshape(b, -1, nh * dh))
        return self.dropout(y)  # [B, T, D]

    def _scan(self, init: tuple[torch.Tensor, ...], wx: torch.Tensor) -> torch.Tensor:
        r = self.r

        def combine(
            carry: tuple[torch.Tensor, ...], wx_t: torch.Tensor
        ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
            new = slstm_step((carry[0], carry[1], carry[2], carry[3]), wx_t, r)
            return new, new[0].clone()

        _, hs = scan(combine, init, wx.transpose(0, 1))  # scan over time: [T, B, NH, DH]
        return hs.transpose(0, 1)


class GatedMLP(nn.Module):
    """The sLSTM block's post up-projection: GeLU-gated MLP, factor 4/3."""

    def __init__(self, dim: int, factor: float = 4 / 3, dropout: float = 0.0) -> None:
        super().__init__()
        inner = max(8, round(dim * factor))
        self.up = nn.Linear(dim, 2 * inner)
        self.down = nn.Linear(inner, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.up(x).chunk(2, dim=-1)  # [B, T, inner] each
        return self.dropout(self.down(F.gelu(g) * a))


class SLSTMBlock(nn.Module):
    """Pre-LN residual: x + sLSTM(LN(x)), then x + MLP(LN(x)) (post up-projection)."""

    def __init__(self, config: SLSTMConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embed)
        self.layer = SLSTMLayer(config)
        self.norm2 = nn.LayerNorm(config.embed)
        self.mlp = GatedMLP(config.embed, dropout=config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer(self.norm1(x))
        return x + self.mlp(self.norm2(x))
