"""EBR — Explicit Basis Reallocation (Chaudhuri, Dutta, Bui, Georgescu, "A Closer Look at Multimodal Representation
Collapse", ICML 2025, arXiv 2505.22483). No code was released; this follows the paper (docs/methods.md §EBR).

Per modality i: a projector h_i (2-layer MLP, C → hidden → d_g), a decoder h_i⁻¹ (2-layer MLP, d_g → hidden → C), and
one modality discriminator ψ (2-layer MLP, d_g → hidden → M) shared by all modalities. g_i = h_i(z_i); the fuser
receives ẑ_i = h_i⁻¹(g_i) instead of z_i. ψ minimises L_md = CE(ψ(g_i), i); encoders and projectors maximise it
(the modalities become indistinguishable in g-space, so each must spread over its own basis); decoders and the fusion
head see only the task loss. Variant: one backward pass of L_s + λ·CE(ψ(GRL(g)), modality id), with a gradient-reversal
layer of factor −1, classifying every token (B·T per modality) of the modalities present. Options: interleave blocks of
`period` epochs with and without L_md (0 = always on), and an off-by-default reconstruction loss ‖h⁻¹(h(z)) − z‖².

Missing modality at test time: after training, `calibrate` ranks for each modality i the others j by the mean cosine
similarity of g_i and g_j over validation samples where both are present (stored in the `similarity` buffer, so it is
part of the checkpoint). When i is missing, ẑ_i = h_i⁻¹(g_j) with j the best-ranked available modality — j's embedding
decoded by i's own decoder — and the fuser treats i as present.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import REGULARIZERS

Tensor = torch.Tensor


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by −scale backward (Ganin & Lempitsky, ICML 2015)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    return GradientReversal.apply(x, scale)


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    """The 2-layer MLP used for h_i, h_i⁻¹ and ψ: Linear → GELU → Linear."""
    return nn.Sequential(nn.Linear(inp, hidden), nn.GELU(), nn.Linear(hidden, out))


@REGULARIZERS.register("ebr")
class ExplicitBasisReallocation(nn.Module):
    """EBR (ICML 2025): per-modality projector/decoder, adversarial modality discriminator, missing-modality fill."""

    fills_missing: bool = True  # capability: tokens of a missing modality are substituted from a present one

    def __init__(self, modalities: Sequence[str], dim: int, g_dim: int = 64, hidden: int = 128, lam: float = 0.01,
                 period: int = 0, recon: float = 0.0) -> None:
        super().__init__()
        self.modalities: List[str] = list(modalities)
        self.lam = float(lam)
        self.period = int(period)
        self.recon = float(recon)
        self.projector = nn.ModuleDict({m: mlp(dim, hidden, g_dim) for m in self.modalities})
        self.decoder = nn.ModuleDict({m: mlp(g_dim, hidden, dim) for m in self.modalities})
        self.discriminator = mlp(g_dim, hidden, len(self.modalities))
        m = len(self.modalities)
        # similarity[i, j] = mean cos(g_i, g_j) on validation pairs where both are present; calibrated flag in [0].
        self.register_buffer("similarity", torch.zeros(m, m))
        self.register_buffer("calibrated", torch.zeros(1))
        self._epoch = 0
        self._cal_sum: Optional[Tensor] = None
        self._cal_count: Optional[Tensor] = None

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int,
                    num_classes: Mapping[str, int]) -> Optional["ExplicitBasisReallocation"]:
        e = cfg.model.ebr
        if not e.enabled:
            return None
        if len(modalities) < 2:
            raise ValueError("model.ebr.enabled needs at least two modalities (model.modalities)")
        return cls(modalities, dim, g_dim=e.dim, hidden=e.hidden, lam=e.lam, period=e.period, recon=e.recon)

    # -- schedule -----------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    @property
    def md_active(self) -> bool:
        """L_md is on in every epoch (period 0) or in alternate blocks of `period` epochs, starting with 'on'."""
        return self.lam > 0 and (self.period <= 0 or (self._epoch // self.period) % 2 == 0)

    # -- ranking ------------------------------------------------------------------------------------------------
    def ranking(self, i: int) -> List[int]:
        """Other modalities ordered best-first for substituting modality i (ties: config order)."""
        others = [j for j in range(len(self.modalities)) if j != i]
        if float(self.calibrated[0]) <= 0:
            return others
        return sorted(others, key=lambda j: (-float(self.similarity[i, j]), j))

    def begin_calibration(self) -> None:
        m = len(self.modalities)
        self._cal_sum = torch.zeros(m, m, dtype=torch.float64)
        self._cal_count = torch.zeros(m, m, dtype=torch.float64)

    def _accumulate(self, g: Dict[str, Tensor], present: Dict[str, Tensor]) -> None:
        pooled = {m: F.normalize(g[m].float().mean(1), dim=-1) for m in self.modalities}  # (B, d_g)
        for i, mi in enumerate(self.modalities):
            for j, mj in enumerate(self.modalities):
                if i == j:
                    continue
                both = present[mi] & present[mj]  # only pairs where both modalities are really there
                if both.any():
                    cos = (pooled[mi][both] * pooled[mj][both]).sum(-1)
                    self._cal_sum[i, j] += cos.detach().double().sum().cpu()
                    self._cal_count[i, j] += float(both.sum())

    def end_calibration(self, reduce_fn=None) -> Dict[str, Dict[str, float]]:
        """Store mean cosine similarities (sum/count, all-reduced by `reduce_fn` across processes if given)."""
        s, c = self._cal_sum, self._cal_count
        if s is None:
            raise RuntimeError("end_calibration without begin_calibration")
        if reduce_fn is not None:
            s, c = reduce_fn(s.to(self.similarity.device)).cpu(), reduce_fn(c.to(self.similarity.device)).cpu()
        sim = torch.where(c > 0, s / c.clamp_min(1), torch.zeros_like(s))
        self.similarity.copy_(sim.to(self.similarity))
        self.calibrated.fill_(1.0)
        self._cal_sum = self._cal_count = None
        return self.export_meta()["ebr"]

    def export_meta(self) -> Dict[str, Dict]:
        """Human-readable ranking for model.json (the tensor itself lives in the weights)."""
        names = self.modalities
        return {"ebr": {"similarity": {names[i]: {names[j]: round(float(self.similarity[i, j]), 6)
                                                  for j in range(len(names)) if j != i} for i in range(len(names))},
                        "ranking": {names[i]: [names[j] for j in self.ranking(i)] for i in range(len(names))},
                        "calibrated": bool(float(self.calibrated[0]) > 0)}}

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        """tokens {m: (B,T,C)} -> decoded ẑ {m: (B,T,C)}; missing modalities filled from the best available one."""
        g = {m: self.projector[m](tokens[m]) for m in self.modalities}  # (B, T, d_g)
        z_hat = {m: self.decoder[m](g[m]) for m in self.modalities}
        new_present = dict(present)
        substituted = torch.zeros((), device=g[self.modalities[0]].device)
        for i, mi in enumerate(self.modalities):
            missing = ~present[mi]
            if not missing.any():
                continue
            filled = torch.zeros_like(missing)
            for j in self.ranking(i):
                mj = self.modalities[j]
                use = missing & ~filled & present[mj]
                if use.any():
                    sub = self.decoder[mi](g[mj])  # j's embedding decoded by i's own decoder
                    z_hat[mi] = torch.where(use.view(-1, 1, 1), sub, z_hat[mi])
                    filled = filled | use
            z_hat[mi] = z_hat[mi] * (present[mi] | filled).view(-1, 1, 1).to(z_hat[mi].dtype)
            new_present[mi] = present[mi] | filled
            substituted = substituted + filled.float().sum()
        if self._cal_sum is not None:
            self._accumulate(g, present)
        losses: Dict[str, Tensor] = {}
        stats: Dict[str, Tensor] = {"ebr_substituted": substituted.detach()}
        if self.training and self.md_active:
            feats, labels = [], []
            for i, m in enumerate(self.modalities):
                sel = g[m][present[m]]  # (b_m, T, d_g): only modalities that are there
                feats.append(sel.reshape(-1, sel.shape[-1]))
                labels.append(torch.full((feats[-1].shape[0],), i, dtype=torch.long, device=sel.device))
            feats_t, labels_t = torch.cat(feats), torch.cat(labels)
            if feats_t.shape[0] > 0:
                logits = self.discriminator(grad_reverse(feats_t, 1.0))
                l_md = F.cross_entropy(logits.float(), labels_t)
                losses["ebr_md"] = self.lam * l_md
                stats["ebr_md"] = l_md.detach()
                stats["ebr_disc_acc"] = (logits.argmax(-1) == labels_t).float().mean().detach()
        if self.training and self.recon > 0:
            rec = [F.mse_loss(self.decoder[m](g[m])[present[m]].float(), tokens[m][present[m]].float())
                   for m in self.modalities if present[m].any()]
            if rec:
                losses["ebr_recon"] = self.recon * torch.stack(rec).mean()
        return z_hat, new_present, losses, stats
