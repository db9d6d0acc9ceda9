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

Gate (`model.missing_view.gate`): `none` supervises every view in full. `probe` and `probe_top1` are for streams
that each hold only part of the answer, or one too noisy to answer alone: a linear probe per stream and head (verb /
noun / action) learns, on the stream's tokens with the gradient stopped (so it changes nothing else), how well that
stream alone predicts each label (`probe_input`: `frames` reads the T tokens in order, `mean` their time average, which
cannot see a cue carried by motion). With `probe` a view's CE on head k is weighted per sample by how far the
remaining stream's probe is above chance on the true label, g = clip((p(y) - 1/K) / (1 - 1/K), 0, 1). `probe_top1`
gates all or nothing: g = 1 where the kept stream's probe ranks the true label first, else 0, so a sample the stream
alone gets right counts in full however unsure the probe is. Either way the view is trained to answer from one
stream only what that stream can answer: a depth-only view of a sample whose noun only RGB shows gets no noun loss,
and a view whose stream is noise gets little loss at all, where the ungated view asks the fuser to guess.

Variant: one extra view per sample (one stream removed, not every subset), made from the projected tokens before the
other regularisers, which then run on the view as on any batch: EBR fills the removed stream as it fills a missing one
at test time, modality dropout (if also on) may drop more. Their losses and the fuser's auxiliary loss count once, from
the complete samples. Cost: one more regulariser + fuser + head pass in training (the backbones run once). Inactive in
eval mode. Hook (see `r3d.models.regularizers`): `view_predictions(tokens, present, predict) -> {name: {"logits",
"valid", "weight"[, "sample_weights"]}}`, where `predict(tokens, present)` is `Anticipator.predict_view`; with the
probe gate also the probes' own predictions ("missing_view_probe_<m>", weight 1; their inputs are detached).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import REGULARIZERS

Tensor = torch.Tensor


GATES = ("none", "probe", "probe_top1")  # model.missing_view.gate: how much of each view's CE counts (module doc)
PROBE_INPUTS = ("mean", "frames")  # model.missing_view.probe_input: time-averaged tokens, or the T tokens in order


@REGULARIZERS.register("missing_view")
class MissingModalityView(nn.Module):
    """A second fused prediction per training sample with one stream removed, supervised like the first (r3d's own);
    with a probe gate each view sample's CE is weighted by how well the remaining stream alone predicts its label."""

    def __init__(self, modalities: Sequence[str], weight: float, gate: str = "none", dim: Optional[int] = None,
                 num_classes: Optional[Mapping[str, int]] = None, probe_input: str = "frames",
                 num_frames: Optional[int] = None) -> None:
        super().__init__()
        if not weight > 0:
            raise ValueError(f"model.missing_view.weight must be > 0 to enable the missing-modality view, got {weight}")
        if gate not in GATES:
            raise ValueError(f"model.missing_view.gate must be one of {', '.join(GATES)}, got '{gate}'")
        if gate != "none" and (dim is None or not num_classes):
            raise ValueError(f"model.missing_view.gate={gate} needs the token width and the number of classes per head")
        if probe_input not in PROBE_INPUTS:
            raise ValueError(f"model.missing_view.probe_input must be one of {', '.join(PROBE_INPUTS)}, "
                             f"got '{probe_input}'")
        if gate != "none" and probe_input == "frames" and not num_frames:
            raise ValueError("model.missing_view.probe_input=frames needs the number of tokens per sample")
        self.modalities: List[str] = list(modalities)
        self.weight = float(weight)
        self.gate = gate
        self.probe_input = probe_input
        self.num_frames = num_frames
        width = (dim or 0) * ((num_frames or 0) if probe_input == "frames" else 1)
        # probes[m][k]: Linear(C or T·C, K_k) on stream m's detached tokens, averaged or in order (probe gates only)
        self.probes = nn.ModuleDict(
            {m: nn.ModuleDict({k: nn.Linear(width, n) for k, n in num_classes.items()}) for m in self.modalities}
        ) if gate != "none" else None

    @classmethod
    def from_config(cls, cfg, modalities: Sequence[str], dim: int,
                    num_classes: Mapping[str, int]) -> Optional["MissingModalityView"]:
        w = float(cfg.model.missing_view.weight)
        if not (w > 0 and len(modalities) > 1):
            return None
        return cls(modalities, w, gate=str(cfg.model.missing_view.gate), dim=dim, num_classes=num_classes,
                   probe_input=str(cfg.model.missing_view.probe_input), num_frames=int(cfg.data.num_frames))

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

    def probe(self, tokens: Tensor, m: str) -> Dict[str, Tensor]:
        """Stream m's probe: tokens (B,T,C), detached, averaged over time (probe_input=mean) or flattened in order
        (frames; T must be num_frames) -> logits {k: (B,K_k)}."""
        x = tokens.detach().float()
        if self.probe_input == "frames":
            if x.shape[1] != self.num_frames:
                raise ValueError(f"model.missing_view.probe_input=frames reads {self.num_frames} tokens per sample "
                                 f"(data.num_frames), got {x.shape[1]}")
            pooled = x.flatten(1)
        else:
            pooled = x.mean(1)
        return {k: lin(pooled) for k, lin in self.probes[m].items()}

    def gate_weights(self, probs: Dict[str, Dict[str, Tensor]], now: Tensor
                     ) -> Callable[[str, Tensor], Tensor]:
        """probs {m: {k: (V,K) softmax of stream m's probe}}, now (M,V) bool (the streams each view keeps) ->
        sample_weights(k, target (V,)) -> (V,): over the kept streams, the largest clip((p(y) - 1/K) / (1 - 1/K), 0, 1)
        (gate=probe), or 1 if one of them ranks the true label first, else 0 (gate=probe_top1)."""
        def sample_weights(key: str, target: Tensor) -> Tensor:
            per_stream = []
            for i, m in enumerate(self.modalities):
                p = probs[m][key]
                y = target.clamp(0, p.shape[-1] - 1).view(-1, 1)  # unlabelled samples: any class, the loss ignores them
                if self.gate == "probe_top1":
                    g = (p.argmax(-1) == y.squeeze(1)).to(p.dtype)
                else:
                    chance = 1.0 / p.shape[-1]
                    g = ((p.gather(1, y).squeeze(1) - chance) / (1.0 - chance)).clamp(0.0, 1.0)
                per_stream.append(g * now[i].to(g.dtype))
            return torch.stack(per_stream).amax(0)
        return sample_weights

    def view_predictions(self, tokens: Dict[str, Tensor], present: Dict[str, Tensor],
                         predict: Callable[[Dict[str, Tensor], Dict[str, Tensor]], Dict[str, Tensor]]
                         ) -> Dict[str, Dict[str, Any]]:
        """tokens {m: (B,T,C)}, present {m: (B,)} -> {"missing_view": {"logits": predict(view) {k: (V,K)},
        "valid": (B,) bool, "weight": w[, "sample_weights": the probe gate]}, and with a probe gate
        "missing_view_probe_<m>": {"logits": probe {k: (B_m,K)}, "valid": present[m], "weight": 1.0}} in training;
        {} in eval."""
        if not self.training:
            return {}
        out: Dict[str, Dict[str, Any]] = {}
        probe_logits: Dict[str, Dict[str, Tensor]] = {}  # {m: {k: (B,K)}}: one probe pass per stream, for both uses
        if self.probes is not None:
            for m in self.modalities:
                probe_logits[m] = self.probe(tokens[m], m)
                if present[m].any():
                    out[f"missing_view_probe_{m}"] = {"logits": {k: v[present[m]] for k, v in probe_logits[m].items()},
                                                      "valid": present[m], "weight": 1.0}
        valid, now = self.drop_one(present)
        if not valid.any():
            return out
        view_t = {m: tokens[m][valid] * now[i].view(-1, 1, 1).to(tokens[m].dtype)
                  for i, m in enumerate(self.modalities)}
        view_p = {m: now[i] for i, m in enumerate(self.modalities)}
        entry: Dict[str, Any] = {"logits": predict(view_t, view_p), "valid": valid, "weight": self.weight}
        if self.probes is not None:  # a view sample's absent stream has zero tokens; `now` masks it out of the gate
            probs = {m: {k: F.softmax(v[valid].detach(), -1) for k, v in probe_logits[m].items()}
                     for m in self.modalities}
            entry["sample_weights"] = self.gate_weights(probs, now)
        out["missing_view"] = entry
        return out
