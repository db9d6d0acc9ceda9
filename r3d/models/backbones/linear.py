"""R3D's depth tokens: each depth frame min-max normalised, flattened, then Linear → LayerNorm → ReLU.

From R3D (Kim et al., WACV 2026), §Implementation: "depth tokens: min-max normalised frame, flattened → Linear → 128 +
LayerNorm + ReLU". The output width is `out_features` (R3D: 128); the model's projection then maps it to `model.dim`.

Kind `minmax` is the same input without the Linear: the min-max normalised, flattened frame is the token (width
C·H·W). It has no parameters, so its tokens can be cached (`data.features`) while the depth Linear is still trained:
the model's projection (Linear → LayerNorm to `model.dim`) plays R3D's Linear → LayerNorm (without the ReLU).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ...registry import BACKBONES


def minmax_flatten(x: torch.Tensor) -> torch.Tensor:
    """Frames (B, T, C, H, W) -> (B, T, C·H·W) float, each frame min-max normalised to [0, 1] (a flat frame -> 0)."""
    flat = x.flatten(2).float()
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    return (flat - lo) / (hi - lo).clamp_min(1e-6)


@BACKBONES.register("linear")
class LinearDepthTokens(nn.Module):
    """Min-max normalised frame → flatten → Linear → LayerNorm → ReLU (R3D's depth tokens): (B,T,C,H,W) -> (B,T,F)."""

    per_frame: bool = True  # a frame's token depends on that frame only (see `FrameBackbone2D`)
    causal: bool = True

    def __init__(self, in_chans: int, img_size: int, name: str = "linear", out_features: int = 128,
                 pretrained: bool = False, pretrained_file: Optional[str] = None, freeze: bool = False,
                 time_kernel: int = 3, time_causal: bool = False) -> None:
        """`time_kernel` and `time_causal` are read by kind `inflated3d` only (same config section); ignored here.
        `out_features=0` leaves out Linear, LayerNorm and ReLU: the token is the normalised frame (kind `minmax`)."""
        super().__init__()
        if pretrained or pretrained_file:
            kind = "linear" if out_features else "minmax"
            raise ValueError(f"backbone kind '{kind}' has no pretrained weights; unset pretrained/pretrained_file")
        self.fc = nn.Linear(in_chans * img_size * img_size, out_features) if out_features else None
        self.norm = nn.LayerNorm(out_features) if out_features else None
        self.num_features = out_features or in_chans * img_size * img_size
        if freeze:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C, H, W) -> (B, T, F)."""
        flat = minmax_flatten(x)
        if self.fc is None:
            return flat
        return torch.relu(self.norm(self.fc(flat.to(self.fc.weight.dtype))))


@BACKBONES.register("minmax")
def minmax_depth_frame(in_chans: int, img_size: int, name: str = "minmax", pretrained: bool = False,
                       pretrained_file: Optional[str] = None, freeze: bool = False, time_kernel: int = 3,
                       time_causal: bool = False) -> LinearDepthTokens:
    """The min-max normalised, flattened frame as the token, (B,T,C,H,W) -> (B,T,C·H·W): R3D's depth input, cacheable."""
    return LinearDepthTokens(in_chans, img_size, name=name, out_features=0, pretrained=pretrained,
                             pretrained_file=pretrained_file, freeze=freeze)
