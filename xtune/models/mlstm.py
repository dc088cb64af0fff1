"""mLSTM (Beck et al. 2024, arXiv 2405.04517, section 2.3) in pure PyTorch.

Matrix memory per head, with scalar exponential input gate i and sigmoid forget gate f::

    C_t = f_t C_{t-1} + i_t v_t k_t^T        n_t = f_t n_{t-1} + i_t k_t
    h~_t = C_t q_t / max(|n_t^T q_t|, 1)      (k scaled by 1/sqrt(d))

Training uses the parallel form (a causal [T, T] gate matrix built from cumulative sums of
log-sigmoid forget gates, stabilized by its row maximum); :func:`mlstm_recurrent` is the
step-by-step form, kept to check the parallel one (they agree to 1e-8 in float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xtune.errors import SpecError
from xtune.models.heads import check_norm_width
from xtune.models.slstm import _M0, CausalConv1d, MultiHeadNorm

_EPS = 1e-6


@dataclass(frozen=True)
class MLSTMConfig:
    embed: int
    heads: int = 4
    proj_factor: float = 2.0  # pre up-projection: the cell works at proj_factor * embed
    conv_kernel: int = 4
    qkv_block: int = 4  # q, k, v projections are block-diagonal with this block size
    dropout: float = 0.0

    def __post_init__(self) -> None:
        inner = self.inner
        if inner % self.heads or inner % self.qkv_block:
            raise SpecError(
                f"mLSTM inner size {inner} (embed x proj_factor) must be divisible by heads "
                f"{self.heads} and qkv_block {self.qkv_block}."
            )
        check_norm_width("mLSTM embed", self.embed)
        check_norm_width(
            f"mLSTM head width (inner {inner} / heads {self.heads})", inner // self.heads
        )

    @property
    def inner(self) -> int:
        return round(self.embed * self.proj_factor)


def mlstm_parallel(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, i_pre: torch.Tensor, f_pre: torch.Tensor
) -> torch.Tensor:
    """Parallel mLSTM. q, k, v: [B, NH, T, DH]; i_pre, f_pre: [B, NH, T]. Returns [B, NH, T, DH]."""
    t, dh = q.shape[-2], q.shape[-1]
    log_f = F.logsigmoid(f_pre)  # [B, NH, T]
    cum = torch.cumsum(log_f, dim=-1)  # [B, NH, T]
    # log D[t, s] = sum_{r=s+1..t} log f_r + i_s  for s <= t, else -inf
    log_d = cum.unsqueeze(-1) - cum.unsqueeze(-2) + i_pre.unsqueeze(-2)  # [B, NH, T, T]
    causal = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    log_d = log_d.masked_fill(~causal, float("-inf"))
    m = log_d.amax(dim=-1, keepdim=True)  # [B, NH, T, 1] row-wise stabilizer
    d = torch.exp(log_d - m)  # [B, NH, T, T]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(dh) * d  # [B, NH, T, T]
    normalizer = torch.maximum(scores.sum(dim=-1, keepdim=True).abs(), torch.exp(-m))
    return (scores / (normalizer + _EPS)) @ v  # [B, NH, T, DH]


def mlstm_recurrent(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, i_pre: torch.Tensor, f_pre: torch.Tensor
) -> torch.Tensor:
    """Step-by-step mLSTM with matrix memory C [B, NH, DH, DH]; same shapes as the parallel form."""
    b, nh, t, dh = q.shape
    c = q.new_zeros(b, nh, dh, dh)
    n = q.new_zeros(b, nh, dh)
    # Starting the stabilizer at -inf makes m_t the row maximum of the parallel form's log D,
    # so both forms scale the eps in the denominator identically.
    m = q.new_full((b, nh), _M0)
    k = k / math.sqrt(dh)
    outs = []
    for s in range(t):
        log_f = F.logsigmoid(f_pre[..., s])  # [B, NH]
        m_new = torch.maximum(log_f + m, i_pre[..., s])
        f = torch.exp(log_f + m - m_new)[..., None]
        i = torch.exp(i_pre[..., s] - m_new)[..., None]
        c = f[..., None] * c + i[..., None] * (v[..., s, :, None] @ k[..., s, None, :])  # v k^T
        n = f * n + i * k[..., s, :]
        num = (c @ q[..., s, :, None]).squeeze(-1)  # C q: [B, NH, DH]
        den = torch.maximum((n * q[..., s, :]).sum(-1).abs(), torch.exp(-m_new))[..., None]
        outs.append(num / (den + _EPS))
        m = m_new
    return torch.stack(outs, dim=2)  # [B, NH, T, DH]


class BlockDiagonalLinear(nn.Module):
    """y = x W with W block-diagonal (blocks of ``block`` features), no bias."""

    def __init__(self, dim: int, block: int) -> None:
        super().__init__()
        self.block = block
        self.weight = nn.Parameter(torch.randn(dim // block, block, block) / math.sqrt(block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape  # [..., dim]
        xb = x.reshape(*shape[:-1], -1, self.block)  # [..., nb, block]
        return torch.einsum("...nb,nbc->...nc", xb, self.weight).reshape(shape)


class MLSTMLayer(nn.Module):
    """Pre up-projection block body: up-project, causal conv, mLSTM cell, learnable skip,
    output gate silu(z), down-project. [B, T, D] -> [B, T, D]."""

    def __init__(self, config: MLSTMConfig) -> None:
        super().__init__()
        self.config = config
        inner, nh = config.inner, config.heads
        self.up = nn.Linear(config.embed, 2 * inner)
        self.conv = CausalConv1d(inner, config.conv_kernel)
        self.q = BlockDiagonalLinear(inner, config.qkv_block)
        self.k = BlockDiagonalLinear(inner, config.qkv_block)
        self.v = BlockDiagonalLinear(inner, config.qkv_block)
        self.igate = nn.Linear(3 * inner, nh)
        self.fgate = nn.Linear(3 * inner, nh)
        self.norm = MultiHeadNorm(nh, inner // nh)
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, config.embed)
        self.dropout = nn.Dropout(config.dropout)
        with torch.no_grad():  # gates start from their biases; forget gates open (3..6)
            nn.init.zeros_(self.fgate.weight)
            self.fgate.bias.copy_(torch.linspace(3.0, 6.0, nh))
            nn.init.zeros_(self.igate.weight)
            nn.init.normal_(self.igate.bias, std=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        nh, inner = self.config.heads, self.config.inner
        x_m, z = self.up(x).chunk(2, dim=-1)  # [B, T, inner] each
        x_c = F.silu(self.conv(x_m))  # [B, T, inner]
        q, k, v = self.q(x_c), self.k(x_c), self.v(x_m)  # [B, T, inner]
        qkv = torch.cat([q, k, v], dim=-1)  # [B, T, 3 * inner]
        i_pre = self.igate(qkv).transpose(1, 2)  # [B, NH, T]
        f_pre = self.fgate(qkv).transpose(1, 2)  # [B, NH, T]

        def heads(a: torch.Tensor) -> torch.Tensor:
            return a.view(b, t, nh, -1).transpose(1, 2)  # [B, NH, T, DH]

        h = mlstm_parallel(heads(q), heads(k), heads(v), i_pre, f_pre)  # [B, NH, T, DH]
        h = self.norm(h.transpose(1, 2).reshape(b, t, inner))  # [B, T, inner]
        h = (h + self.skip * x_c) * F.silu(z)
        return self.dropout(self.down(h))  # [B, T, D]


class MLSTMBlock(nn.Module):
    """Pre-LN residual: x + mLSTM(LN(x))."""

    def __init__(self, config: MLSTMConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.embed)
        self.layer = MLSTMLayer(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer(self.norm(x))
