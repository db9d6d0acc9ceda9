"""Token-level regularisers that run between the per-modality projections and the fuser.

Each one is an `nn.Module` registered in `r3d.registry.REGULARIZERS` with
`forward(tokens: {m: (B,T,C)}, present: {m: bool (B,)}) -> (tokens, present, losses: {name: scalar}, stats: {name: scalar})`
and a classmethod `from_config(cfg, modalities, dim, num_classes) -> Optional[module]` (num_classes {verb, noun,
action: K}) that returns None when disabled. A regulariser
that needs the anticipation head (logit-level KD) also defines `head_losses(tokens, present, head) -> {name: scalar}`,
called after fusion with the tokens it produced. Optional hooks: `set_epoch(epoch)`, `begin_calibration()` /
`end_calibration(reduce_fn)` around a validation pass, `export_meta() -> dict` for model.json,
`head_predictions(tokens, present, head) -> {name: {"logits", "valid", "weight"}}` for extra predictions the loss
supervises with the sample's own labels (unimodal supervision),
`view_predictions(tokens, present, predict) -> {name: {"logits", "valid", "weight"[, "sample_weights"]}}` for extra
predictions of other views of the samples, where `predict(tokens, present)` runs the other regularisers, the fuser and
the head on them (the missing-modality view); an optional `sample_weights(key, target (V,)) -> (V,)` weighs each
sample's cross-entropy on head `key` (the loss then divides by the number of labelled samples, not by the weights).
Capability attribute:
`fills_missing = True` when the regulariser substitutes a missing modality's tokens (EBR); absent means False.
They run in the order of `ORDER` (modality dropout first, so that EBR sees and fills the dropped modality).
"""
from __future__ import annotations

from typing import List, Mapping, Sequence

import torch.nn as nn

from ...registry import REGULARIZERS
from . import dropout, ebr, kd, missing_view, unimodal  # noqa: F401,E402  (register the built-ins)

ORDER: List[str] = ["modality_dropout", "kd", "ebr", "unimodal", "missing_view"]


def build_regularizers(cfg, modalities: Sequence[str], dim: int, num_classes: Mapping[str, int]) -> List[nn.Module]:
    """The enabled regularisers, in `ORDER`, then any other registered ones (plugins) that enable themselves."""
    names = [n for n in ORDER if n in REGULARIZERS] + [n for n in REGULARIZERS.names() if n not in ORDER]
    out = []
    for name in names:
        reg = REGULARIZERS.get(name).from_config(cfg, list(modalities), dim, dict(num_classes))
        if reg is not None:
            out.append(reg)
    return out
