"""Concatenation fusion: per frame, [a; b] → Linear(M·C → C).

The "concat" baseline of R3D (Kim et al., "Countering Multi-modal Representation Collapse through Rank-targeted
Fusion", WACV 2026; github olivesgatech/R3D) and of AFFT's comparison (Zhong et al., WACV 2023; github
zeyun-zhong/AFFT). Variant: the per-modality tokens are concatenated in `modalities` order (any number M of them) and
projected back to C by one Linear layer; there are no separate post-fusion per-modality tokens, so `tokens` are the
inputs passed through. An absent modality contributes zeros.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from ...registry import FUSERS
from .base import Fuser, FuserOutput

Tensor = torch.Tensor


@FUSERS.register("concat")
class ConcatFuser(Fuser):
    """Concatenate the modality tokens per frame and project: [a; b] -> Linear(M*C -> C)."""

    frame_local = True  # see Fuser.frame_local

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth")) -> None:
        super().__init__(dim, modalities)
        self.proj = nn.Linear(len(self.modalities) * dim, dim)

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C), tokens unchanged."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        fused = self.proj(torch.cat([x[m] for m in self.modalities], dim=-1))
        return self.output(fused, x, p, dtype)
