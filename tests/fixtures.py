"""A tiny folder-format ROOT written from known arrays, so tests compare what the loader returns with what was written.

Every RGB frame k has a uniform grey background of level `grey(k)` (so a frame's index can be read back from its
pixels) and a red marker square; every depth frame k has a background of `depth_bg(k)` mm, the same marker (3000 mm)
at the same relative position, a hole (0) and an out-of-range patch (6000 mm > 4.5 m). Videos are mp4v (cv2), depth is
written in the store given per video (png folder, npz, npy float32 metres, FFV1 mkv) or left out (None).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from r3d.data.depth_writers import write_depth_ffv1, write_depth_png16

MARKER = (0.25, 0.125, 0.5, 0.375)  # (y0, x0, y1, x1) of the marker, relative to the frame
MARKER_MM = 3000
VERBS = ["take", "put", "open"]
NOUNS = ["cup", "box", "lid"]
SEGMENT_HEADER = ["narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class",
                  "noun_class", "narration"]


def grey(k: int) -> int:
    """Background grey level of RGB frame k (distinct per frame, robust to mp4v compression)."""
    return 20 + 6 * k


def depth_bg(k: int) -> int:
    """Background depth of frame k in mm."""
    return 1000 + 50 * k


def marker_slice(h: int, w: int) -> Tuple[slice, slice]:
    y0, x0, y1, x1 = MARKER
    return slice(int(round(y0 * h)), int(round(y1 * h))), slice(int(round(x0 * w)), int(round(x1 * w)))


def rgb_frame(k: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB frame k."""
    f = np.full((h, w, 3), grey(k), np.uint8)
    ys, xs = marker_slice(h, w)
    f[ys, xs] = (240, 10, 10)
    return f


def depth_frame(k: int, h: int, w: int) -> np.ndarray:
    """(h, w) uint16 depth frame k in mm, with marker, a hole (0) and an out-of-range patch (6000)."""
    d = np.full((h, w), depth_bg(k), np.uint16)
    ys, xs = marker_slice(h, w)
    d[ys, xs] = MARKER_MM
    d[-2:, -2:] = 0
    d[-2:, :2] = 6000
    return d


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def ts(seconds: float) -> str:
    """Seconds -> EK100 'HH:MM:SS.ss' timestamp."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:05.2f}"


def write_video(path: Path, frames_rgb: np.ndarray, fps: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), path
    for f in frames_rgb:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_depth(root: Path, video_id: str, kind: str, depth_mm: np.ndarray, fps: float) -> None:
    """Write (T, h, w) uint16 mm depth for `video_id` in store `kind` (png, npz, npy = float32 metres, mkv)."""
    base = root / "depth"
    base.mkdir(parents=True, exist_ok=True)
    if kind == "png":
        for i, d in enumerate(depth_mm):
            write_depth_png16(base / video_id / f"{i:06d}.png", d)
    elif kind == "npz":
        np.savez(base / f"{video_id}.npz", depth=depth_mm)
    elif kind == "npy":
        np.save(base / f"{video_id}.npy", (depth_mm.astype(np.float64) * 0.001).astype(np.float32))
    elif kind == "mkv":
        write_depth_ffv1(base / f"{video_id}.mkv", depth_mm, fps)
    else:
        raise ValueError(kind)


@dataclass
class FixtureRoot:
    root: Path
    fps: float
    rgb: Dict[str, np.ndarray] = field(default_factory=dict)       # video_id -> (T, H, W, 3) uint8 as written
    depth_mm: Dict[str, np.ndarray] = field(default_factory=dict)  # video_id -> (T, h, w) uint16 as written
    train: List[list] = field(default_factory=list)
    val: List[list] = field(default_factory=list)


DEFAULT_DEPTH_KINDS = {"v0": "png", "v1": "npz", "v2": "npy", "v3": "mkv", "v4": None}


def make_root(root: Path, depth_kinds: Optional[Dict[str, Optional[str]]] = None, num_frames: int = 30,
              fps: float = 10.0, rgb_hw: Tuple[int, int] = (48, 64), depth_hw: Tuple[int, int] = (32, 32),
              train_starts: Sequence[float] = (3.0, 2.5), val_starts: Sequence[float] = (2.8,),
              dataset_yaml: Optional[dict] = None) -> FixtureRoot:
    """Write the ROOT. Train rows: per video and start, verb = (video + row) % 3, noun = video % 3; val rows use
    noun = (video + 1) % 3, so some val pairs are unseen in train."""
    root = Path(root)
    kinds = DEFAULT_DEPTH_KINDS if depth_kinds is None else depth_kinds
    fx = FixtureRoot(root, fps)
    for vid, kind in kinds.items():
        fx.rgb[vid] = np.stack([rgb_frame(k, *rgb_hw) for k in range(num_frames)])
        write_video(root / "videos" / f"{vid}.mp4", fx.rgb[vid], fps)
        if kind is not None:
            fx.depth_mm[vid] = np.stack([depth_frame(k, *depth_hw) for k in range(num_frames)])
            write_depth(root, vid, kind, fx.depth_mm[vid], fps)
    for v, vid in enumerate(kinds):
        for r, start in enumerate(train_starts):
            fx.train.append([f"{vid}_{r}", "P01", vid, ts(start), ts(start + 1.0), (v + r) % 3, v % 3, "x"])
        for r, start in enumerate(val_starts):
            fx.val.append([f"{vid}_val{r}", "P02", vid, ts(start), ts(start + 0.5), v % 3, (v + 1) % 3, "y"])
    ann = root / "annotations"
    write_csv(ann / "train.csv", SEGMENT_HEADER, fx.train)
    write_csv(ann / "val.csv", SEGMENT_HEADER, fx.val)
    write_csv(ann / "verb_classes.csv", ["id", "key", "instances"], [[i, k, 1] for i, k in enumerate(VERBS)])
    write_csv(ann / "noun_classes.csv", ["id", "key"], [[i, k] for i, k in enumerate(NOUNS)])
    if dataset_yaml is not None:
        (root / "dataset.yaml").write_text(yaml.safe_dump(dataset_yaml))
    return fx
