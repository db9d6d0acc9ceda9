"""Small timm models registered in timm's own registry, so `timm.create_model("r3d_resnet_tiny")` works once r3d is
imported.

`r3d_resnet_tiny` is a timm `ResNet` (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; timm's
implementation) with one BasicBlock per stage, widths 16-32-64-128, a deep 3-conv stem and average-pool downsampling
("-D" tweaks of Bag of Tricks). It is the default per-frame backbone of the synthetic benchmark: 0.32 M parameters,
fast enough to train an RGB-D model on 2 CPU cores in minutes. Any other timm model name can be used instead.
"""
from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet, _cfg, _create_resnet

default_cfgs = generate_default_cfgs(
    {
        # No hosted weights: pretrained weights can only come from a local file (pretrained_cfg_overlay=dict(file=...)).
        "r3d_resnet_tiny.untrained": _cfg(input_size=(3, 64, 64), pool_size=(2, 2), first_conv="conv1.0"),
    }
)


@register_model
def r3d_resnet_tiny(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Tiny ResNet-D (1-1-1-1 BasicBlocks, widths 16/32/64/128) for 64x64 frames."""
    model_args = dict(
        block=BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16, stem_type="deep", avg_down=True
    )
    return _create_resnet("r3d_resnet_tiny", pretrained, **dict(model_args, **kwargs))
