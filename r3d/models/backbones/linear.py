"""R3D's depth tokens: each depth frame min-max normalised, flattened, then Linear → LayerNorm → ReLU.

From R3D (Kim et al., WACV 2026), §Implementation: "depth tokens: min-max normalised frame, flattened → Linear → 128 +
LayerNorm + ReLU". The output width is `out_features` (R3D: 128); the model's projection then maps it to `model.dim`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ...registry import BACKBONES


@BACKBONES.register("linear")
class LinearDepthTokens(nn.Module):
    """Min-max normalised frame → flatten → Linear → LayerNorm → ReLU (R3D's depth tokens): (B,T,C,H,W) -> (B,T,F)."""

    per_frame: bool = True  # a frame's token depends on that frame only (see `FrameBackbone2D`)
    causal: bool = True

    def __init__(self, in_chans: int, img_size: int, name: str = "linear", out_features: int = 128,
                 pretrained: bool = False, pretrained_file: Optional[str] = None, freeze: bool = False,
                 time_kernel: int = 3, time_causal: bool = False) -> None:
        """`time_kernel` and `time_causal` are read by kind `inflated3d` only (same config section); ignored here."""
        super().__init__()
        if pretrained or pretrained_file:
            raise ValueError("backbone kind 'linear' has no pretrained weights; unset pretrained/pretrained_file")
        self.fc = nn.Linear(in_chans * img_size * img_size, out_features)
        self.norm = nn.LayerNorm(out_features)
        self.num_features = out_features
        if freeze:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C, H, W) -> (B, T, F)."""
        flat = x.flatten(2).float()
        lo = flat.amin(dim=-1, keepdim=True)
        hi = flat.amax(dim=-1, keepdim=True)
        flat = (flat - lo) / (hi - lo).clamp_min(1e-6)
        return torch.relu(self.norm(self.fc(flat.to(self.fc.weight.dtype))))
