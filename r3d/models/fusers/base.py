"""The Fuser contract shared by every fuser in `r3d/models/fusers/`, and small helpers for missing modalities.

A fuser is built as ``cls(dim=C, modalities=("rgb", "depth"), **cfg.model[cls.config_section], **cfg.model.fuser_args)``
and called as ``fuser(tokens, present) -> FuserOutput``:

- `tokens[m]` is (B, T, C) for every m in `modalities`; `present[m]` is a bool (B,) tensor (None = all present).
- A missing modality arrives as zeros. Every built-in fuser also zeroes it itself (`Fuser.prepare`), ignores it (no
  channel of it is blended, exchanged or attended to), averages only over the modalities that are present, and returns
  zeros as its post-fusion tokens, so nothing depends on what the caller put in an absent modality's slot.
- `FuserOutput.fused` is (B, T, C) (None only for late fusion, `separate_heads = True`); `FuserOutput.tokens[m]` are the
  per-modality tokens after fusion (what the collapse diagnostics measure); `aux_loss` is a scalar or None.
- Outputs have the dtype of the input tokens, also under `torch.autocast` (so a head sees the same dtype either way).
"""
from __future__ import annotations

from typing import ClassVar, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn

Tensor = torch.Tensor


class FuserOutput(NamedTuple):
    fused: Optional[Tensor]  # (B, T, C); None only for late fusion
    tokens: Dict[str, Tensor]  # per-modality tokens AFTER fusion, (B, T, C) each (what the diagnostics measure)
    aux_loss: Optional[Tensor]  # scalar added to the training loss (e.g. CEN's L1), or None


class Fuser(nn.Module):
    """Base class of all fusers: {m: (B, T, C)} tokens + presence -> FuserOutput."""

    config_section: ClassVar[Optional[str]] = None  # which model.<section> of the config holds its kwargs
    separate_heads: ClassVar[bool] = False  # True for late fusion: one head per modality, logits averaged
    num_modalities: ClassVar[Optional[int]] = None  # exact number of modalities the fuser needs (None = any ≥ 1)
    # True when, in eval mode, the output at frame t depends on the frame-t tokens only, so the fusion of a window cut
    # to its first n frames is the first n frames of the full window's fusion (the diagnostics' erank-vs-observed
    # curves then slice instead of re-running the fuser). False (safe default) when it mixes frames or samples.
    frame_local: ClassVar[bool] = False

    def __init__(self, dim: int, modalities: Sequence[str] = ("rgb", "depth")) -> None:
        super().__init__()
        self.dim = int(dim)
        self.modalities: Tuple[str, ...] = tuple(modalities)
        need = self.num_modalities
        if not self.modalities or (need is not None and len(self.modalities) != need):
            raise ValueError(
                f"fuser {type(self).__name__} fuses exactly {need} modalities, got model.modalities="
                f"{list(self.modalities)}; use concat, sum, late or safuser for another number of modalities"
                if need is not None else f"fuser {type(self).__name__} needs at least one modality"
            )

    def forward(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None) -> FuserOutput:
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------------------------------
    def prepare(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]]
                ) -> Tuple[Dict[str, Tensor], Tensor]:
        """Check shapes; return ({m: (B,T,C), absent samples zeroed}, presence (B, M) bool in `modalities` order)."""
        missing = [m for m in self.modalities if m not in tokens]
        if missing:
            raise KeyError(f"{type(self).__name__}: no tokens for modalities {missing} (got {sorted(tokens)})")
        ref = tokens[self.modalities[0]]
        if ref.dim() != 3 or ref.shape[-1] != self.dim:
            raise ValueError(f"{type(self).__name__}: tokens must be (B, T, {self.dim}), got {tuple(ref.shape)} "
                             f"for '{self.modalities[0]}'")
        for m in self.modalities:
            if tokens[m].shape != ref.shape:
                raise ValueError(f"{type(self).__name__}: tokens['{m}'] is {tuple(tokens[m].shape)}, expected "
                                 f"{tuple(ref.shape)} like '{self.modalities[0]}'")
        b = ref.shape[0]
        if present is None:
            return dict(tokens), torch.ones(b, len(self.modalities), dtype=torch.bool, device=ref.device)
        p = torch.stack([present[m].to(device=ref.device, dtype=torch.bool).reshape(b) for m in self.modalities], 1)
        if bool(p.all()):
            return dict(tokens), p
        return {m: tokens[m] * p[:, i].view(b, 1, 1).to(tokens[m].dtype) for i, m in enumerate(self.modalities)}, p

    def output(self, fused: Optional[Tensor], tokens: Dict[str, Tensor], present: Tensor, dtype: torch.dtype,
               aux_loss: Optional[Tensor] = None) -> FuserOutput:
        """Zero the absent modalities' post-fusion tokens and cast `fused` / `tokens` to `dtype` (the input dtype)."""
        b = present.shape[0]
        out = {m: (tokens[m] * present[:, i].view(b, 1, 1).to(tokens[m].dtype)).to(dtype)
               for i, m in enumerate(self.modalities)}
        return FuserOutput(None if fused is None else fused.to(dtype), out, aux_loss)


def masked_mean(stack: Tensor, present: Tensor) -> Tensor:
    """Mean over the present modalities: stack (B, T, M, C), present (B, M) bool -> (B, T, C).

    A sample with no modality present averages all M slots (which are zeros), so the result stays finite.
    """
    w = present.to(stack.dtype)
    w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))
    w = w / w.sum(1, keepdim=True)
    return (stack * w[:, None, :, None]).sum(2)


def bottom_k_mask(score: Tensor, k: int) -> Tensor:
    """Bool mask of the k lowest entries of `score` along the last dim (ties: lowest index first): (..., C)."""
    mask = torch.zeros(score.shape, dtype=torch.bool, device=score.device)
    if k > 0:
        idx = torch.argsort(score, dim=-1, stable=True)[..., :k]
        mask.scatter_(-1, idx, True)
    return mask
