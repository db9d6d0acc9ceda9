"""Late fusion: one head per modality, logits averaged over the modalities present.

The "late" baseline of R3D (Kim et al., "Countering Multi-modal Representation Collapse through Rank-targeted Fusion",
WACV 2026; github olivesgatech/R3D). The fuser itself does nothing: it returns `fused = None` and the
tokens unchanged, and sets `separate_heads = True`, which makes `r3d.models.anticipator.Anticipator` build one head per
modality and average their logits over the modalities present in each sample.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ...registry import FUSERS
from .base import Fuser, FuserOutput

Tensor = torch.Tensor


@FUSERS.register("late")
class LateFuser(Fuser):
    """Late fusion: separate heads per modality, logits averaged (the fuser passes tokens through)."""

    frame_local = True  # see Fuser.frame_local
    separate_heads = True

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth")) -> None:
        super().__init__(dim, modalities)

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused None, tokens unchanged (absent ones zeroed)."""
        x, p = self.prepare(tokens, present)
        return self.output(None, x, p, x[self.modalities[0]].dtype)
