"""Gated fusion: per frame and channel, fused = g ⊙ a + (1 − g) ⊙ b with g = σ(W [a; b] + c).

Class name → paper name: `GatedFuser` → the Gated Multimodal Unit (GMU) of Arevalo et al., "Gated Multimodal Units for
Information Fusion", ICLR 2017 workshop (arXiv:1702.01992; original code github.com/johnarevalo/gmu-mmimdb).

Variant ("GMU-style gated sum"): the gate z = σ(W_z [x_v; x_t]) is the GMU's, one value per channel, but the two
inputs are mixed directly, without the GMU's tanh(W_v x_v) / tanh(W_t x_t) projections, because r3d has already
projected every modality to C channels (Linear + LayerNorm). The gate is computed per frame (T tokens, T gates).

Missing modalities (the `present` mask): when only one modality is present its gate is forced to 1 (fused = its
tokens, not a mixture with zeros); when none is, fused is zeros. The post-fusion per-modality tokens are the inputs
(absent ones zeroed), as for r3d's `sum` and `concat` fusers.

This file is the worked example of an r3d plugin: it subclasses `r3d.models.fusers.base.Fuser` and registers itself
with `@FUSERS.register("gated")`. r3d imports it through the entry point declared in this package's pyproject.toml
(group `r3d.plugins`), or through the config key `custom_imports: [r3d_plugin_example.gated_fuser]`.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from r3d.models.fusers.base import Fuser, FuserOutput
from r3d.registry import FUSERS

Tensor = torch.Tensor


@FUSERS.register("gated")
class GatedFuser(Fuser):
    """GMU-style gated sum (Arevalo et al. 2017): g = sigmoid(Linear([a; b])), fused = g*a + (1-g)*b."""

    num_modalities = 2  # the gate weighs one modality against the other

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth"), gate_bias: float = 0.0) -> None:
        """`gate_bias` (from `model.fuser_args`) is the gate's initial bias: 0 starts near an equal mix, > 0 favours
        the first modality of `model.modalities`."""
        super().__init__(dim, modalities)
        self.gate = nn.Linear(2 * dim, dim)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C); tokens passed through (absent ones zeroed)."""
        x, p = self.prepare(tokens, present)  # absent modalities zeroed; p (B, 2) bool
        dtype = x[self.modalities[0]].dtype
        a, b = (x[m] for m in self.modalities)
        g = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))  # (B, T, C)
        only_a = (p[:, 0] & ~p[:, 1]).view(-1, 1, 1)
        only_b = (~p[:, 0] & p[:, 1]).view(-1, 1, 1)
        g = torch.where(only_a, torch.ones_like(g), torch.where(only_b, torch.zeros_like(g), g))
        fused = g * a + (1 - g) * b
        return self.output(fused, x, p, dtype)
