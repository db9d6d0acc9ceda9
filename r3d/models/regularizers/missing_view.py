"""Missing-modality view — r3d's own remedy against modality collapse (no published source).

What it changes: during training every sample is seen twice. The fused prediction on the complete sample gets the usual
loss; a second pass of the *same* fuser and head sees the sample with one of its present streams removed (zeros +
presence mask, the stream drawn uniformly per sample), and that prediction gets the same verb / noun / action
cross-entropy, weighted by `model.missing_view.weight`. Samples with a single present stream have no second view.

Why: modality dropout (Neverova et al., ModDrop, TPAMI 2016; used by the EBR paper, Chaudhuri et al., ICML 2025) keeps
a stream the fused model would otherwise ignore, because the dropped samples can only be answered from the other one.
It pays for that by replacing the complete sample: when the streams carry *different* parts of the answer, a dropped
sample teaches little, and the fused model is trained on fewer complete samples. Here the complete sample always keeps
its full-weight loss and the dropped copy is extra, so the fused prediction loses none of its training signal, while
the fuser and head also learn to answer from each stream alone.

Variant: one extra view per sample (one stream removed, not every subset), made from the projected tokens before the
other regularisers, which then run on the view as on any batch: EBR fills the removed stream as it fills a missing one
at test time, modality dropout (if also on) may drop more. Their losses and the fuser's auxiliary loss count once, from
the complete samples. Cost: one more regulariser + fuser + head pass in training (the backbones run once). Inactive in
eval mode. Hook (see `r3d.models.regularizers`): `view_predictions(tokens, present, predict) -> {name: {"logits",
"valid", "weight"}}`, where `predict(tokens, present)` is `Anticipator.predict_view`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...registry import REGULARIZERS

Tensor = torch.Tensor


@REGULARIZERS.register("missing_view")
class MissingModalityView(nn.Module):
    """A second fused prediction per training sample with one stream removed, supervised like the first (r3d's own)."""

    def __init__(self, modalities: Sequence[str], weight: float) -> None:
        super().__init__()
        if not weight > 0:
            raise ValueError(f"model.missing_view.weight must be > 0 to enable the missing-modality view, got {weight}")
        self.modalities: List[str] = list(modalities)
        self.weight = float(weight)

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int) -> Optional["MissingModalityView"]:
        w = float(cfg.model.missing_view.weight)
        return cls(modalities, w) if w > 0 and len(modalities) > 1 else None

    def forward(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        """Tokens pass through unchanged (the work is in `view_predictions`)."""
        return tokens, present, {}, {}

    def drop_one(self, present: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """present {m: (B,)} -> (valid (B,) bool: samples with ≥ 2 present streams, now (M, V) bool: each valid
        sample's presence with one of its present streams, drawn uniformly, removed)."""
        was = torch.stack([present[m] for m in self.modalities])  # (M, B)
        valid = was.sum(0) >= 2
        now = was[:, valid].clone()  # (M, V)
        if now.shape[1]:
            drop = torch.multinomial(now.float().t(), 1).squeeze(1)  # (V,) one present stream per sample
            now[drop, torch.arange(now.shape[1], device=now.device)] = False
        return valid, now

    def view_predictions(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor],
                         predict: Callable[[Dict[str, Tensor], Dict[str, Tensor]], Dict[str, Tensor]]
                         ) -> Dict[str, Dict[str, Any]]:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> {"missing_view": {"logits": predict(view) {k: (V,K)},
        "valid": (B,) bool, "weight": w}} in training; {} in eval or when no sample has two streams."""
        if not self.training:
            return {}
        valid, now = self.drop_one(present)
        if not valid.any():
            return {}
        view_t = {m: tokens[m][valid] * now[i].view(-1, 1, 1).to(tokens[m].dtype)
                  for i, m in enumerate(self.modalities)}
        view_p = {m: now[i] for i, m in enumerate(self.modalities)}
        return {"missing_view": {"logits": predict(view_t, view_p), "valid": valid, "weight": self.weight}}
