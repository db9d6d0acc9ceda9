"""Causal temporal transformer head for next-action anticipation.

Follows AVT (Girdhar & Grauman, "Anticipative Video Transformer", ICCV 2021; github facebookresearch/AVT) in spirit:
a transformer over the T observed (fused) tokens with a causal mask, so each step only sees the past; the output at the
last observed step predicts the next action. Variant: learned positional embeddings, pre-LN blocks, and three linear
classifiers (verb, noun, action) on the final token, as AFFT (Zhong et al., WACV 2023) does for EK100.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn

from ...registry import HEADS


@HEADS.register("causal_transformer")
class CausalTransformerHead(nn.Module):
    """Causal transformer over (B, T, C) tokens; verb/noun/action logits from the last step."""

    def __init__(self, dim: int, num_classes: Dict[str, int], num_frames: int, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.1) -> None:
        super().__init__()
        self.max_len = num_frames
        self.pos = nn.Parameter(torch.zeros(1, num_frames, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in num_classes.items()})

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (B, T, C) with T ≤ num_frames -> {"verb": (B, V), "noun": (B, N), "action": (B, A)}."""
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"head built for at most {self.max_len} tokens, got {t} (data.num_frames)")
        mask = torch.triu(torch.full((t, t), float("-inf"), device=x.device), diagonal=1)
        h = self.blocks(x + self.pos[:, :t], mask=mask, is_causal=True)
        h = self.drop(self.norm(h[:, -1]))
        return {k: clf(h) for k, clf in self.classifiers.items()}
