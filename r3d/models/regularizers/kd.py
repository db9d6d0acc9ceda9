"""Cross-modal knowledge distillation — the EBR paper's implicit remedy for modality collapse (Chaudhuri et al.,
ICML 2025, §3.3; docs/methods.md §Cross-modal knowledge distillation).

Teacher = the surviving modality's encoder (stop-gradient), student = the collapsed modality's encoder. Variants
(`model.kd.loss`): `mse` (default) — mean squared error between same-sample, same-frame tokens; `cosine` — 1 − cosine
similarity of those tokens; `kl` — KL(teacher ‖ student) between the class distributions that the anticipation head
gives for each modality's tokens alone, at temperature τ, scaled by τ² (Hinton et al., 2015). Only samples where both
modalities are present count. The teacher side is detached, so KD never sends a gradient into the teacher.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import REGULARIZERS

Tensor = torch.Tensor


@REGULARIZERS.register("kd")
class CrossModalKD(nn.Module):
    """Cross-modal KD: student modality's tokens pulled toward the (stop-gradient) teacher modality's."""

    def __init__(self, teacher: str, student: str, loss: str = "mse", weight: float = 1.0,
                 temperature: float = 2.0) -> None:
        super().__init__()
        if loss not in ("mse", "cosine", "kl"):
            raise ValueError(f"model.kd.loss must be mse, cosine or kl, got '{loss}'")
        if teacher == student:
            raise ValueError(f"model.kd.teacher and model.kd.student must differ (both '{teacher}')")
        self.teacher, self.student, self.loss, self.weight, self.temperature = teacher, student, loss, weight, temperature

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int,
                    num_classes: Mapping[str, int]) -> Optional["CrossModalKD"]:
        k = cfg.model.kd
        if not k.enabled:
            return None
        for key in ("teacher", "student"):
            if k[key] not in modalities:
                raise ValueError(f"model.kd.{key}='{k[key]}' is not one of model.modalities {list(modalities)}")
        return cls(k.teacher, k.student, k.loss, k.weight, k.temperature)

    def forward(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        """Feature-level KD (mse/cosine) on tokens {m: (B,T,C)}; tokens pass through unchanged."""
        if not self.training or self.loss == "kl":
            return tokens, present, {}, {}
        both = present[self.teacher] & present[self.student]
        if not both.any():
            return tokens, present, {}, {}
        t = tokens[self.teacher][both].detach().float()
        s = tokens[self.student][both].float()
        if self.loss == "mse":
            value = F.mse_loss(s, t)
        else:
            value = (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
        return tokens, present, {"kd": self.weight * value}, {"kd": value.detach()}

    def head_losses(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor],
                    head: Callable[[Tensor], Dict[str, Tensor]]) -> Dict[str, Tensor]:
        """Logit-level KD (loss=kl): the head applied to each modality's tokens alone, teacher side without grad."""
        if not self.training or self.loss != "kl":
            return {}
        both = present[self.teacher] & present[self.student]
        if not both.any():
            return {}
        with torch.no_grad():
            t_logits = head(tokens[self.teacher][both].detach())
        s_logits = head(tokens[self.student][both])
        tau = self.temperature
        value = sum(F.kl_div(F.log_softmax(s_logits[k].float() / tau, -1), F.log_softmax(t_logits[k].float() / tau, -1),
                             reduction="batchmean", log_target=True) for k in s_logits) * tau * tau
        return {"kd": self.weight * value}
