"""Summation fusion: per frame, a + b.

The "sum" baseline of R3D (Kim et al., "Countering Multi-modal Representation Collapse through Rank-targeted Fusion",
WACV 2026; github olivesgatech/R3D). Variant: a plain, parameter-free sum over the modalities (an absent modality adds
zeros, so the sum is then that of the present ones, not rescaled); `tokens` are the inputs passed through.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ...registry import FUSERS
from .base import Fuser, FuserOutput

Tensor = torch.Tensor


@FUSERS.register("sum")
class SumFuser(Fuser):
    """Sum the modality tokens per frame: a + b (no parameters)."""

    frame_local = True  # see Fuser.frame_local

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth")) -> None:
        super().__init__(dim, modalities)

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused = Σ_m tokens[m] (B,T,C), tokens unchanged."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        fused = torch.stack([x[m] for m in self.modalities], 0).sum(0)
        return self.output(fused, x, p, dtype)
