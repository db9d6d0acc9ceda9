"""Training objective: verb / noun / action cross-entropy plus the auxiliary losses the model reports."""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def anticipation_loss(outputs: Mapping[str, Any], batch: Mapping[str, Any], weights: Mapping[str, float],
                      label_smoothing: float = 0.0,
                      sample_weights: Optional[Callable[[str, Tensor], Tensor]] = None
                      ) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Weighted CE on each head, plus the same CE on every extra prediction in `outputs["aux_logits"]` (its samples'
    labels, times its weight and its optional per-sample `sample_weights`), plus every auxiliary loss in
    `outputs["losses"]` (already weighted by its module).

    Labels < 0 (no label) and labels ≥ the number of classes (an action pair never seen in training) are ignored.
    sample_weights(key, target (B,)) -> (B,): each sample's CE on head `key` is multiplied by its weight and the sum is
    divided by the number of labelled samples (a weight of 0 removes a sample's loss, it does not renormalise).
    Returns (total scalar, {name: detached scalar}) for logging.
    """
    total = None
    parts: Dict[str, Tensor] = {}
    for key, logits in outputs["logits"].items():
        w = float(weights.get(key, 1.0))
        if w == 0.0:
            continue
        target = batch[key].to(logits.device).long()
        target = torch.where((target >= 0) & (target < logits.shape[-1]), target, torch.full_like(target, -100))
        if (target >= 0).any() and sample_weights is not None:
            per = F.cross_entropy(logits.float(), target, ignore_index=-100, label_smoothing=label_smoothing,
                                  reduction="none")
            loss = (per * sample_weights(key, target).to(per.dtype)).sum() / (target >= 0).sum()
        elif (target >= 0).any():
            loss = F.cross_entropy(logits.float(), target, ignore_index=-100, label_smoothing=label_smoothing)
        else:  # a batch with no usable label of this kind still keeps the graph connected
            loss = logits.float().sum() * 0.0
        parts[key] = loss.detach()
        total = w * loss if total is None else total + w * loss
    for name, aux in outputs.get("aux_logits", {}).items():  # e.g. unimodal supervision: same labels, a subset
        valid = aux["valid"]
        sub = {k: batch[k][valid.to(batch[k].device)] for k in aux["logits"]}
        loss, _ = anticipation_loss({"logits": aux["logits"]}, sub, weights, label_smoothing,
                                    aux.get("sample_weights"))
        parts[name] = loss.detach()
        total = aux["weight"] * loss if total is None else total + aux["weight"] * loss
    for name, aux in outputs.get("losses", {}).items():
        parts[name] = aux.detach().float()
        total = aux.float() if total is None else total + aux.float()
    if total is None:
        raise ValueError("no loss to optimise: every train.loss_weights entry is 0 and the model has no auxiliary loss")
    return total, parts
