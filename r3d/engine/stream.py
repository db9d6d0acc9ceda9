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

`RGBDClip` reads the recording (decord RGB in chunks; depth as a PNG16 folder, .npz, .npy or FFV1 .mkv) and aligns
depth to the RGB clock; `run_demo` drives the whole demo (tools/demo.py is a thin wrapper around it).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..config import Config, import_custom_modules_from
from ..data.errors import DataError
from ..data.formats import read_dataset_yaml, resolve_depth
from ..data.io import (DepthStore, MkvDepthStore, NpyDepthStore, NpzDepthStore, probe_video, read_png16,
                       read_rgb_frames)
from ..data.protocols import OK, frame_at, next_action_window
from ..data.transforms import build_transforms
from ..metrics.collapse import effective_rank
from ..models.anticipator import Anticipator
from ..models.backbones.frame2d import FrameBackbone2D
from ..models.backbones.linear import LinearDepthTokens
from ..models.regularizers.ebr import ExplicitBasisReallocation
from .checkpoint import config_from_meta, load_meta, load_model_weights, write_text_atomic

PathLike = Union[str, os.PathLike]
Tensor = torch.Tensor
_logger = logging.getLogger("r3d.stream")

# Backbone classes whose token for a frame depends on that frame only (exact type: InflatedBackbone3D subclasses
# FrameBackbone2D but mixes frames).
PER_FRAME_BACKBONES = (FrameBackbone2D, LinearDepthTokens)
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "assets" / "sample"


class ClipTooShort(ValueError):
    """The clip ends before the first full observation window."""


def sample_clip() -> Tuple[Path, Path]:
    """(rgb.mp4, depth.npz) of the recording bundled with the package (rendered by tools/make_sample_clip.py)."""
    rgb, depth = SAMPLE_DIR / "rgb.mp4", SAMPLE_DIR / "depth.npz"
    if not rgb.is_file() or not depth.is_file():
        raise FileNotFoundError(f"{SAMPLE_DIR}: the bundled sample clip is missing; re-create it with "
                                f"`python tools/make_sample_clip.py`")
    return rgb, depth


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
        depth_range: (depth_min, depth_max) in metres for the depth normalisation (default: from cfg / defaults).
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
            d = resolve_depth({}, cfg)
            depth_range = (d["depth_min"], d["depth_max"])
        self.depth_range = (float(depth_range[0]), float(depth_range[1]))
        self.transform = build_transforms(cfg.data, self.depth_range[0], self.depth_range[1], train=False)
        self.device = next(model.parameters()).device
        self.backbone_mode = {m: "cached" if type(model.backbones[m]) in PER_FRAME_BACKBONES else "recompute"
                              for m in self.modalities}
        self.has_ebr = any(isinstance(r, ExplicitBasisReallocation) for r in model.regularizers)
        self.capacity = self.history_frames()
        self.reset()

    @classmethod
    def from_checkpoint(cls, checkpoint: PathLike, fps: float, topk: int = 5,
                        depth_range: Optional[Tuple[float, float]] = None) -> "StreamingAnticipator":
        """Rebuild the model of an exported run folder (model.safetensors + model.json) and stream with it."""
        meta = load_meta(checkpoint)
        cfg = config_from_meta(meta)
        import_custom_modules_from(cfg)
        model = Anticipator(cfg, meta["num_classes"], actions=meta.get("actions"))
        load_model_weights(model, checkpoint)
        for reg in model.regularizers:
            if hasattr(reg, "load_meta"):
                reg.load_meta(meta)
        self = cls(model, cfg, fps, meta.get("verb_classes"), meta.get("noun_classes"), meta.get("actions"),
                   depth_range=depth_range, topk=topk)
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


# -- reading a recording -------------------------------------------------------------------------------------------
class SparsePngDepth(DepthStore):
    """A folder of 16-bit depth PNGs whose numbering may have gaps (dropped frames): ``<prefix><number>.png``.

    Unlike `r3d.data.io.PngDepthStore` (which refuses gaps, as a training dataset must be complete), a gap here is a
    frame without depth. Frame index = number − start, start = 1 when the numbering starts at 1 (NTU's
    MDepth-%08d.png) and 0 otherwise (DATA-FORMAT's %06d.png). Files are read with `r3d.data.io.read_png16`.
    """

    kind = "png"

    def __init__(self, folder: PathLike, depth_scale: float) -> None:
        super().__init__(folder, depth_scale)
        pat = re.compile(r"^(.*?)(\d+)\.png$")
        found: Dict[str, Dict[int, Path]] = {}
        for name in os.listdir(self.path):
            m = pat.match(name)
            if m:
                found.setdefault(m.group(1), {})[int(m.group(2))] = self.path / name
        if not found:
            raise DataError(f"{self.path}: depth folder has no numbered PNG frames (000000.png, 000001.png, ...)")
        prefix = max(found, key=lambda p: len(found[p]))  # the main series if other PNGs lie around
        numbers = found[prefix]
        self.start = 1 if min(numbers) == 1 else 0
        self.files = {n - self.start: p for n, p in numbers.items() if n >= self.start}
        self.num_frames = max(self.files) + 1
        self.gaps = self.num_frames - len(self.files)

    def has(self, index: int) -> bool:
        return index in self.files

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        return np.stack([read_png16(self.files[int(i)]) for i in uniq])


class _SequentialMkv:
    """Forward-only reader of an FFV1 gray16 depth track: frame j decoded once, in order (streaming-friendly)."""

    def __init__(self, store: MkvDepthStore) -> None:
        import av

        self.store = store
        self.container = av.open(str(store.path))
        stream = next((s for s in self.container.streams.video
                       if (s.codec_context.pix_fmt or "").startswith("gray16")), None)
        if stream is None:
            raise DataError(f"{store.path}: no 16-bit gray video stream; store FFV1 gray16le")
        self.frames = self.container.decode(stream)
        self.next_index = 0
        self.last: Optional[np.ndarray] = None

    def read(self, j: int) -> np.ndarray:
        if j < self.next_index - 1:
            raise ValueError(f"{self.store.path}: frame {j} was already passed (forward-only reader)")
        while self.next_index <= j:
            try:
                frame = next(self.frames)
            except StopIteration:
                raise DataError(f"{self.store.path}: ends at frame {self.next_index - 1}, frame {j} was "
                                f"expected") from None
            self.last = frame.to_ndarray(format="gray16le")
            self.next_index += 1
        return self.store.to_metres(self.last[None])[0]

    def close(self) -> None:
        self.container.close()


def open_depth_path(path: PathLike, depth_scale: float) -> DepthStore:
    """A depth recording given by path: a PNG16 folder (gaps allowed), .npz (key `depth`), .npy or FFV1 .mkv."""
    p = Path(path)
    if p.is_dir():
        return SparsePngDepth(p, depth_scale)
    if not p.is_file():
        raise DataError(f"{p}: depth not found; pass a folder of 16-bit PNGs, a .npz/.npy array or an FFV1 .mkv")
    kinds = {".npz": NpzDepthStore, ".npy": NpyDepthStore, ".mkv": MkvDepthStore}
    if p.suffix.lower() not in kinds:
        raise DataError(f"{p}: unknown depth file type '{p.suffix}'; use a PNG16 folder, .npz, .npy or FFV1 .mkv "
                        f"(8-bit video cannot hold depth)")
    return kinds[p.suffix.lower()](p, depth_scale)


def _dataset_yaml_near(depth: Path) -> Dict[str, Any]:
    """dataset.yaml of the ROOT a depth path lies in (ROOT/depth/<id>[.ext]), else {}."""
    cand = depth.resolve().parent.parent / "dataset.yaml"
    if depth.resolve().parent.name == "depth" and cand.is_file():
        try:
            return read_dataset_yaml(cand)
        except DataError as e:
            _logger.warning("ignoring %s: %s", cand, e)
    return {}


@dataclass
class Alignment:
    """How the depth frames were matched to the RGB clock (reported in pred.json)."""

    rgb_frames: int
    rgb_fps: float
    depth_path: Optional[str] = None
    depth_kind: Optional[str] = None
    depth_frames: int = 0
    depth_fps: Optional[float] = None
    matched_by: Optional[str] = None  # "index" (depth frame k = RGB frame k) or "timestamp"
    mismatch: List[str] = field(default_factory=list)
    rgb_frames_without_depth: int = 0  # RGB frames with no depth frame for their time (gap, end of stream, none)
    empty_depth_frames: int = 0  # RGB frames whose depth frame has no valid reading
    depth_frames_unused: int = 0  # depth frames never matched to an RGB frame

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


class RGBDClip:
    """A recorded RGB video plus optional depth, aligned on the RGB clock (frame k at k / rgb_fps seconds).

    Without a depth frame rate (`depth_fps` argument, the ROOT's dataset.yaml, or the .mkv's own rate), depth frame k
    belongs to RGB frame k (DATA-FORMAT). With one, RGB frame k takes the last depth frame at or before its time
    (`r3d.data.protocols.frame_at`, as `match_depth_indices` does for training), and none once the depth stream has
    ended. Frame count and rate mismatches are listed in `alignment.mismatch`.
    """

    def __init__(self, rgb: PathLike, depth: Optional[PathLike] = None, depth_scale: Optional[float] = None,
                 depth_fps: Optional[float] = None, cfg: Optional[Mapping] = None, chunk: int = 32) -> None:
        self.rgb_path = Path(rgb)
        info = probe_video(self.rgb_path)
        self.num_frames, self.fps = info.num_frames, info.fps
        self.height, self.width = info.height, info.width
        self.chunk = max(1, int(chunk))
        self.alignment = Alignment(rgb_frames=self.num_frames, rgb_fps=self.fps)
        self.store: Optional[DepthStore] = None
        self.depth_index = np.full(self.num_frames, -1, dtype=np.int64)  # depth frame per RGB frame (-1 = none)
        self.depth_facts: Dict[str, Any] = {}
        if depth is None:
            self.alignment.rgb_frames_without_depth = self.num_frames
            return
        near = _dataset_yaml_near(Path(depth))
        facts = resolve_depth(near, cfg)  # config (checkpoint) values, else dataset.yaml, else defaults
        if depth_scale is not None:
            facts["depth_scale"] = float(depth_scale)
        if depth_fps is not None:
            facts["depth_fps"] = float(depth_fps)
        self.depth_facts = facts
        self.store = open_depth_path(depth, facts["depth_scale"])
        if facts.get("depth_fps") is None and self.store.fps is not None:
            facts["depth_fps"] = float(self.store.fps)
        self._align(facts.get("depth_fps"))

    def _align(self, depth_fps: Optional[float]) -> None:
        a, store = self.alignment, self.store
        a.depth_path, a.depth_kind, a.depth_frames, a.depth_fps = str(store.path), store.kind, store.num_frames, \
            depth_fps
        k = np.arange(self.num_frames)
        if depth_fps is None:
            a.matched_by = "index"
            j = k.copy()
            if store.num_frames != self.num_frames:
                a.mismatch.append(f"{store.num_frames} depth frames for {self.num_frames} RGB frames (no depth frame "
                                  f"rate given, matched by index: depth frame k = RGB frame k); pass --depth-fps if "
                                  f"the depth stream runs at another rate")
        else:
            if not depth_fps > 0:
                raise DataError(f"depth frame rate must be > 0, got {depth_fps}")
            a.matched_by = "timestamp"
            j = np.array([frame_at(int(i) / self.fps, depth_fps) for i in k], dtype=np.int64)
            if abs(depth_fps - self.fps) > 1e-3 * self.fps:
                a.mismatch.append(f"depth at {depth_fps:g} fps, RGB at {self.fps:g} fps: matched by timestamp (each "
                                  f"RGB frame takes the last depth frame at or before its time)")
            rgb_s, depth_s = self.num_frames / self.fps, store.num_frames / depth_fps
            if abs(rgb_s - depth_s) > max(1.0 / self.fps, 1.0 / depth_fps):
                a.mismatch.append(f"depth covers {depth_s:.2f} s ({store.num_frames} frames), RGB {rgb_s:.2f} s "
                                  f"({self.num_frames} frames)")
        ok = (j >= 0) & (j < store.num_frames)
        if isinstance(store, SparsePngDepth):
            ok &= np.array([store.has(int(x)) for x in j], dtype=bool)
            if store.gaps:
                a.mismatch.append(f"{store.gaps} depth frames missing from {store.path} (numbering gaps)")
        self.depth_index = np.where(ok, j, -1)
        a.rgb_frames_without_depth = int((~ok).sum())
        used = set(self.depth_index[ok].tolist())
        a.depth_frames_unused = int(store.num_frames - len(used) - getattr(store, "gaps", 0))
        if a.rgb_frames_without_depth:
            a.mismatch.append(f"{a.rgb_frames_without_depth} of {self.num_frames} RGB frames have no depth frame: "
                              f"they are missing-modality frames")

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def frames(self) -> Iterator[Tuple[int, float, np.ndarray, Optional[np.ndarray]]]:
        """(k, t, rgb (H,W,3) uint8, depth (h,w) float32 metres or None) for every RGB frame, in time order.

        RGB is decoded in chunks of `chunk` consecutive frames (one decord call each); a depth frame with no valid
        reading (all 0 / non-finite) is returned as None and counted in `alignment.empty_depth_frames`.
        """
        mkv = _SequentialMkv(self.store) if isinstance(self.store, MkvDepthStore) else None
        try:
            for start in range(0, self.num_frames, self.chunk):
                ks = np.arange(start, min(start + self.chunk, self.num_frames))
                rgb = read_rgb_frames(self.rgb_path, ks)
                js = self.depth_index[ks]
                depth: Dict[int, np.ndarray] = {}
                want = sorted({int(j) for j in js if j >= 0})
                if want and mkv is not None:
                    depth = {j: mkv.read(j) for j in want}
                elif want:
                    depth = dict(zip(want, self.store.read(want)))
                for i, k in enumerate(ks):
                    d = depth.get(int(js[i])) if js[i] >= 0 else None
                    if d is not None and not (np.isfinite(d) & (d > 0)).any():
                        self.alignment.empty_depth_frames += 1
                        d = None
                    yield int(k), float(k) / self.fps, rgb[i], d
        finally:
            if mkv is not None:
                mkv.close()


# -- the demo driver -------------------------------------------------------------------------------------------------
def _round(x: Optional[float], nd: int = 4) -> Optional[float]:
    return None if x is None else round(float(x), nd)


def step_entry(pred: Mapping[str, Any], step: int) -> Dict[str, Any]:
    """The JSON record of one prediction (tensors dropped, floats rounded)."""
    return {
        "step": step,
        "frame": pred["frame"],
        "time": _round(pred["time"]),
        "window_start": _round(pred["window_start"]),
        "window": list(pred["window"]),
        "missing": list(pred["missing"]),
        "depth_missing_frames": list(pred["depth_missing_frames"]),
        "substituted": list(pred["substituted"]),
        "topk": [{**a, "prob": _round(a["prob"], 6)} for a in pred["topk"]],
        "erank": {m: _round(v) for m, v in pred["erank"].items()},
    }


def run_demo(checkpoint: PathLike, rgb: PathLike, depth: Optional[PathLike] = None,
             out: Optional[PathLike] = "pred.json", video: Optional[PathLike] = None, stride: Optional[int] = None,
             topk: int = 5, depth_scale: Optional[float] = None, depth_fps: Optional[float] = None,
             progress: bool = True, warn: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Stream a recording through a checkpoint; write pred.json (and an overlay video); return the JSON document.

    Args:
        checkpoint: run folder or model.safetensors (with model.json next to it).
        rgb: colour video. depth: PNG16 folder / .npz / .npy / FFV1 .mkv, or None (RGB-only, with a warning).
        out: pred.json path (None: not written). video: overlay .mp4 path (None: not written).
        stride: frames between predictions (default: the model's sampling spacing in frames).
        topk: actions per prediction. depth_scale: metres per depth unit. depth_fps: depth frame rate if it differs.
        progress: tqdm progress bar. warn: callable(str) for warnings (default: logging).
    Raises:
        ClipTooShort when the clip ends before the first full observation window; DataError for unreadable input.
    """
    from tqdm import tqdm

    if stride is not None and stride < 1:
        raise ValueError(f"--stride must be >= 1 frame, got {stride}")
    if topk < 1:
        raise ValueError(f"--topk must be >= 1, got {topk}")
    warn = warn or _logger.warning
    warnings: List[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    meta = load_meta(checkpoint)
    cfg = config_from_meta(meta)
    clip = RGBDClip(rgb, depth, depth_scale=depth_scale, depth_fps=depth_fps, cfg=cfg)
    facts = clip.depth_facts or resolve_depth({}, cfg)
    engine = StreamingAnticipator.from_checkpoint(checkpoint, clip.fps, topk=topk,
                                                  depth_range=(facts["depth_min"], facts["depth_max"]))
    mods = engine.modalities
    if "rgb" not in mods and depth is None:
        raise DataError(f"{checkpoint}: this model uses depth only ({mods}); pass --depth")
    if depth is None:
        if "depth" in mods:
            sub = "EBR substitutes depth from RGB" if engine.has_ebr else \
                "depth tokens are zeros + mask (no EBR in this checkpoint)"
            note(f"no --depth given: RGB-only inference, depth is missing in every window ({sub})")
    elif "depth" not in mods:
        note(f"this checkpoint uses {mods} only: the depth recording is shown in the overlay but not used")
    for msg in clip.alignment.mismatch:
        note(msg)
    if clip.alignment.rgb_frames_without_depth and depth is not None and "depth" in mods and not engine.has_ebr:
        note("this checkpoint has no EBR: windows with missing depth run with zeroed depth tokens")
    for m, mode in engine.backbone_mode.items():
        if mode == "recompute":
            kind = cfg.model[f"{m}_backbone"].kind
            note(f"{m} backbone kind '{kind}' mixes neighbouring frames, so its tokens cannot be cached per frame: "
                 f"it is re-run over the {engine.num_frames} window frames at every step")
    first = engine.first_ready_frame()
    if first >= clip.num_frames:
        need = (engine.num_frames - 1) * engine.spacing
        raise ClipTooShort(
            f"{rgb}: the clip is {clip.seconds:.2f} s ({clip.num_frames} frames at {clip.fps:g} fps), shorter than one "
            f"observation window: the model samples {engine.num_frames} frames every {engine.spacing:g} s "
            f"(tau_o = {engine.tau_o:g} s), so the first prediction needs frame {first} ({need:.2f} s of history). "
            f"Use a clip of at least {(first + 1) / clip.fps:.2f} s")

    stride = engine.default_stride() if stride is None else int(stride)
    overlay = None
    if video is not None:
        from ..viz.overlay import OverlayWriter

        overlay = OverlayWriter(video, clip.fps, (clip.height, clip.width), num_frames=clip.num_frames,
                                topk=topk, depth_range=engine.depth_range, window_seconds=engine.tau_o)
    steps: List[Dict[str, Any]] = []
    latest: Optional[Dict[str, Any]] = None
    t0 = time.perf_counter()
    try:
        with tqdm(total=clip.num_frames, desc="streaming", unit="frame", disable=not progress) as bar:
            for k, t, frame, dframe in clip.frames():
                engine.push(frame, dframe, t)
                if k >= first and (k - first) % stride == 0:
                    latest = engine.predict()
                    steps.append(step_entry(latest, len(steps)))
                    top = latest["topk"][0] if latest["topk"] else None
                    bar.set_postfix_str(f"t={t:.1f}s" + (f" {top['verb']} {top['noun']}" if top else ""))
                if overlay is not None:
                    overlay.write(frame, dframe, latest, t=t, frame_index=k)
                bar.update(1)
    finally:
        if overlay is not None:
            overlay.close()
    seconds = time.perf_counter() - t0
    if clip.alignment.empty_depth_frames:
        note(f"{clip.alignment.empty_depth_frames} depth frames have no valid reading (all 0 or non-finite): "
             f"treated as missing-modality frames")
    align = clip.alignment.to_dict()
    doc = {
        "checkpoint": str(checkpoint),
        "rgb": str(rgb),
        "depth": None if depth is None else str(depth),
        "modalities": mods,
        "fps": clip.fps,
        "num_frames": clip.num_frames,
        "window": {"num_frames": engine.num_frames, "tau_o": engine.tau_o, "spacing_s": engine.spacing,
                   "first_frame": first},
        "stride": stride,
        "topk": topk,
        "backbone_mode": dict(engine.backbone_mode),
        "missing_depth": "ebr" if engine.has_ebr else "zeros",
        "alignment": align,
        "warnings": warnings,
        "steps": steps,
        "summary": {"frames": clip.num_frames, "steps": len(steps), "seconds": round(seconds, 3),
                    "frames_per_second": round(clip.num_frames / max(seconds, 1e-9), 2),
                    "steps_with_missing_depth": sum(1 for s in steps if "depth" in s["missing"]),
                    "backbone_passes": dict(engine.backbone_passes),
                    "out": None if out is None else str(out), "video": None if video is None else str(video)},
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps(doc, indent=1))
    return doc
