"""Identity "fusion" for a unimodal model: fused = the single modality's tokens.

The unimodal references of the benchmark (rgb-only, depth-only with the same head), used by R3D (Kim et al., WACV 2026;
github olivesgatech/R3D) as the collapse and missing-modality baselines. `r3d.models.anticipator.build_fuser` picks it
automatically when `model.modalities` has one entry.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ...registry import FUSERS
from .base import Fuser, FuserOutput

Tensor = torch.Tensor


@FUSERS.register("identity")
class IdentityFuser(Fuser):
    """Unimodal pass-through: fused = the one modality's tokens."""

    frame_local = True  # see Fuser.frame_local
    num_modalities = 1

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb",)) -> None:
        super().__init__(dim, modalities)

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)} for the single modality m -> fused = tokens[m] (B,T,C)."""
        x, p = self.prepare(tokens, present)
        m = self.modalities[0]
        return self.output(x[m], x, p, x[m].dtype)
