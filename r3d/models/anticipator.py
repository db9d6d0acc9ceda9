"""The RGB-D anticipator: per-modality backbones → projection to C → regularisers → fuser → temporal head.

```
frames[m] (B,T,Cin,H,W) --backbone[m]--> feats[m] (B,T,F_m) --proj[m]--> tokens_pre[m] (B,T,C)
tokens_pre --regularisers (modality dropout, EBR h⁻¹(h(z)) and missing-modality substitution, KD loss)-->
        --fuser--> fused (B,T,C) + tokens_post[m] (B,T,C) --head--> logits {verb, noun, action}
```
The three stages are separate methods (`encode_frames`, `project`, `forward_tokens`) so that the feature cache (which
stores `feats`) and the streaming demo (which keeps `feats` in a ring buffer) reuse exactly the training computation.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import Config
from ..registry import FUSERS, HEADS
from . import fusers as _fusers  # noqa: F401  (register built-in fusers)
from . import heads as _heads  # noqa: F401  (register built-in heads)
from .backbones import build_backbone
from .layers import masked_batch_norm
from .regularizers import build_regularizers

Tensor = torch.Tensor


def build_fuser(cfg: Config, modalities: Sequence[str]) -> nn.Module:
    """The fuser named by `model.fuser` (or `identity` for a unimodal model), with its config section as kwargs."""
    name = cfg.model.fuser if len(modalities) > 1 else "identity"
    cls = FUSERS.get(name)
    section = getattr(cls, "config_section", None)
    kwargs: Dict[str, Any] = dict(cfg.model.get(section, {}) or {}) if section else {}
    kwargs.update(cfg.model.fuser_args or {})
    return FUSERS.build(name, dim=cfg.model.dim, modalities=tuple(modalities), **kwargs)


class Anticipator(nn.Module):
    """RGB-D next-action anticipator assembled from the config (see module docstring for the data flow)."""

    def __init__(self, cfg: Config, num_classes: Mapping[str, int], actions: Optional[Sequence[Sequence[int]]] = None):
        super().__init__()
        self.modalities: List[str] = list(cfg.model.modalities)
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"model.modalities must be a non-empty list without repeats, got {self.modalities}")
        self.num_classes = dict(num_classes)
        self.dim = cfg.model.dim
        self.num_frames = cfg.data.num_frames
        self.action_from = cfg.model.action_from
        if self.action_from not in ("head", "product"):
            raise ValueError(f"model.action_from must be 'head' or 'product', got '{self.action_from}'")
        self.backbones = nn.ModuleDict(
            {m: build_backbone(m, cfg.model[f"{m}_backbone"], cfg.data.img_size) for m in self.modalities}
        )
        self.proj = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(self.backbones[m].num_features, self.dim), nn.LayerNorm(self.dim))
             for m in self.modalities}
        )
        self.feat_norm = cfg.model.feat_norm
        if self.feat_norm not in ("none", "batchnorm"):
            raise ValueError(f"model.feat_norm must be 'none' or 'batchnorm', got '{self.feat_norm}'")
        # BatchNorm1d(F_m) over batch x time before the projection (absent samples skipped): standardises each backbone
        # channel, which frozen backbones need -- their channels share a large offset that LayerNorm keeps.
        self.feat_norms = nn.ModuleDict(
            {m: nn.BatchNorm1d(self.backbones[m].num_features) for m in self.modalities}
        ) if self.feat_norm == "batchnorm" else None
        self.regularizers = nn.ModuleList(build_regularizers(cfg, self.modalities, self.dim, self.num_classes))
        self.fuser = build_fuser(cfg, self.modalities)
        section = getattr(HEADS.get(cfg.model.head), "config_section", None)
        if section:  # a head with its own config section (e.g. futr: model.long_term); token width as in_dim
            head_kwargs = dict(in_dim=self.dim, num_classes=self.num_classes, **cfg.model[section])
        else:
            head_kwargs = dict(dim=self.dim, num_classes=self.num_classes, num_frames=self.num_frames,
                               **(cfg.model.head_args or {}))
        if getattr(self.fuser, "separate_heads", False):
            self.heads = nn.ModuleDict({m: HEADS.build(cfg.model.head, **head_kwargs) for m in self.modalities})
        else:
            self.heads = nn.ModuleDict({"fused": HEADS.build(cfg.model.head, **head_kwargs)})
        acts = torch.as_tensor(actions if actions is not None else [], dtype=torch.long).view(-1, 2)
        if self.action_from == "product" and len(acts) != self.num_classes.get("action", -1):
            raise ValueError("model.action_from=product needs the action vocabulary (one (verb, noun) pair per class)")
        self.register_buffer("actions", acts, persistent=False)

    # -- stages -------------------------------------------------------------------------------------------------
    def encode_frames(self, batch: Mapping[str, Any]) -> Dict[str, Tensor]:
        """Backbone features per modality: batch[m] (B,T,Cin,H,W) -> {m: (B,T,F_m)}."""
        return {m: self.backbones[m](batch[m]) for m in self.modalities}

    def project(self, feats: Mapping[str, Tensor], present: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        """{m: (B,T,F_m)} -> {m: (B,T,C)}: optional feature BatchNorm (model.feat_norm), then the per-modality
        projection to the common width C. present {m: bool (B,)} or None: absent samples stay out of the BN
        statistics."""
        if self.feat_norms is not None:
            feats = {m: masked_batch_norm(self.feat_norms[m], feats[m], None if present is None else present[m])
                     for m in self.modalities}
        return {m: self.proj[m](feats[m]) for m in self.modalities}

    def forward_tokens(self, tokens: Dict[str, Tensor], present: Optional[Dict[str, Tensor]] = None,
                       token_mask: Optional[Tensor] = None) -> Dict[str, Any]:
        """Regularisers, fuser and head on projected tokens {m: (B,T,C)}; present {m: bool (B,)} or None (all);
        token_mask (B,T) bool (True = real token) for padded variable-length batches (long-term), given to the head."""
        b = next(iter(tokens.values())).shape[0]
        device = next(iter(tokens.values())).device
        if present is None:
            present = {m: torch.ones(b, dtype=torch.bool, device=device) for m in self.modalities}
        present = {m: present[m].to(device=device, dtype=torch.bool).view(b) for m in self.modalities}
        # A missing modality is zeros plus the presence mask (EBR may substitute it below).
        tokens = {m: tokens[m] * present[m].view(b, 1, 1).to(tokens[m].dtype) for m in self.modalities}
        tokens_pre, present_pre = dict(tokens), present
        losses: Dict[str, Tensor] = {}
        stats: Dict[str, Tensor] = {}
        for reg in self.regularizers:
            tokens, present, reg_losses, reg_stats = reg(tokens, present)
            losses.update(reg_losses)
            stats.update(reg_stats)
        out, logits = self.fuse_and_predict(tokens, present, token_mask)
        if out.aux_loss is not None:
            losses["fuser"] = out.aux_loss
        head_kw = {} if token_mask is None else {"token_mask": token_mask}
        aux_logits: Dict[str, Dict[str, Any]] = {}
        for reg in self.regularizers:
            head = self.heads["fused"] if "fused" in self.heads else \
                self.heads[getattr(reg, "student", self.modalities[0])]
            if hasattr(reg, "head_losses"):
                losses.update(reg.head_losses(tokens, present, head))
            if hasattr(reg, "head_predictions"):  # extra predictions the loss supervises with the labels
                aux_logits.update(reg.head_predictions(tokens, present, lambda x: head(x, **head_kw)))
            if hasattr(reg, "view_predictions"):  # extra predictions of other views of the same samples
                aux_logits.update(reg.view_predictions(tokens_pre, present_pre, self.predict_view))
        return {"logits": logits, "tokens_pre": tokens_pre, "tokens_in": tokens, "tokens_post": out.tokens,
                "fused": out.fused, "present": present, "losses": losses, "stats": stats, "aux_logits": aux_logits}

    def predict_view(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Another view of the samples (projected tokens {m: (B',T,C)}, present {m: bool (B',)}) through the
        regularisers that do not make views themselves, the fuser and the head -> logits {k: (B',K)}. Their losses are
        not returned: they count once, from the complete samples."""
        for reg in self.regularizers:
            if not hasattr(reg, "view_predictions"):
                tokens, present, _, _ = reg(tokens, present)
        return self.fuse_and_predict(tokens, present)[1]

    def fuse_and_predict(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor],
                         token_mask: Optional[Tensor] = None) -> Tuple[Any, Dict[str, Tensor]]:
        """Fuser and head(s) on regularised tokens {m: (B,T,C)}, present {m: bool (B,)} -> (the fuser's output,
        logits {verb (B,V), noun (B,N), action (B,A)}). With one head per stream (late fusion) the logits are the mean
        over each sample's present streams."""
        b = next(iter(tokens.values())).shape[0]
        out = self.fuser(tokens, present)
        head_kw = {} if token_mask is None else {"token_mask": token_mask}
        if getattr(self.fuser, "separate_heads", False):
            per_mod = {m: self.heads[m](out.tokens[m], **head_kw) for m in self.modalities}
            w = torch.stack([present[m].float() for m in self.modalities], 0)  # (M, B): average over present heads
            w = w / w.sum(0, keepdim=True).clamp_min(1.0)
            logits = {k: sum(w[i].view(b, *[1] * (per_mod[m][k].dim() - 1)) * per_mod[m][k].float()
                             for i, m in enumerate(self.modalities))
                      for k in per_mod[self.modalities[0]]}
        else:
            logits = self.heads["fused"](out.fused, **head_kw)
        if self.action_from == "product":
            logits["action"] = self._product_action_logits(logits["verb"], logits["noun"])
        return out, logits

    def _product_action_logits(self, verb: Tensor, noun: Tensor) -> Tensor:
        """log p(v)·p(n) for each (v, n) in the action vocabulary: (B,V),(B,N) -> (B,A)."""
        lv = F.log_softmax(verb.float(), -1)
        ln = F.log_softmax(noun.float(), -1)
        return lv[:, self.actions[:, 0]] + ln[:, self.actions[:, 1]]

    def forward(self, batch: Mapping[str, Any]) -> Dict[str, Any]:
        """batch: the dataset sample dict, batched (or `feats_<m>` (B,T,F_m) from the feature cache)."""
        if all(f"feats_{m}" in batch for m in self.modalities):
            feats = {m: batch[f"feats_{m}"] for m in self.modalities}
        else:
            feats = self.encode_frames(batch)
        present = batch.get("present")
        return self.forward_tokens(self.project(feats, present), present, batch.get("token_mask"))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
