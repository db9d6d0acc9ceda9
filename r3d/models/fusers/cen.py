"""CEN channel exchange: BN per modality; channels whose BN |γ| fell below a threshold take the other modality's value.

From CEN (Wang, Huang, Sun, Xu, Rong, Huang, "Deep Multimodal Fusion by Channel Exchanging", NeurIPS 2020; github
yikaiw/CEN, `semantic_segmentation/models/modules.py` class `Exchange` and the `slim_params` L1 penalty in `main.py`),
as a baseline of RTF (docs/methods.md §CEN). Class name here -> name in the paper / code:

    ChannelExchange  "cen": BatchNorm1d(C) per modality over batch × time; modality 0 (rgb) owns the first half of the
                     channels [0, C//2) and modality 1 (depth) the second half [C//2, C) (CEN's split of `slim_params`:
                     `param[:len//2]` for the first parallel BN, `param[len//2:]` for the second). In its own half, a
                     channel with |γ| < threshold is replaced by the other modality's same (post-BN) channel.
                     aux_loss = l1 · (Σ_{c<C//2} |γ_rgb,c| + Σ_{c≥C//2} |γ_depth,c|) — CEN's sparsity term on the
                     designated halves, which drives those γ towards 0 so that exchanging starts.

Variant notes. CEN's `Exchange` tests every channel against the threshold, but only the penalised half ever reaches it;
here the exchange is restricted to the designated half (r3d's choice), so an unpenalised channel is never exchanged.
CEN exchanges inside every block of two parallel CNNs and ensembles per-modality predictions; here it is one exchange
on the (B, T, C) tokens, and the fused tokens are the mean of the two exchanged streams over the present modalities
(parameter-free, so the BN layers are the only parameters). Missing modality: nothing of it is exchanged in, its BN
statistics come from the present samples only, it is left out of the mean, and its post-fusion tokens are zeros.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from ...registry import FUSERS
from ..layers import masked_batch_norm
from .base import Fuser, FuserOutput, masked_mean

Tensor = torch.Tensor


@FUSERS.register("cen")
class ChannelExchange(Fuser):
    """CEN channel exchanging: small-|BN gamma| channels of a designated half take the other modality's; L1 on gamma."""

    frame_local = True  # per-frame in eval mode (BN running statistics; see Fuser.frame_local)
    config_section = "cen"
    num_modalities = 2

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth"), l1: float = 2e-4,
                 threshold: float = 2e-2) -> None:
        super().__init__(dim, modalities)
        self.l1 = float(l1)
        self.threshold = float(threshold)
        self.norms = nn.ModuleDict({m: nn.BatchNorm1d(dim) for m in self.modalities})
        half = torch.zeros(2, dim, dtype=torch.bool)
        half[0, : dim // 2] = True
        half[1, dim // 2:] = True
        self.register_buffer("designated", half, persistent=False)  # (2, C): the channels each modality may give up
        self.last_exchanged: Dict[str, Tensor] = {}  # {m: (C,) bool} channels of m replaced in the last call

    def l1_loss(self) -> Tensor:
        """l1 · Σ |γ| over the designated halves (a float32 scalar that carries the gradient to γ)."""
        total = sum(self.norms[m].weight[self.designated[i]].abs().sum() for i, m in enumerate(self.modalities))
        return self.l1 * total

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C) = mean of the exchanged streams; aux_loss = L1."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        x = {m: masked_batch_norm(self.norms[m], x[m], p[:, i]) for i, m in enumerate(self.modalities)}
        out: Dict[str, Tensor] = {}
        self.last_exchanged = {}
        for i, m in enumerate(self.modalities):
            j = 1 - i
            swap = self.designated[i] & (self.norms[m].weight.detach().abs() < self.threshold)  # (C,)
            use = swap[None, :] & p[:, j:j + 1]  # (B, C): and the other modality is there
            out[m] = torch.where(use[:, None, :], x[self.modalities[j]], x[m])
            self.last_exchanged[m] = swap
        stack = torch.stack([out[m] for m in self.modalities], dim=2)
        return self.output(masked_mean(stack, p), out, p, dtype, aux_loss=self.l1_loss())
