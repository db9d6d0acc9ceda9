"""FUTR-style query decoder for long-term action anticipation, its training objective and its decoding.

FUTR: Gong, Lee, Kim, Cho, "Future Transformer for Long-term Action Anticipation", CVPR 2022 (github gongda0e/FUTR,
``model/futr.py``, ``train.py``, ``predict.py``, ``utils.py``); used by R3D (Kim et al., WACV 2026; github
olivesgatech/R3D, ``model/futr_safuser_batchnormalization.py``, ``train_proposed.py``, ``utils.py``) on its fused
RGB-D tokens. Names here → names there:

| r3d | FUTR / R3D |
|---|---|
| `FUTRHead` | ``FUTR`` minus its input embedding (the anticipator's backbones, projection and fuser make the tokens) |
| `FUTRHead.query` | ``query_embed``: Q learned action queries |
| outputs ``action`` (B,Q,A+2) / ``duration`` (B,Q) | ``fc`` (classes + NONE) / ``fc_len`` |
| output ``segmentation`` (B,T,A+1) | ``fc_seg`` on the encoder output (observed-frame segmentation) |
| `futr_loss` | ``cal_performance`` (CE, R3D's ``cal_weighted_loss`` change weight) + duration MSE + segmentation CE |
| `normalize_duration` | ``normalize_duration`` (exp · mask, L1-normalised = softmax over the valid slots) |
| `render_future` | ``predict.py``: durations → frame labels of the predicted span |

Classes: 0..A−1 actions, A = background (frames outside every segment), A+1 = NONE (end of the predicted sequence;
query outputs only). Variant, stated:
- R3D's code: 2 encoder layers, 1 decoder layer, width 128, 8 heads, FFN 4·128, post-norm layers (DETR/FUTR
  ``normalize_before=False``) with a final decoder LayerNorm.
- Positions: a learned embedding (FUTR: ``pos_embedding``, xavier-initialised, ``max_pos_len`` rows) added once to
  the observed tokens before the encoder; FUTR/DETR add it to the attention queries and keys of every layer instead.
- Queries: the learned query embedding is the decoder input; FUTR/DETR feed zeros and add the embedding to the
  attention queries/keys of every layer (with one decoder layer the difference is the first self-attention's values).
- No ReLU on the incoming tokens (R3D feeds its fused tokens directly; FUTR's ReLU follows its own input embedding).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS

Tensor = torch.Tensor
IGNORE = -100


@HEADS.register("futr")
class FUTRHead(nn.Module):
    """FUTR query decoder: observed tokens (B,T,C) -> future action classes + durations, observed-frame segmentation.

    Built by the anticipator from `model.long_term` (``config_section``) with ``in_dim`` = the token width C
    (`model.dim`). `change_weight`, `duration_weight` and `seg_weight` are read by `futr_loss` (the long-term task,
    same config section); the module stores them for reference only.
    """

    config_section = "long_term"
    protocol = "long_term"

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], queries: int = 8, dim: int = 128, heads: int = 8,
                 ffn: int = 512, encoder_layers: int = 2, decoder_layers: int = 1, dropout: float = 0.1,
                 max_len: int = 2000, change_weight: float = 10.0, duration_weight: float = 1.0,
                 seg_weight: float = 1.0) -> None:
        super().__init__()
        if "action" not in num_classes:
            raise ValueError("the futr head predicts actions: num_classes needs an 'action' entry (the vocabulary)")
        if queries < 1 or decoder_layers < 1 or encoder_layers < 0:
            raise ValueError(f"model.long_term needs queries >= 1, decoder_layers >= 1, encoder_layers >= 0; got "
                             f"{queries}, {decoder_layers}, {encoder_layers}")
        self.num_actions = int(num_classes["action"])
        self.background, self.none_id = self.num_actions, self.num_actions + 1
        self.max_len = int(max_len)
        self.loss_weights = {"change": float(change_weight), "duration": float(duration_weight),
                             "segmentation": float(seg_weight)}
        self.input = nn.Linear(in_dim, dim) if in_dim != dim else nn.Identity()
        self.pos = nn.Parameter(torch.empty(1, self.max_len, dim))
        nn.init.xavier_uniform_(self.pos)
        self.encoder = None
        if encoder_layers > 0:
            layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout, activation="relu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, encoder_layers, enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(dim, heads, ffn, dropout, activation="relu", batch_first=True)
        self.decoder = nn.TransformerDecoder(dec, decoder_layers, norm=nn.LayerNorm(dim))
        self.query = nn.Embedding(queries, dim)
        self.classifier = nn.Linear(dim, self.num_actions + 2)   # actions, background, NONE
        self.duration = nn.Linear(dim, 1)
        self.segmentation = nn.Linear(dim, self.num_actions + 1)  # actions, background
        for lin in (self.classifier, self.duration, self.segmentation):
            nn.init.xavier_uniform_(lin.weight)

    def forward(self, x: Tensor, token_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """x: (B, T, C) observed tokens; token_mask: (B, T) bool, True on real (not padded) tokens, or None (all).

        Returns {"action": (B, Q, A+2) logits, "duration": (B, Q) unnormalised log-durations,
        "segmentation": (B, T, A+1) logits}.
        """
        b, t = x.shape[:2]
        if t > self.max_len:
            raise ValueError(f"{t} observed tokens but the futr head has {self.max_len} positions: raise "
                             f"model.long_term.max_len or cap data.long_term.max_frames")
        pad = None if token_mask is None else ~token_mask.to(device=x.device, dtype=torch.bool)
        src = self.input(x) + self.pos[:, :t]
        if self.encoder is not None:
            src = self.encoder(src, src_key_padding_mask=pad)
        tgt = self.query.weight.unsqueeze(0).expand(b, -1, -1)
        h = self.decoder(tgt, src, memory_key_padding_mask=pad)
        return {"action": self.classifier(h), "duration": self.duration(h).squeeze(-1),
                "segmentation": self.segmentation(src)}


def normalize_duration(duration: Tensor, mask: Tensor) -> Tensor:
    """FUTR's ``normalize_duration``: exp(d)·mask / Σ exp(d)·mask over the Q slots, as a masked softmax.

    duration: (..., Q) raw outputs; mask: (..., Q) bool. Rows without a valid slot give zeros (and finite gradients).
    """
    mask = mask.to(dtype=torch.bool, device=duration.device)
    p = torch.softmax(duration.float().masked_fill(~mask, -1e9), dim=-1)
    return p * mask


def futr_loss(outputs: Mapping[str, Tensor], batch: Mapping[str, Any], change_weight: float = 10.0,
              duration_weight: float = 1.0, seg_weight: float = 1.0) -> Tuple[Tensor, Dict[str, Tensor]]:
    """The FUTR / R3D long-term objective: weighted query CE + duration MSE + observed-frame segmentation CE.

    - Query CE over the slots whose target is a class (segment classes and the NONE slot; padding ignored). R3D's
      change weight: every slot of a sample whose first future class differs from its last observed frame label
      (``last_label``) is weighted `change_weight` (R3D ``cal_weighted_loss``: 10), the others 1. The weighted sum is
      divided by the number of counted slots (R3D divides by all B·Q slots including padding; FUTR's unweighted CE
      by the counted ones).
    - Duration: `normalize_duration` over the segment slots, then the squared error to the target shares, summed
      and divided by the number of segment slots (FUTR ``train.py``).
    - Segmentation: CE of the per-token logits on the observed frame labels (padding ignored), mean over frames.

    Args:
        outputs: the head's {"action" (B,Q,K), "duration" (B,Q), "segmentation" (B,T,S)}.
        batch: `LongTermDataset` keys future_classes (B,Q), future_durations (B,Q), future_duration_mask (B,Q),
            last_label (B,), obs_labels (B,T).
    Returns:
        (total = CE + duration_weight · MSE + seg_weight · segCE, {"future_ce", "duration_mse", "segmentation_ce"}
        detached).
    """
    logits = outputs["action"].float()
    b, q, k = logits.shape
    target = batch["future_classes"].to(logits.device).long()
    valid = (target >= 0) & (target < k)
    ce = F.cross_entropy(logits.reshape(-1, k), torch.where(valid, target, IGNORE).reshape(-1), ignore_index=IGNORE,
                         reduction="none").view(b, q)
    first, last = target[:, 0], batch["last_label"].to(logits.device).long()
    changed = valid[:, 0] & (last >= 0) & (first != last)
    weight = torch.where(changed, torch.full_like(ce[:, 0], float(change_weight)), torch.ones_like(ce[:, 0]))
    loss_ce = (ce * weight[:, None] * valid).sum() / valid.sum().clamp_min(1)

    mask = batch["future_duration_mask"].to(logits.device).bool()
    dur = normalize_duration(outputs["duration"], mask)
    target_dur = batch["future_durations"].to(logits.device).float() * mask
    loss_dur = ((dur - target_dur) ** 2 * mask).sum() / mask.sum().clamp_min(1)

    seg = outputs["segmentation"].float()
    s = seg.shape[-1]
    obs = batch["obs_labels"].to(seg.device).long()
    obs = torch.where((obs >= 0) & (obs < s), obs, IGNORE)
    if (obs >= 0).any():
        loss_seg = F.cross_entropy(seg.reshape(-1, s), obs.reshape(-1), ignore_index=IGNORE)
    else:  # no labelled observed frame: keep the graph connected
        loss_seg = seg.sum() * 0.0
    total = loss_ce + float(duration_weight) * loss_dur + float(seg_weight) * loss_seg
    return total, {"future_ce": loss_ce.detach(), "duration_mse": loss_dur.detach(),
                   "segmentation_ce": loss_seg.detach()}


def render_future(action_logits: Tensor, duration: Tensor, length: int, none_id: int) -> Tensor:
    """FUTR's decoding (``predict.py``): query classes and durations -> the labels of `length` future frames.

    The predicted sequence is the query slots before the first slot whose class is NONE; their durations are
    `normalize_duration` over those slots, each slot gets round(length · d) frames in order (FUTR:
    ``(0.5 + future_len · d).long()``), and the last predicted slot extends to the end (FUTR lets the last query,
    whatever its class, fill the remainder). When the first slot is NONE, the sequence is that slot's best other
    class for the whole span. NONE is never a frame label.

    Args: action_logits (Q, K) with NONE = `none_id`; duration (Q,); length F ≥ 0.
    Returns: (F,) int64.
    """
    classes = action_logits.argmax(-1)
    stops = (classes == none_id).nonzero()
    n = int(stops[0, 0]) if len(stops) else classes.numel()
    if n == 0:
        other = action_logits[0].clone()
        other[none_id] = float("-inf")
        classes = other.argmax().view(1)
        n = 1
    d = torch.softmax(duration[:n].float(), -1)
    sizes = torch.floor(0.5 + length * d).long().tolist()
    out = torch.empty(int(length), dtype=torch.long, device=action_logits.device)
    pos = 0
    for i in range(n):
        end = int(length) if i == n - 1 else min(int(length), pos + sizes[i])
        out[pos:end] = classes[i]
        pos = end
    return out


def render_batch(action_logits: Tensor, duration: Tensor, lengths: Tensor, none_id: int) -> Tensor:
    """`render_future` per sample: (B,Q,K), (B,Q), (B,) -> (B, max length) int64, padded with IGNORE."""
    lengths = [int(n) for n in lengths]
    out = torch.full((len(lengths), max(lengths, default=0)), IGNORE, dtype=torch.long, device=action_logits.device)
    for i, n in enumerate(lengths):
        out[i, :n] = render_future(action_logits[i], duration[i], n, none_id)
    return out
