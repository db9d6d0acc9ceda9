"""Streaming next-action anticipation on a recorded RGB-D clip, processed in time order as if it were live.

```
push(rgb, depth, t):  frame --eval transform--> (C,S,S) --backbone[m] (B=1, T=1)--> feats (F_m,) --> ring buffer
predict():            window indices (training protocol, ending now) --> ring[window] (1,T,F_m)
                      --model.project--> (1,T,C) --model.forward_tokens--> logits, tokens_pre, fused
```
Each new frame costs one backbone pass per modality; every prediction costs the projection, regularisers, fuser and
head over the T window tokens. The history is never re-encoded: the ring buffer keeps the per-frame backbone features
`feats` of `Anticipator.encode_frames` for as many frames as one observation window spans, and `predict` runs exactly
`Anticipator.project` and `Anticipator.forward_tokens` on them, so a streamed prediction equals `model(batch)` on the
same window's frames (tests/test_stream.py checks this to fp32 tolerance).

Window: the next-action protocol of `r3d.data.protocols` with the window ending at the current frame (τa = 0 here:
the current moment *is* the end of the observed window, and the model anticipates the action that starts τa later).
T = data.num_frames frames at data.tau_o / data.num_frames seconds spacing, each time floored to the last frame at or
before it. A prediction needs a full window (no frame before the clip); `StreamingAnticipator.first_ready_frame`.

Missing depth. The model's presence mask is per sample (per window), as in training, where a modality of a sample is
either there or not. A window with at least one sampled frame without depth is therefore run as depth-missing: its
depth tokens are zeros plus the mask, and a checkpoint with EBR substitutes them from RGB inside `forward_tokens`
(`r3d/models/regularizers/ebr.py`). A frame has no depth when the depth stream has no frame for its time (a dropped PNG,
the depth stream ended, `--depth` omitted) or when the depth frame has no valid reading at all.

Temporal backbones. `inflated3d` (I3D-style) tokens depend on the neighbouring *sampled* frames of the window
(and on edge padding at its first frame), so a per-frame cache cannot reproduce them. For such a backbone, and for any
backbone kind other than the per-frame `frame2d` and `linear`, the ring buffer keeps the transformed frames instead and
the backbone is re-run over the T window frames at every prediction: correct, but the per-step cost grows with T.
The choice is reported per modality in `StreamingAnticipator.backbone_mode` ("cached" or "recompute").

Reading a recording is `r3d.data.clip.RGBDClip`'s job; `r3d.engine.demo.run_demo` drives the whole demo
(tools/demo.py is a thin wrapper around it).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import Config
from ..data.dataset_yaml import DEPTH_DEFAULTS
from ..data.protocols import OK, next_action_window
from ..data.transforms import build_transforms
from ..metrics.collapse import effective_rank
from ..models.anticipator import Anticipator
from .builder import checkpoint_depth, load_trained_model
from .checkpoint import PathLike, config_from_meta

Tensor = torch.Tensor


# -- the ring buffer ---------------------------------------------------------------------------------------------------
class FrameRing:
    """Fixed-capacity per-frame store: slot k % capacity holds frame k's entry per modality (a tensor) or nothing.

    Entries are backbone features (F,) for cached modalities or transformed frames (C, S, S) for recomputed ones.
    """

    def __init__(self, capacity: int, modalities: Sequence[str]) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.modalities = list(modalities)
        self.frame = np.full(self.capacity, -1, dtype=np.int64)  # which frame each slot holds (-1 = none yet)
        self.data: Dict[str, Optional[Tensor]] = {m: None for m in self.modalities}  # (capacity, *shape)
        self.present = {m: np.zeros(self.capacity, dtype=bool) for m in self.modalities}

    def put(self, k: int, entries: Mapping[str, Optional[Tensor]]) -> None:
        """Store frame k: entries {m: tensor or None (modality missing for this frame)}."""
        slot = k % self.capacity
        self.frame[slot] = k
        for m in self.modalities:
            x = entries.get(m)
            if x is not None and self.data[m] is None:
                self.data[m] = torch.zeros((self.capacity, *x.shape), dtype=x.dtype, device=x.device)
            if x is not None:
                self.data[m][slot] = x
            self.present[m][slot] = x is not None

    def get(self, indices: Sequence[int]) -> Tuple[Dict[str, Optional[Tensor]], Dict[str, np.ndarray]]:
        """Entries of frames `indices` (T,): ({m: (T, *shape) or None when no frame ever had m}, {m: (T,) bool})."""
        idx = np.asarray(indices, dtype=np.int64)
        slots = idx % self.capacity
        stale = self.frame[slots] != idx
        if stale.any():
            raise KeyError(f"frames {idx[stale].tolist()} are not in the ring buffer (capacity {self.capacity}, "
                           f"newest frame {int(self.frame.max())})")
        out, present = {}, {}
        for m in self.modalities:
            present[m] = self.present[m][slots].copy()
            data = self.data[m]
            out[m] = None if data is None else data[torch.from_numpy(slots).to(data.device)]
        return out, present


# -- the streaming engine ----------------------------------------------------------------------------------------------
class StreamingAnticipator:
    """Streaming next-action anticipation with a ring buffer of per-frame backbone features.

    Args:
        model: the anticipator (put in eval mode here).
        cfg: its config (data.tau_o, data.num_frames, data.img_size, normalisation, depth range).
        fps: frame rate of the stream (frames are pushed at this rate; frame k is at k / fps seconds).
        verb_classes / noun_classes: class names (default: the ids as strings).
        actions: (verb, noun) pair of each action class (default: the model's action vocabulary).
        depth_range: (depth_min, depth_max) in metres for the depth normalisation (default: r3d's 0.2–4.5 m;
            `from_checkpoint` passes the range the checkpoint was trained with).
        topk: actions listed per prediction.
    """

    def __init__(self, model: Anticipator, cfg: Config, fps: float, verb_classes: Optional[Sequence[str]] = None,
                 noun_classes: Optional[Sequence[str]] = None, actions: Optional[Sequence[Sequence[int]]] = None,
                 depth_range: Optional[Tuple[float, float]] = None, topk: int = 5) -> None:
        if not fps > 0:
            raise ValueError(f"stream fps must be > 0, got {fps}")
        if cfg.data.protocol != "next_action":
            raise ValueError(f"the streaming demo anticipates the next action; this checkpoint was trained with "
                             f"data.protocol={cfg.data.protocol}")
        self.model = model.eval()
        self.cfg = cfg
        self.fps = float(fps)
        self.modalities: List[str] = list(model.modalities)
        self.num_frames = int(cfg.data.num_frames)
        self.tau_o = float(cfg.data.tau_o)
        self.spacing = self.tau_o / self.num_frames  # seconds between sampled frames
        self.topk = int(topk)
        nc = model.num_classes
        self.verb_classes = list(verb_classes) if verb_classes is not None else [str(i) for i in range(nc["verb"])]
        self.noun_classes = list(noun_classes) if noun_classes is not None else [str(i) for i in range(nc["noun"])]
        acts = actions if actions is not None else model.actions.tolist()
        self.actions = [(int(v), int(n)) for v, n in acts]
        if depth_range is None:
            depth_range = (DEPTH_DEFAULTS["depth_min"], DEPTH_DEFAULTS["depth_max"])
        self.depth_range = (float(depth_range[0]), float(depth_range[1]))
        self.transform = build_transforms(cfg.data, self.depth_range[0], self.depth_range[1], train=False)
        self.device = next(model.parameters()).device
        self.backbone_mode = {m: "cached" if getattr(model.backbones[m], "per_frame", False) else "recompute"
                              for m in self.modalities}
        self.has_ebr = any(getattr(r, "fills_missing", False) for r in model.regularizers)
        self.capacity = self.history_frames()
        self.reset()

    @classmethod
    def from_checkpoint(cls, checkpoint: PathLike, fps: float, topk: int = 5,
                        depth_range: Optional[Tuple[float, float]] = None) -> "StreamingAnticipator":
        """Rebuild the model of an exported run folder (model.safetensors + model.json) and stream with it.

        `depth_range` defaults to the (depth_min, depth_max) the checkpoint was trained with (model.json `depth`).
        """
        model, meta = load_trained_model(checkpoint)
        if depth_range is None:
            trained = checkpoint_depth(meta)
            depth_range = (trained["depth_min"], trained["depth_max"])
        self = cls(model, config_from_meta(meta), fps, meta.get("verb_classes"), meta.get("noun_classes"),
                   meta.get("actions"), depth_range=depth_range, topk=topk)
        self.meta = meta
        return self

    # -- timing ----------------------------------------------------------------------------------------------------
    def window_indices(self, k: int) -> Tuple[np.ndarray, bool]:
        """(T,) frame indices of the window ending at frame k, and whether it is full (no frame before the clip)."""
        win = next_action_window(k / self.fps, self.fps, self.num_frames, 0.0, self.tau_o, drop_style="pad")
        return win.indices, win.status == OK

    def first_ready_frame(self) -> int:
        """The first frame whose window is full: (T−1)·spacing seconds of history are needed."""
        k = max(0, int(math.floor((self.num_frames - 1) * self.spacing * self.fps)) - 1)
        while not self.window_indices(k)[1]:
            k += 1
        return k

    def history_frames(self) -> int:
        """Ring capacity: the most frames one window spans (from its first sampled frame to the current one)."""
        return int(math.ceil((self.num_frames - 1) * self.spacing * self.fps)) + 2

    def default_stride(self) -> int:
        """One prediction per sampling step of the training protocol: round(spacing · fps) frames (at least 1)."""
        return max(1, int(round(self.spacing * self.fps)))

    # -- streaming -------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the history (start a new stream)."""
        self.ring = FrameRing(self.capacity, self.modalities)
        self.times = np.zeros(self.capacity, dtype=np.float64)
        self.count = 0
        self.backbone_passes = {m: 0 for m in self.modalities}

    def preprocess(self, rgb_frame: Optional[np.ndarray], depth_frame: Optional[np.ndarray]) -> Dict[str, Tensor]:
        """The evaluation transform of one frame: rgb (H,W,3) uint8 -> (3,S,S); depth (h,w) metres -> (1,S,S)."""
        res = self.transform({"rgb": None if rgb_frame is None else rgb_frame[None],
                              "depth": None if depth_frame is None else np.asarray(depth_frame, np.float32)[None],
                              "rng": None})
        return {m: res[m][0].to(self.device) for m in ("rgb", "depth") if res.get(m) is not None}

    @torch.inference_mode()
    def push(self, rgb_frame: Optional[np.ndarray], depth_frame: Optional[np.ndarray] = None,
             t: Optional[float] = None) -> int:
        """Add the next frame of the stream; returns its index k.

        Args:
            rgb_frame: (H, W, 3) uint8 RGB (None only for a depth-only model).
            depth_frame: (h, w) float32 metres (0 = no reading), or None when depth is missing for this frame.
            t: its time in seconds (default k / fps); stored for the predictions' time stamps.
        Cost: one backbone pass per modality present (cached modalities), or none (recomputed modalities).
        """
        k = self.count
        if "rgb" in self.modalities and rgb_frame is None:
            raise ValueError(f"frame {k}: an RGB frame is required (this model uses RGB)")
        x = self.preprocess(rgb_frame if "rgb" in self.modalities else None,
                            depth_frame if "depth" in self.modalities else None)
        entries: Dict[str, Optional[Tensor]] = {}
        for m in self.modalities:
            if m not in x:
                entries[m] = None
            elif self.backbone_mode[m] == "cached":
                entries[m] = self.model.backbones[m](x[m][None, None])[0, 0]  # (1,1,C,S,S) -> (F,)
                self.backbone_passes[m] += 1
            else:
                entries[m] = x[m]
        self.ring.put(k, entries)
        self.times[k % self.capacity] = k / self.fps if t is None else float(t)
        self.count += 1
        return k

    @property
    def ready(self) -> bool:
        """Whether the newest frame ends a full observation window."""
        return self.count > 0 and self.window_indices(self.count - 1)[1]

    @torch.inference_mode()
    def predict(self) -> Dict[str, Any]:
        """Anticipate the next action from the window ending at the newest frame.

        Returns a dict: frame (int), time (s), window_start (s), window (T,) frame indices, present {m: bool},
        missing [m], depth_missing_frames [frame indices of the window without depth], substituted [m filled by EBR],
        logits {verb (V,), noun (N,), action (A,)} float32 tensors, topk [{action, verb_id, noun_id, verb, noun, prob}],
        erank {rgb, depth, fused}: effective rank of the window's projected tokens of each modality (None when it is
        missing) and of the fused tokens (None for late fusion).
        """
        if self.count == 0:
            raise RuntimeError("predict() before any push()")
        k = self.count - 1
        idx, full = self.window_indices(k)
        if not full:
            raise RuntimeError(f"frame {k}: the window needs frames before the clip start; wait until frame "
                               f"{self.first_ready_frame()} (StreamingAnticipator.ready)")
        entries, have = self.ring.get(idx)
        feats: Dict[str, Tensor] = {}
        present: Dict[str, bool] = {}
        for m in self.modalities:
            present[m] = bool(have[m].all())
            e = entries[m]
            if e is None or not present[m]:
                # Missing for the window: any finite features do (forward_tokens zeroes them and applies the mask).
                feats[m] = torch.zeros(1, len(idx), self.model.backbones[m].num_features, device=self.device)
            elif self.backbone_mode[m] == "cached":
                feats[m] = e[None]  # (1, T, F)
            else:
                feats[m] = self.model.backbones[m](e[None])  # (1, T, C, S, S) -> (1, T, F)
                self.backbone_passes[m] += len(idx)
        mask = {m: torch.tensor([present[m]], device=self.device) for m in self.modalities}
        out = self.model.forward_tokens(self.model.project(feats), mask)
        logits = {name: v[0].float().cpu() for name, v in out["logits"].items()}
        after = out["present"]
        substituted = [m for m in self.modalities if not present[m] and bool(after[m][0])]
        erank: Dict[str, Optional[float]] = {m: None for m in ("rgb", "depth")}
        for m in self.modalities:
            if present[m]:
                erank[m] = float(effective_rank(out["tokens_pre"][m][0]))
        erank["fused"] = None if out["fused"] is None else float(effective_rank(out["fused"][0]))
        depth_missing = []
        if "depth" in self.modalities:
            depth_missing = sorted({int(i) for i, ok in zip(idx, have["depth"]) if not ok})
        return {
            "frame": k,
            "time": float(self.times[k % self.capacity]),
            "window_start": float(self.times[int(idx[0]) % self.capacity]),
            "window": [int(i) for i in idx],
            "present": present,
            "missing": [m for m in self.modalities if not present[m]],
            "depth_missing_frames": depth_missing,
            "substituted": substituted,
            "logits": logits,
            "topk": self.top_actions(logits["action"]),
            "erank": erank,
        }

    def top_actions(self, action_logits: Tensor) -> List[Dict[str, Any]]:
        """The `topk` most likely actions: (A,) logits -> [{action, verb_id, noun_id, verb, noun, prob}]."""
        probs = torch.softmax(action_logits.float(), -1)
        k = min(self.topk, probs.numel())
        p, ids = probs.topk(k)
        out = []
        for prob, a in zip(p.tolist(), ids.tolist()):
            v, n = self.actions[a] if a < len(self.actions) else (-1, -1)
            out.append({"action": int(a), "verb_id": int(v), "noun_id": int(n),
                        "verb": self.verb_classes[v] if 0 <= v < len(self.verb_classes) else str(v),
                        "noun": self.noun_classes[n] if 0 <= n < len(self.noun_classes) else str(n),
                        "prob": float(prob)})
        return out
