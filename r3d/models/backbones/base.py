"""Building per-frame backbones from the config (`model.rgb_backbone`, `model.depth_backbone`)."""
from __future__ import annotations

from typing import Any, Mapping

import torch.nn as nn

from ...registry import BACKBONES

IN_CHANS = {"rgb": 3, "depth": 1}


def build_backbone(modality: str, section: Mapping[str, Any], img_size: int) -> nn.Module:
    """Build the backbone for `modality` from its config section.

    The returned module maps frames `(B, T, C_in, H, W)` to per-frame tokens `(B, T, F)` and has `num_features = F`.
    `section.kind` picks the wrapper (a `BACKBONES` name); `section.name` is the timm model inside it.
    """
    if modality not in IN_CHANS:
        raise KeyError(f"model.modalities: unknown modality '{modality}' (known: {', '.join(IN_CHANS)})")
    kwargs = {k: v for k, v in section.items() if k != "kind"}
    return BACKBONES.build(section["kind"], in_chans=IN_CHANS[modality], img_size=img_size, **kwargs)
