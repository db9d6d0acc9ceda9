"""Unimodal supervision through the shared head — r3d's own remedy against modality collapse (no published source).

What it changes: during training, each modality's tokens (after the other regularisers, before fusion) also go
through the anticipation head *alone*, and those predictions get the same verb / noun / action cross-entropy as the
fused one, weighted by `model.unimodal.weight`. Why: in a model trained only on fused predictions the stream that is
learned first (RGB, usually) can carry the whole loss, and the other stream's encoder stops receiving a useful
gradient — modality collapse as the EBR paper defines it. Supervising every stream on its own keeps each one
predictive of the label in the head's input space, on every sample (modality dropout does it for a random fraction
of the samples, at the price of hiding a stream from the fused prediction). It adds no parameters; the head is
shared, so a stream's tokens stay readable by the head when the other stream is missing at test time.

Hook (see `r3d.models.regularizers`): `head_predictions(tokens, present, head) -> {name: {"logits", "valid"}}`;
the anticipator returns them as ``outputs["aux_logits"]`` and the next-action loss adds their weighted CE
(`r3d.engine.losses.anticipation_loss`). Next-action protocol only. Inactive in eval mode.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...registry import REGULARIZERS

Tensor = torch.Tensor


@REGULARIZERS.register("unimodal")
class UnimodalSupervision(nn.Module):
    """Each modality's tokens alone through the shared head, supervised like the fused prediction (r3d's own)."""

    def __init__(self, modalities: Sequence[str], weight: float) -> None:
        super().__init__()
        if not weight > 0:
            raise ValueError(f"model.unimodal.weight must be > 0 to enable unimodal supervision, got {weight}")
        self.modalities: List[str] = list(modalities)
        self.weight = float(weight)

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int,
                    num_classes: Mapping[str, int]) -> Optional["UnimodalSupervision"]:
        w = float(cfg.model.unimodal.weight)
        return cls(modalities, w) if w > 0 and len(modalities) > 1 else None

    def forward(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        """Tokens pass through unchanged (the work is in `head_predictions`)."""
        return tokens, present, {}, {}

    def head_predictions(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor],
                         head: Callable[[Tensor], Dict[str, Tensor]]) -> Dict[str, Dict[str, Any]]:
        """{"unimodal_<m>": {"logits": head(tokens[m] of the samples where m is present), "valid": (B,) bool,
        "weight": w}} for each modality, in training; {} in eval."""
        if not self.training:
            return {}
        out: Dict[str, Dict[str, Any]] = {}
        for m in self.modalities:
            valid = present[m]
            if valid.any():
                out[f"unimodal_{m}"] = {"logits": head(tokens[m][valid]), "valid": valid, "weight": self.weight}
        return out
