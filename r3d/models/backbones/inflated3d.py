"""I3D-style inflated timm 2-D CNN: a video backbone that still gives one token per frame.

Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset", CVPR 2017 (original code:
github.com/deepmind/kinetics-i3d). Paper term → r3d name:

- "Inflating 2D ConvNets into 3D" → `inflate_2d_to_3d` (walks a timm model and swaps modules in place).
- "Bootstrapping 3D filters from 2D filters" (repeat the N×N weights N times over time and rescale by 1/N, so that a
  "boring video" of one repeated image gives the 2-D network's activations) → `inflate_conv2d`.
- ImageNet stem → one input channel (depth) → `adapt_input_conv3d`, timm's `adapt_input_conv` applied to 5-D weights.

Variant (r3d, for anticipation tokens rather than clip classification):

- Which convs inflate: every Conv2d whose spatial kernel is larger than 1×1 (the stem convs and the 3×3 convs of the
  BasicBlock / Bottleneck) becomes `time_kernel`×k×k; 1×1 convs (bottleneck reduce/expand, downsample projections)
  become 1×1×1. I3D does the same except that its 7×7 stem gets 7 frames; here every inflated conv gets `time_kernel`.
  The temporal receptive field is 1 + (number of inflated convs)·(time_kernel − 1) frames (r3d_resnet_tiny: 11 convs).
- Temporal stride 1 everywhere and pools with temporal kernel 1 (I3D strides over time): T frames give T tokens, and
  the global pool (the timm model's own head) runs over space only, per frame.
- Temporal padding repeats the first/last frame (I3D pads with zeros), so the identical-frames equality holds at the
  ends of the clip too. `time_causal=True` pads only the past side with time_kernel − 1 frames: a frame's token then
  never depends on later frames (what a streaming demo needs).

Supported: timm `ResNet` family (resnet18/34/50/101, resnet*d, resnext, wide_resnet, r3d_resnet_tiny, ...) built from
plain Conv2d, BatchNorm2d, Max/AvgPool2d and element-wise activations. Anything else (SE/ECA attention, anti-aliased
pooling, DropBlock, 'same'-padded convs, other architectures) is refused with an error naming the module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from timm.layers import DropPath
from timm.models import load_state_dict as timm_load_state_dict
from timm.models._manipulate import adapt_input_conv
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from ...registry import BACKBONES
from .frame2d import FrameBackbone2D, resolve_weights

Tensor = torch.Tensor

# Modules whose forward works unchanged on (B, C, T, H, W): containers that only chain their children (plus a
# residual sum) and element-wise or per-channel (dim 1) operations.
_PASS_THROUGH = (nn.Sequential, BasicBlock, Bottleneck, nn.Identity, nn.Dropout, DropPath, nn.ReLU, nn.ReLU6,
                 nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
                 nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh)
# Model classes whose forward_features only chains such children; their forward_head stays 2-D (run per frame).
_SUPPORTED_MODELS = (ResNet,)
_HEAD_CHILDREN = ("global_pool", "fc")


class TemporalConv3d(nn.Conv3d):
    """Conv3d with stride 1 and edge-replicating padding over time; spatial stride/padding as the 2-D conv it replaces.

    Input and output (B, C, T, H, W) with the same T. `time_pad = (past, future)` frames are added by repeating the
    first and last frame (with `torch.cat`, which is deterministic on every device, unlike replication padding's
    backward on CUDA).
    """

    def __init__(self, *args, time_pad: Tuple[int, int] = (0, 0), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_pad = tuple(time_pad)

    def forward(self, x: Tensor) -> Tensor:
        past, future = self.time_pad
        if past or future:
            parts = [x[:, :, :1].expand(-1, -1, past, -1, -1), x, x[:, :, -1:].expand(-1, -1, future, -1, -1)]
            x = torch.cat(parts, dim=2)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, time_pad={self.time_pad}"


def adapt_input_conv3d(in_chans: int, conv_weight: Tensor, base_chans: int = 3) -> Tensor:
    """Adapt a 5-D stem weight `(O, I, t, kh, kw)` to `in_chans` input channels, as timm does for 4-D weights.

    `in_chans=1` sums over the input channels (so a grey/depth frame d gives what the RGB model gives on (d, d, d));
    other counts repeat the channels and rescale by `base_chans / in_chans`. timm's `adapt_input_conv` only accepts
    4-D weights (its pretrained loader then falls back to random init); this folds t into the kernel height, calls it,
    and unfolds, so the arithmetic is timm's own. Returns `(O, in_chans, t, kh, kw)`, same dtype.
    """
    if conv_weight.ndim != 5:
        raise ValueError(f"adapt_input_conv3d expects a 5-D (O, I, t, kh, kw) weight, got {tuple(conv_weight.shape)}")
    o, i, t, kh, kw = conv_weight.shape
    w4 = adapt_input_conv(in_chans, conv_weight.reshape(o, i, t * kh, kw), base_chans=base_chans)
    return w4.reshape(o, w4.shape[1], t, kh, kw)


def inflate_conv2d(conv: nn.Conv2d, time_kernel: int = 3, causal: bool = False) -> TemporalConv3d:
    """I3D inflation of one Conv2d: weight (O, I, kh, kw) -> (O, I, t, kh, kw) = repeat over t / t; bias copied.

    A 1×1 conv gets t = 1. Temporal stride is 1 and the padding keeps T (centred: (t−1)//2 before and t//2 after;
    causal: t−1 before).
    """
    if type(conv) is not nn.Conv2d or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise TypeError(f"cannot inflate {conv!r}: only plain nn.Conv2d with integer zero padding is supported")
    t = time_kernel if max(conv.kernel_size) > 1 else 1
    pad = (t - 1, 0) if causal else ((t - 1) // 2, t // 2)
    w = conv.weight
    conv3d = TemporalConv3d(
        conv.in_channels, conv.out_channels, (t, *conv.kernel_size), stride=(1, *conv.stride),
        padding=(0, *conv.padding), dilation=(1, *conv.dilation), groups=conv.groups, bias=conv.bias is not None,
        time_pad=pad, device=w.device, dtype=w.dtype,
    )
    with torch.no_grad():
        conv3d.weight.copy_(w.unsqueeze(2).expand(-1, -1, t, -1, -1) / t)
        if conv.bias is not None:
            conv3d.bias.copy_(conv.bias)
    conv3d.weight.requires_grad_(w.requires_grad)
    if conv.bias is not None:
        conv3d.bias.requires_grad_(conv.bias.requires_grad)
    return conv3d.train(conv.training)


def _inflate_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    ref = bn.weight if bn.weight is not None else bn.running_mean
    bn3d = nn.BatchNorm3d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                          device=ref.device if ref is not None else None, dtype=ref.dtype if ref is not None else None)
    bn3d.load_state_dict(bn.state_dict())
    for p3, p2 in zip(bn3d.parameters(), bn.parameters()):
        p3.requires_grad_(p2.requires_grad)
    return bn3d.train(bn.training)


def _as_pair(v) -> Tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _inflate_pool(pool: nn.Module) -> nn.Module:
    return _pool3d(pool).train(pool.training)


def _pool3d(pool: nn.Module) -> nn.Module:
    k, s, p = _as_pair(pool.kernel_size), _as_pair(pool.stride or pool.kernel_size), _as_pair(pool.padding)
    if isinstance(pool, nn.MaxPool2d):
        if pool.return_indices:
            raise TypeError(f"cannot inflate {pool!r}: return_indices=True is not supported")
        return nn.MaxPool3d((1, *k), (1, *s), (0, *p), dilation=(1, *_as_pair(pool.dilation)), ceil_mode=pool.ceil_mode)
    return nn.AvgPool3d((1, *k), (1, *s), (0, *p), ceil_mode=pool.ceil_mode, count_include_pad=pool.count_include_pad,
                        divisor_override=pool.divisor_override)


def _is_pass_through(m: nn.Module) -> bool:
    return type(m) in _PASS_THROUGH or type(m).__module__.startswith("timm.layers.activations")


def _inflate_children(module: nn.Module, prefix: str, time_kernel: int, causal: bool, skip=()) -> None:
    for name, child in list(module.named_children()):
        if name in skip:
            continue
        path = f"{prefix}{name}"
        kind = type(child)
        if kind is nn.Conv2d:
            try:
                new = inflate_conv2d(child, time_kernel, causal)
            except TypeError as e:
                raise TypeError(f"inflated3d: module '{path}': {e}") from None
        elif kind is nn.BatchNorm2d:
            new = _inflate_bn(child)
        elif kind in (nn.MaxPool2d, nn.AvgPool2d):
            new = _inflate_pool(child)
        elif _is_pass_through(child):
            _inflate_children(child, f"{path}.", time_kernel, causal)
            continue
        else:
            raise TypeError(
                f"inflated3d: cannot inflate module '{path}' ({kind.__module__}.{kind.__name__}). Supported: plain "
                "Conv2d, BatchNorm2d, MaxPool2d/AvgPool2d, element-wise activations and ResNet blocks; use a timm "
                "ResNet without attention/anti-aliasing/DropBlock, or model.*_backbone.kind=frame2d."
            )
        setattr(module, name, new)


def inflate_2d_to_3d(model: nn.Module, time_kernel: int = 3, causal: bool = False) -> nn.Module:
    """Inflate a timm ResNet-family model in place (see the module docstring); returns the same object.

    Afterwards `model.forward_features` maps (B, C, T, H, W) -> (B, F, T, h, w); `forward_head` is left 2-D.
    Raises TypeError naming the first module that cannot be inflated (the model is then left partly converted).
    """
    if time_kernel < 1:
        raise ValueError(f"time_kernel must be >= 1, got {time_kernel} (model.*_backbone.time_kernel)")
    if not isinstance(model, _SUPPORTED_MODELS):
        names = ", ".join(c.__name__ for c in _SUPPORTED_MODELS)
        raise TypeError(f"inflated3d supports timm models of class {names} (e.g. resnet18, resnet50, r3d_resnet_tiny); "
                        f"got {type(model).__name__}. Use model.*_backbone.kind=frame2d for other timm models.")
    _inflate_children(model, "", time_kernel, causal, skip=_HEAD_CHILDREN)
    return model


def _strip_prefix(state: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_inflated_state_dict(model: nn.Module, state: Dict[str, Tensor], in_chans: int,
                             source: str = "state dict") -> None:
    """Load an inflated (5-D) checkpoint into an inflated timm model, adapting its stem to `in_chans` channels.

    Keys are the timm model's (`conv1.weight`, ...) or an `inflated3d` backbone's (`model.conv1.weight`, ...). The
    classifier (timm `pretrained_cfg['classifier']`) is dropped, the first conv(s) (`pretrained_cfg['first_conv']`)
    go through `adapt_input_conv3d` when their input channels differ, and everything else must match exactly.
    """
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    state = _strip_prefix(dict(state), "model.")
    for clf in [cfg.get("classifier")] if isinstance(cfg.get("classifier"), str) else cfg.get("classifier") or []:
        state.pop(f"{clf}.weight", None)
        state.pop(f"{clf}.bias", None)
    first = cfg.get("first_conv") or ()
    for conv_name in [first] if isinstance(first, str) else first:
        key = f"{conv_name}.weight"
        if key in state and state[key].ndim == 5 and state[key].shape[1] != model.get_submodule(conv_name).in_channels:
            state[key] = adapt_input_conv3d(in_chans, state[key], base_chans=state[key].shape[1])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        msg = f"{source}: does not fit the inflated model (same timm name and time_kernel?): {e}"
        raise RuntimeError(msg) from None


def _read_3d_checkpoint(path: str) -> Optional[Dict[str, Tensor]]:
    """The file's state dict if it holds inflated (5-D) conv weights, else None (a 2-D file: timm loads it)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretrained_file not found: {path} (model.*_backbone.pretrained_file)")
    state = timm_load_state_dict(path)
    return state if any(torch.is_tensor(v) and v.ndim == 5 for v in state.values()) else None


@BACKBONES.register("inflated3d")
class InflatedBackbone3D(FrameBackbone2D):
    """I3D-inflated timm ResNet (2-D weights, time stride 1): clip (B, T, C, H, W) -> one token per frame (B, T, F)."""

    def __init__(self, name: str, in_chans: int, img_size: int = 224, pretrained: bool = False,
                 pretrained_file: Optional[str] = None, freeze: bool = False, time_kernel: int = 3,
                 time_causal: bool = False) -> None:
        """`pretrained_file` may hold 2-D timm weights (loaded by timm, stem summed for depth, then inflated) or an
        inflated 5-D state dict (e.g. saved from this backbone; its stem is adapted with `adapt_input_conv3d`)."""
        file, record = resolve_weights(pretrained_file, name)
        state_3d = _read_3d_checkpoint(file) if file else None
        if state_3d is None:
            super().__init__(name, in_chans, img_size, pretrained, file, freeze)
        else:
            super().__init__(name, in_chans, img_size, freeze=freeze)
        inflate_2d_to_3d(self.model, time_kernel, time_causal)  # keeps requires_grad and train/eval (freeze)
        if state_3d is not None:
            load_inflated_state_dict(self.model, state_3d, in_chans, source=f"pretrained_file {pretrained_file}")
        self.weights = record  # the config's source (pip:NAME or the path), not the converted file
        self.time_kernel, self.time_causal = time_kernel, time_causal
        self.per_frame = time_kernel == 1  # a temporal kernel > 1 mixes neighbouring frames into each token
        self.causal = time_causal or time_kernel == 1

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C, H, W) -> (B, T, F); the spatial global pool is the timm model's own head, run per frame."""
        b, t = x.shape[:2]
        y = self.model.forward_features(x.transpose(1, 2))  # (B, F', T, h, w)
        y = self.model.forward_head(y.transpose(1, 2).flatten(0, 1))  # (B*T, F)
        return y.view(b, t, -1)
