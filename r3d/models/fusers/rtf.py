"""RTF — Rank-enhancing Token Fuser: blend the other modality into each modality's least informative channels.

From R3D (Kim, Kokilepersaud, Prabhushankar, AlRegib, "Countering Multi-modal Representation Collapse through
Rank-targeted Fusion", WACV 2026, arXiv 2511.06450; github olivesgatech/R3D, `model/futr_safuser_batchnormalization.py`,
method `CMFuser.token_fusion`). Class name here -> name in the paper / code:

    RTF     "rtf": RTF followed by the SA-Fuser block with the cross-only mask (`fuser_block`), i.e. R3D's whole fuser.
            select=bn (default): RTF, BN-γ selection as in the released R3D code — BatchNorm1d(C) per modality over
            batch × time, the k = int(ratio·C) channels with the smallest |γ| (recomputed every forward, not
            differentiable, so a fixed set at inference), one α ∈ R^C shared by both directions, U[0,1) init, not
            clamped: a'[..., I_a] = α·a + (1−α)·b (α weights the modality's own channel). Ties in |γ| go to the
            lowest channel indices (a stable sort), where the released code's `torch.topk(largest=False)` leaves the
            order of equal values unspecified; ties only occur before the second optimiser step (BN's γ starts at 1
            everywhere and the first step moves each channel's γ by its own gradient). The SA-Fuser block after it
            uses R3D's LayerNorm eps 1e-5; with copied weights the forward equals R3D's `CMFuser` (tests/
            test_fusers.py checks it against an independent re-derivation to 1e-6).
            select=svd: RTF, SVD-energy selection as the paper text describes (the first author's "paper-style" RTF) —
            no BN; per sample and modality, without gradient and in float32 (also under autocast): centre over the
            tokens, SVD, I_c = Σ_{i<q} S_i² V_{c,i}² with q = min(svd_rank, T−1, C) (per-channel variance if the SVD
            fails or q < 1); the k = round(ratio·C) lowest-I_c channels per sample; α_c = sigmoid(logit_c), logit 0 at
            init, a separate vector per direction: x_c ← α_c·y_c + (1−α_c)·x_c (α weights the *other* modality).
    RTFSVD  "rtf_svd": a subclass of RTF with select forced to svd (same config section, model.rtf).

Open choices (config keys of `model.rtf`): `alpha_init` (None = the variant's own init; a number sets every α to it),
`alpha_param` (None = the variant's own; "linear" = one shared unclamped vector, "sigmoid" = sigmoid of a logit vector
per direction), `fuser_block` (False: fused = mean of the two RTF outputs, which are the post-fusion tokens), and the
SA-Fuser block's heads / mlp_ratio / dropout (R3D: 8, 4, 0.1). The blend formula follows `select` (bn: α on the own
channel; svd: α on the other's); at the default inits (U[0,1) / 0.5) the two conventions are the same distribution.

Missing modality (choice): nothing of an absent modality is blended in — a channel of sample n is blended only when the
source modality is present for n; an absent modality's BN statistics come from the present samples only (absent samples
stay zeros), it is masked out of the SA-Fuser keys and the fused mean, and its post-fusion tokens are zeros. The α
entries of channels that are never selected get no gradient, by construction.
"""
from __future__ import annotations

import inspect
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from ...registry import FUSERS
from ..layers import R3D_NORM_EPS, masked_batch_norm
from .base import Fuser, FuserOutput, bottom_k_mask, masked_mean
from .safuser import SAFuserBlock

Tensor = torch.Tensor

SELECTS = ("bn", "svd")
ALPHA_PARAMS = ("linear", "sigmoid")


@torch.no_grad()
def svd_channel_importance(x: Tensor, rank: int) -> Tensor:
    """Energy of each channel inside the top-q right-singular subspace of the token-centred x: (B, T, C) -> (B, C).

    I_c = Σ_{i<q} S_i² V_{c,i}², q = min(rank, T−1, C), computed in float32 without gradient (autocast disabled).
    Falls back to the per-channel variance over tokens when q < 1, the SVD raises, or its result is not finite.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        xc = x.detach().float()
        xc = xc - xc.mean(dim=1, keepdim=True)
        _, t, c = xc.shape
        var = xc.pow(2).mean(dim=1)
        q = min(int(rank), t - 1, c)
        if q < 1:
            return var
        try:
            _, s, vh = torch.linalg.svd(xc, full_matrices=False)
        except RuntimeError:  # torch.linalg.LinAlgError (no convergence) is a RuntimeError
            return var
        imp = (s[:, :q, None].pow(2) * vh[:, :q, :].pow(2)).sum(dim=1)
        return torch.where(torch.isfinite(imp).all(dim=-1, keepdim=True), imp, var)


@FUSERS.register("rtf")
class RTF(Fuser):
    """R3D's Rank-enhancing Token Fuser (BN-γ or SVD channel selection), then the cross-mask SA-Fuser block."""

    config_section = "rtf"
    num_modalities = 2

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth"), select: str = "bn", ratio: float = 0.1,
                 alpha_init: Optional[float] = None, alpha_param: Optional[str] = None, svd_rank: int = 64,
                 fuser_block: bool = True, heads: int = 8, mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__(dim, modalities)
        if select not in SELECTS:
            raise ValueError(f"model.rtf.select must be one of {SELECTS}, got '{select}'")
        alpha_param = alpha_param or ("linear" if select == "bn" else "sigmoid")
        if alpha_param not in ALPHA_PARAMS:
            raise ValueError(f"model.rtf.alpha_param must be null or one of {ALPHA_PARAMS}, got '{alpha_param}'")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"model.rtf.ratio must be in [0, 1], got {ratio}")
        self.select = select
        self.frame_local = select == "bn"  # eval BN + a fixed γ-chosen set; svd selects per sample over all T tokens
        self.alpha_param = alpha_param
        self.svd_rank = int(svd_rank)
        self.k = int(ratio * dim) if select == "bn" else int(round(ratio * dim))
        self.norms = nn.ModuleDict({m: nn.BatchNorm1d(dim) for m in self.modalities}) if select == "bn" else None
        if alpha_param == "linear":
            init = torch.rand(dim) if alpha_init is None else torch.full((dim,), float(alpha_init))
            self.alpha = nn.Parameter(init)
        else:
            if alpha_init is not None and not 0.0 < alpha_init < 1.0:
                raise ValueError(f"model.rtf.alpha_init must be in (0, 1) with alpha_param=sigmoid, got {alpha_init}")
            logit = 0.0 if alpha_init is None else math.log(alpha_init / (1.0 - alpha_init))
            self.alpha_logit = nn.Parameter(torch.full((2, dim), logit))  # row i: direction into modalities[i]
        self.block = SAFuserBlock(dim, 2, heads, mlp_ratio, dropout, mask="cross", norm_eps=R3D_NORM_EPS) \
            if fuser_block else None
        self.last_selected: Dict[str, Tensor] = {}  # {m: (B, C) bool} channels blended in the last call

    def alphas(self) -> Tensor:
        """(2, C): row i holds the α of the direction into `modalities[i]`."""
        if self.alpha_param == "linear":
            return self.alpha.unsqueeze(0).expand(2, -1)
        return torch.sigmoid(self.alpha_logit)

    def select_channels(self, x: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """{m: (B, T, C)} (after BN for select=bn) -> {m: (B, C) bool}, the k channels of m that receive the blend."""
        b = x[self.modalities[0]].shape[0]
        if self.select == "bn":
            return {m: bottom_k_mask(self.norms[m].weight.detach().abs(), self.k).expand(b, -1)
                    for m in self.modalities}
        return {m: bottom_k_mask(svd_channel_importance(x[m], self.svd_rank), self.k) for m in self.modalities}

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> fused (B,T,C) and the per-modality tokens after RTF (+ block)."""
        x, p = self.prepare(tokens, present)
        dtype = x[self.modalities[0]].dtype
        if self.norms is not None:
            x = {m: masked_batch_norm(self.norms[m], x[m], p[:, i]) for i, m in enumerate(self.modalities)}
        sel = self.select_channels(x)
        alpha = self.alphas()
        out: Dict[str, Tensor] = {}
        for i, m in enumerate(self.modalities):
            j = 1 - i
            o = self.modalities[j]
            a = alpha[i]
            if self.select == "bn":
                blended = a * x[m] + (1 - a) * x[o]
            else:
                blended = a * x[o] + (1 - a) * x[m]
            use = sel[m] & p[:, j:j + 1]  # (B, C): selected, and the source modality is there
            out[m] = torch.where(use[:, None, :], blended, x[m])
        self.last_selected = {m: s.detach() for m, s in sel.items()}
        stack = torch.stack([out[m] for m in self.modalities], dim=2)  # (B, T, 2, C)
        if self.block is not None:
            stack = self.block(stack, p)
            out = {m: stack[:, :, i] for i, m in enumerate(self.modalities)}
        return self.output(masked_mean(stack, p), out, p, dtype)


@FUSERS.register("rtf_svd")
class RTFSVD(RTF):
    """RTF with per-sample SVD-energy channel selection (the paper text's variant); same keys as model.rtf."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["select"] = "svd"
        super().__init__(*args, **kwargs)

    __init__.__signature__ = inspect.signature(RTF.__init__)  # same keys as model.rtf (select is overridden)
