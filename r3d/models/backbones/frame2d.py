"""Per-frame 2-D timm backbone: every observed frame is encoded independently into one token.

This is how R3D (WACV 2026) and AFFT (Zhong et al., WACV 2023) build their RGB tokens (R3D: a frozen ImageNet
ResNet-50 per frame). For depth, timm's `in_chans=1` sums the pretrained RGB stem over its input channels.
`pretrained_file` is a timm weights file or a registered weight source (``pip:NAME``, `r3d.models.backbones.weights`);
the backbone keeps what it loaded in `weights` (a `WeightsRecord`, or None at random init).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import timm
import torch
import torch.nn as nn

from ...registry import BACKBONES
from .weights import WeightsError, WeightsRecord, resolve_pretrained_file, short_error


def create_timm_model(name: str, in_chans: int, pretrained: bool = False, pretrained_file: Optional[str] = None,
                      **kwargs) -> nn.Module:
    """`timm.create_model(name, num_classes=0, in_chans=...)` that never downloads.

    Pretrained weights come only from `pretrained_file` (via `pretrained_cfg_overlay=dict(file=...)`); asking for
    `pretrained=True` without a file is an error, because nothing may be fetched from a hub at run time.
    """
    from . import timm_models  # noqa: F401  (make sure r3d_* names exist in timm's registry)

    overlay = None
    if pretrained_file:
        if not Path(pretrained_file).is_file():
            raise FileNotFoundError(f"pretrained_file not found: {pretrained_file} (model.*_backbone.pretrained_file)")
        pretrained, overlay = True, dict(file=str(pretrained_file))
    elif pretrained:
        raise ValueError(
            f"backbone '{name}': pretrained=true needs a local weights file (model.*_backbone.pretrained_file=PATH); "
            "r3d never downloads weights"
        )
    if not timm.is_model(name):
        raise KeyError(f"backbone '{name}' is not a timm model name (see timm.list_models())")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans,
                                 pretrained_cfg_overlay=overlay, **kwargs)
    except Exception as e:  # unreadable file, missing keys, size mismatches: one line naming the file
        if overlay is None:
            raise
        raise WeightsError(f"pretrained_file {pretrained_file}: timm cannot load it into '{name}' ({short_error(e)}); "
                           f"is it a state dict of that timm model?") from None


def resolve_weights(pretrained_file: Optional[str], name: str) -> Tuple[Optional[str], Optional[WeightsRecord]]:
    """(timm weights file, record) for a `pretrained_file` config value; (None, None) when it is unset."""
    return resolve_pretrained_file(pretrained_file, name) if pretrained_file else (None, None)


@BACKBONES.register("frame2d")
class FrameBackbone2D(nn.Module):
    """Per-frame timm 2-D model (any timm name): frames (B, T, C, H, W) -> tokens (B, T, F).

    Capabilities read by the streaming demo, the feature cache and the truncated-window curves: `per_frame` (a frame's
    token depends on that frame only, so it can be computed once and cached) and `causal` (a token never depends on
    later frames). Every backbone kind sets both; a plugin backbone that leaves them out counts as neither.
    """

    per_frame: bool = True
    causal: bool = True

    def __init__(self, name: str, in_chans: int, img_size: int = 224, pretrained: bool = False,
                 pretrained_file: Optional[str] = None, freeze: bool = False, time_kernel: int = 3,
                 time_causal: bool = False) -> None:
        """`time_kernel` and `time_causal` are read by kind `inflated3d` only (same config section); ignored here."""
        super().__init__()
        file, self.weights = resolve_weights(pretrained_file, name)
        self.model = create_timm_model(name, in_chans, pretrained, file)
        self.num_features: int = self.model.num_features
        self.frozen = freeze
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> "FrameBackbone2D":
        super().train(mode)
        if self.frozen:  # a frozen backbone keeps its BN statistics
            self.model.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C, H, W) -> (B, T, F)."""
        b, t = x.shape[:2]
        y = self.model(x.flatten(0, 1))
        return y.view(b, t, -1)
