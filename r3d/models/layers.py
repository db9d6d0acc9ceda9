"""Small layers shared by r3d's models: a pre-LN transformer block whose attention takes an additive mask and keeps its
last attention probabilities, and a BatchNorm over batch × time whose statistics skip absent samples.

`Attention` / `Block` follow the timm ViT block as AFFT uses it (Zhong et al., "Anticipative Feature Fusion Transformer
for Multi-Modal Action Anticipation", WACV 2023; github zeyun-zhong/AFFT, `models/transformerblock.py`): pre-LN,
no qkv bias by default, an additive attention mask (−inf = not allowed), GELU MLP. Variant: the attention probabilities
of the last call are kept on the module (`Attention.last_attn`, detached) instead of being returned, so that callers
keep a plain tensor interface while tests and diagnostics can still read the mask's effect.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from timm.layers import Mlp

Tensor = torch.Tensor

AFFT_NORM_EPS = 1e-6  # AFFT's norm_layer: partial(nn.LayerNorm, eps=1e-6)
R3D_NORM_EPS = 1e-5  # R3D's transformer block and CMFuser use nn.LayerNorm's default


class Attention(nn.Module):
    """Multi-head self-attention with an additive mask: (N, L, C) -> (N, L, C); keeps `last_attn` (N, H, L, L)."""

    def __init__(self, dim: int, heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by heads={heads}; choose heads that divide it")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.last_attn: Optional[Tensor] = None

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """x (N, L, C); mask additive, broadcastable to (N, H, L, L) (0 = allowed, −inf = blocked) -> (N, L, C).

        Every query row of `mask` must allow at least one key, or its probabilities are NaN (callers guarantee it).
        Logits and softmax are computed in float32 (also under autocast); blocked keys get probability 0 exactly.
        """
        n, l, c = x.shape
        q, k, v = self.qkv(x).reshape(n, l, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q @ k.transpose(-2, -1)).float() * self.scale
        if mask is not None:
            logits = logits + mask
        attn = logits.softmax(dim=-1)
        self.last_attn = attn.detach()
        out = self.attn_drop(attn).to(v.dtype) @ v  # (N, H, L, C/H)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(n, l, c)))


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x), mask), then x + MLP(LN(x)); (N, L, C) -> (N, L, C)."""

    def __init__(self, dim: int, heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = False, drop: float = 0.0,
                 attn_drop: float = 0.0, norm_eps: float = AFFT_NORM_EPS) -> None:
        """norm_eps: eps of both LayerNorms (AFFT: 1e-6; R3D: 1e-5)."""
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """x (N, L, C); mask as in `Attention.forward` -> (N, L, C)."""
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def masked_batch_norm(bn: nn.BatchNorm1d, x: Tensor, present: Optional[Tensor] = None) -> Tensor:
    """BatchNorm1d(C) over batch × time of x (B, T, C); present (B,) bool or None -> (B, T, C).

    Only present samples are normalised and (in training) counted in the batch statistics and running averages;
    absent samples come out as zeros, so a missing modality stays "zeros" after the norm. With no sample present the
    norm is not run at all (its running statistics are untouched).
    """
    if present is None or bool(present.all()):
        return bn(x.transpose(1, 2)).transpose(1, 2)
    b, t, c = x.shape
    if not bool(present.any()):
        return x.new_zeros(b, t, c)
    y = bn(x[present].transpose(1, 2)).transpose(1, 2)
    out = y.new_zeros(b, t, c)
    out[present] = y
    return out
