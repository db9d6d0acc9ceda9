"""Modality dropout: drop a whole modality per sample during training (zeros + presence mask).

As used by the EBR paper (Chaudhuri et al., ICML 2025, §4) and earlier multimodal work (e.g. Neverova et al., ModDrop,
TPAMI 2016) to make a model usable when a sensor is missing. Variant: each modality of each training sample is dropped
independently with probability p; if that would drop every modality of a sample, one of them (chosen at random) is
kept. It composes with any fuser: the fuser sees zeros and `present[m] = False`, exactly as for a genuinely missing
modality. Inactive in eval mode.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...registry import REGULARIZERS

Tensor = torch.Tensor


@REGULARIZERS.register("modality_dropout")
class ModalityDropout(nn.Module):
    """Per-sample dropout of whole modalities in training (model.modality_dropout = p)."""

    def __init__(self, modalities: Sequence[str], p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"model.modality_dropout must be in [0, 1), got {p}")
        self.modalities: List[str] = list(modalities)
        self.p = float(p)

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int,
                    num_classes: Mapping[str, int]) -> Optional["ModalityDropout"]:
        p = float(cfg.model.modality_dropout)
        return cls(modalities, p) if p > 0 and len(modalities) > 1 else None

    def forward(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> same, with dropped modalities zeroed and marked absent."""
        if not self.training:
            return tokens, present, {}, {}
        b = next(iter(tokens.values())).shape[0]
        device = next(iter(tokens.values())).device
        keep = torch.rand(len(self.modalities), b, device=device) >= self.p  # (M, B)
        was = torch.stack([present[m] for m in self.modalities])  # (M, B)
        now = keep & was
        empty = ~now.any(0) & was.any(0)  # samples that had something but would lose everything
        if empty.any():
            pick = torch.multinomial(was[:, empty].float().t(), 1).squeeze(1)  # one present modality per sample
            now[pick, empty.nonzero().squeeze(1)] = True
        out_t, out_p = {}, {}
        for i, m in enumerate(self.modalities):
            out_p[m] = now[i]
            out_t[m] = tokens[m] * now[i].view(b, 1, 1).to(tokens[m].dtype)
        dropped = (was & ~now).float().mean()
        return out_t, out_p, {}, {"modality_dropped": dropped.detach()}
