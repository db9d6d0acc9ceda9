"""SA-Fuser: per frame, one pre-LN transformer block over the stacked modality tokens, then their mean.

From AFFT (Zhong, Schneider, Voit, Stiefelhagen, Martin, "Anticipative Feature Fusion Transformer for Multi-Modal
Action Anticipation", WACV 2023; github zeyun-zhong/AFFT, `models/fusion.py`), as reused by R3D (Kim et al.,
"Countering Multi-modal Representation Collapse through Rank-targeted Fusion", WACV 2026; github olivesgatech/R3D,
`model/futr_safuser_*.py`, class `CMFuser`). Class name here -> name in the papers:

    SAFuserBlock  the shared fusion block: stack (B·T, M, C) -> dropout -> Block -> LayerNorm (also used by RTF and
                  TokenFusion)
    SAFuser       "safuser": mask=full is AFFT's "SA-Fuser with modality token" (a learnable per-modality embedding
                  added to each token, unmasked attention); mask=cross is R3D's `CMFuser` (−inf on the diagonal: each
                  token attends only to the other modality)
    SAFuserCross  "safuser_cross": R3D's fuser without RTF (mask forced to cross, LayerNorm eps 1e-5 as R3D), to
                  isolate RTF's contribution

Variant notes. AFFT's `ModalTokenCMFuser` prepends a modality-agnostic token and reads the fused feature from its
output; here the modality token is an embedding added per modality and the fused feature is the mean of
the M modality tokens after the final LayerNorm, as in AFFT's `CMFuser` and R3D. The post-fusion per-modality tokens are
those normalised block outputs (so `fused` is exactly their mean over the present modalities). Missing modality: its
token is dropped from the keys (key-padding mask) and from the mean; a query whose every key would be masked (cross
mask, other modality absent) attends to itself instead, so no softmax row is empty and nothing is NaN. Weights are
initialised as in AFFT (trunc-normal 0.02 for Linear weights and the modality embedding, zero biases). LayerNorm eps:
AFFT's 1e-6 for "safuser", R3D's 1e-5 (nn.LayerNorm's default) wherever the block is R3D's (safuser_cross, RTF,
TokenFusion).
"""
from __future__ import annotations

import inspect
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from ...registry import FUSERS
from ..layers import AFFT_NORM_EPS, R3D_NORM_EPS, Block
from .base import Fuser, FuserOutput, masked_mean

Tensor = torch.Tensor

MASKS = ("full", "cross")


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def modality_attention_mask(kind: str, present: Optional[Tensor], num: int, device: torch.device) -> Tensor:
    """Additive attention mask over the M modality tokens of a frame: (B, 1, M, M), or (1, 1, M, M) if present is None.

    kind "cross" blocks the diagonal (a token sees only the other modalities), "full" blocks nothing; keys of absent
    modalities (present (B, M) bool False) are blocked too, except that a query left with no key attends to itself.
    """
    if kind not in MASKS:
        raise ValueError(f"attention mask must be one of {MASKS}, got '{kind}'")
    eye = torch.eye(num, dtype=torch.bool, device=device)
    allowed = ~eye if kind == "cross" else torch.ones(num, num, dtype=torch.bool, device=device)
    allowed = allowed.unsqueeze(0)  # (1, M, M): [query, key]
    if present is not None:
        allowed = allowed & present[:, None, :]
        empty = ~allowed.any(-1, keepdim=True)  # (B, M, 1) queries with no key left
        allowed = allowed | (empty & eye)
    zero = torch.zeros((), device=device)
    return torch.where(allowed, zero, torch.full((), float("-inf"), device=device)).unsqueeze(1)


class SAFuserBlock(nn.Module):
    """Per-frame attention across modality tokens: (B, T, M, C) -> normalised (B, T, M, C)."""

    def __init__(self, dim: int, num_modalities: int = 2, heads: int = 8, mlp_ratio: float = 4.0,
                 dropout: float = 0.1, mask: str = "cross", residual: bool = False,
                 norm_eps: float = AFFT_NORM_EPS) -> None:
        """mask: "cross" (−inf diagonal) or "full" (adds a learnable per-modality embedding; no mask);
        residual: add the block input to its output before the final LayerNorm (R3D's TokenFusion ablation);
        norm_eps: eps of every LayerNorm (AFFT: 1e-6; R3D's `CMFuser` and its transformer block: 1e-5)."""
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"SA-Fuser mask must be one of {MASKS}, got '{mask}' (model.safuser.mask)")
        self.mask = mask
        self.residual = residual
        self.modality_embed = nn.Parameter(torch.zeros(num_modalities, dim)) if mask == "full" else None
        self.drop = nn.Dropout(dropout)
        self.block = Block(dim, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=False, norm_eps=norm_eps)
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.apply(_init_weights)
        if self.modality_embed is not None:
            trunc_normal_(self.modality_embed, std=0.02)

    @property
    def last_attn(self) -> Optional[Tensor]:
        """Attention probabilities of the last call, (B·T, H, M, M) [query, key], detached."""
        return self.block.attn.last_attn

    def forward(self, x: Tensor, present: Optional[Tensor] = None) -> Tensor:
        """x (B, T, M, C) stacked modality tokens; present (B, M) bool or None -> (B, T, M, C) after the final norm."""
        b, t, m, c = x.shape
        if self.modality_embed is not None:
            x = x + self.modality_embed.to(x.dtype)
        x = self.drop(x.reshape(b * t, m, c))
        p = None if present is None or bool(present.all()) else present
        mask = modality_attention_mask(self.mask, p, m, x.device)
        if mask.shape[0] > 1:
            mask = mask.repeat_interleave(t, dim=0)  # (B, 1, M, M) -> (B·T, 1, M, M), sample-major like x
        y = self.block(x, mask)
        if self.residual:
            y = y + x
        return self.norm(y).reshape(b, t, m, c)


@FUSERS.register("safuser")
class SAFuser(Fuser):
    """AFFT's SA-Fuser: per-frame transformer block over the modality tokens (mask full or cross), mean -> fused."""

    frame_local = True  # see Fuser.frame_local
    config_section = "safuser"

    norm_eps = AFFT_NORM_EPS

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth"), mask: str = "full", heads: int = 8,
                 mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__(dim, modalities)
        if len(self.modalities) < 2:
            raise ValueError("fuser safuser needs at least two modalities (model.modalities)")
        self.block = SAFuserBlock(dim, len(self.modalities), heads, mlp_ratio, dropout, mask=mask,
                                  norm_eps=self.norm_eps)

    @property
    def last_attn(self) -> Optional[Tensor]:
        """Attention probabilities of the last call, (B·T, H, M, M) [query, key] in `modalities` order."""
        return self.block.last_attn

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C) = mean of the present block outputs."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        y = self.block(torch.stack([x[m] for m in self.modalities], 2), p)
        out = {m: y[:, :, i] for i, m in enumerate(self.modalities)}
        return self.output(masked_mean(y, p), out, p, dtype)


@FUSERS.register("safuser_cross")
class SAFuserCross(SAFuser):
    """R3D's SA-Fuser without RTF: cross-only mask (each modality token attends only to the other)."""

    norm_eps = R3D_NORM_EPS  # R3D's LayerNorms (nn.LayerNorm's default), where AFFT uses 1e-6

    def __init__(self, *args, **kwargs) -> None:
        kwargs["mask"] = "cross"
        super().__init__(*args, **kwargs)

    __init__.__signature__ = inspect.signature(SAFuser.__init__)  # same keys as model.safuser (mask is overridden)
