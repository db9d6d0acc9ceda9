"""TokenFusion-like channel swap: each modality's lowest-scoring channels take the other's, then an SA-Fuser block.

R3D's ablation (Kim et al., "Countering Multi-modal Representation Collapse through Rank-targeted Fusion", WACV 2026;
github olivesgatech/R3D, `model/futr_safuser_tokenfusion.py`, method `CMFuser.token_fusion`), named after TokenFusion
(Wang et al., "Multimodal Token Fusion for Vision Transformers", CVPR 2022; github yikaiw/TokenFusion), whose idea it
borrows: find uninformative features and substitute the other modality's. Class name here -> name in the code:

    TokenFusion  "tokenfusion": per modality, score channels; REPLACE (not blend, unlike RTF) the k = int(ratio·C)
                 lowest-scoring channels with the other modality's same channels; stack per frame, dropout, SA-Fuser
                 block (full mask, i.e. AFFT's modality embedding + unmasked attention), a residual from the block input
                 to its output before the final LayerNorm (as R3D's `x = x + x_res`), mean of the two tokens -> fused.

Scores (`score`): "activation" = mean |x| per channel over the present samples and frames of the batch (R3D's eval
mode); "gradient" = mean |∂L/∂x| per channel. Variant: R3D takes the gradient of (mean of the features) inside the
forward, which is the same constant for every channel (a degenerate score); here it is the gradient of the real training
loss from the *previous* backward pass, captured by a tensor hook on each stream's tokens as the block sees them (after
the swap: how much the loss depends on channel c of stream m, whichever modality filled it — hooking the pre-swap tokens
would give replaced channels ~0 gradient and lock the selection in), kept as a running average (momentum
`GRAD_MOMENTUM`) in the buffers `grad_score` / `grad_seen` (saved with the weights). "auto" = gradient in training,
activation in eval. Until a backward has run (or when the tokens need no gradient) the gradient score falls back to
the activation score. Missing modality: its channels are never swapped in, its samples are left out of the activation
score, and it is masked out of the block's keys and the fused mean.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ...registry import FUSERS
from ..layers import R3D_NORM_EPS
from .base import Fuser, FuserOutput, bottom_k_mask, masked_mean
from .safuser import SAFuserBlock

Tensor = torch.Tensor

SCORES = ("auto", "activation", "gradient")


@FUSERS.register("tokenfusion")
class TokenFusion(Fuser):
    """R3D's TokenFusion ablation: replace the bottom ratio*C channels (|activation| or |gradient|), + SA-Fuser."""

    config_section = "tokenfusion"
    num_modalities = 2
    GRAD_MOMENTUM = 0.9  # running average of the per-channel |gradient| score over backward passes

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth"), ratio: float = 0.25,
                 score: str = "auto", heads: int = 8, mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__(dim, modalities)
        if score not in SCORES:
            raise ValueError(f"model.tokenfusion.score must be one of {SCORES}, got '{score}'")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"model.tokenfusion.ratio must be in [0, 1], got {ratio}")
        self.score = score
        self.k = int(ratio * dim)
        self.block = SAFuserBlock(dim, 2, heads, mlp_ratio, dropout, mask="full", residual=True, norm_eps=R3D_NORM_EPS)
        self.register_buffer("grad_score", torch.zeros(2, dim))  # running mean |dL/dx| per modality and channel
        self.register_buffer("grad_seen", torch.zeros(2, dtype=torch.bool))
        self.last_selected: Dict[str, Tensor] = {}  # {m: (B, C) bool} channels replaced in the last call
        self.last_score_mode = ""

    def _score_mode(self) -> str:
        if self.score == "auto":
            return "gradient" if self.training else "activation"
        return self.score

    @staticmethod
    def activation_score(x: Tensor, present: Tensor) -> Tensor:
        """Mean |x| per channel over present samples and all frames: (B, T, C), (B,) bool -> (C,) float32."""
        w = present.float()
        w = w if bool(w.any()) else torch.ones_like(w)
        return (x.detach().float().abs().mean(1) * w[:, None]).sum(0) / w.sum()

    def _grad_hook(self, i: int, present: Tensor):
        def hook(grad: Tensor) -> None:
            w = present.float() if bool(present.any()) else torch.ones_like(present, dtype=torch.float)
            s = (grad.detach().float().abs().mean(1) * w[:, None]).sum(0) / w.sum()
            with torch.no_grad():
                if bool(self.grad_seen[i]):
                    self.grad_score[i].mul_(self.GRAD_MOMENTUM).add_(s, alpha=1.0 - self.GRAD_MOMENTUM)
                else:
                    self.grad_score[i].copy_(s)
                    self.grad_seen[i] = True
        return hook

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C) and the two block outputs."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        b = p.shape[0]
        mode = self._score_mode()
        out: Dict[str, Tensor] = {}
        sel: Dict[str, Tensor] = {}
        for i, m in enumerate(self.modalities):
            j = 1 - i
            if mode == "gradient" and bool(self.grad_seen[i]):
                score = self.grad_score[i]
            else:
                score = self.activation_score(x[m], p[:, i])
            sel[m] = bottom_k_mask(score, self.k).expand(b, -1)
            use = sel[m] & p[:, j:j + 1]  # (B, C): selected, and the source modality is there
            out[m] = torch.where(use[:, None, :], x[self.modalities[j]], x[m])
            if mode == "gradient" and out[m].requires_grad:
                out[m].register_hook(self._grad_hook(i, p[:, i].detach()))
        self.last_selected = {m: s.detach() for m, s in sel.items()}
        self.last_score_mode = mode
        y = self.block(torch.stack([out[m] for m in self.modalities], dim=2), p)
        post = {m: y[:, :, i] for i, m in enumerate(self.modalities)}
        return self.output(masked_mean(y, p), post, p, dtype)
