"""The streaming demo: a recorded RGB-D clip through a checkpoint, frame by frame, into pred.json and an overlay video.

`run_demo` opens the clip (`r3d.data.clip.RGBDClip`), rebuilds the checkpoint's model in a `StreamingAnticipator`,
pushes every frame and predicts every `stride` frames, and writes what it saw: predictions, alignment of depth to the
colour clock, warnings. tools/demo.py is a thin wrapper around it.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np
from tqdm import tqdm

from ..data.clip import RGBDClip, clip_depth_settings
from ..data.errors import DataError
from ..data.recordings import is_recording
from ..viz.overlay import OverlayWriter
from .builder import checkpoint_depth, load_trained_model
from .checkpoint import PathLike, config_from_meta, write_text_atomic
from .stream import StreamingAnticipator

_logger = logging.getLogger("r3d.demo")


class ClipTooShort(ValueError):
    """The clip ends before the first full observation window."""


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
             topk: int = 5, depth_scale: Optional[float] = None, depth_min: Optional[float] = None,
             depth_max: Optional[float] = None, depth_fps: Optional[float] = None, progress: bool = True,
             warn: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Stream a recording through a checkpoint; write pred.json (and an overlay video); return the JSON document.

    Args:
        checkpoint: run folder or model.safetensors (with model.json next to it).
        rgb: colour video, or a sensor recording (Azure Kinect / Orbbec .mkv, RealSense .bag) that holds both streams.
        depth: PNG16 folder / .npz / .npy / FFV1 .mkv, or None (a recording's own depth; else RGB-only, warned).
        out: pred.json path (None: not written). video: overlay .mp4 path (None: not written).
        stride: frames between predictions (default: the model's sampling spacing in frames).
        topk: actions per prediction.
        depth_scale / depth_min / depth_max / depth_fps: explicit depth settings; each one left None comes from
            `r3d.data.clip.clip_depth_settings` (the checkpoint's trained range; the clip's ROOT dataset.yaml for the
            scale and rate).
        progress: tqdm progress bar. warn: callable(str) for warnings (default: logging).
    Raises:
        ClipTooShort when the clip ends before the first full observation window; DataError for unreadable input.
    """
    if stride is not None and stride < 1:
        raise ValueError(f"--stride must be >= 1 frame, got {stride}")
    if topk < 1:
        raise ValueError(f"--topk must be >= 1, got {topk}")
    warn = warn or _logger.warning
    warnings: List[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    model, meta = load_trained_model(checkpoint)
    recording = is_recording(rgb, look_inside=True)  # one sensor file with both streams
    source = depth if depth is not None or not recording else rgb
    settings = clip_depth_settings(source, checkpoint_depth(meta), depth_scale=depth_scale, depth_min=depth_min,
                                   depth_max=depth_max, depth_fps=depth_fps)
    clip = RGBDClip(rgb, depth, depth_settings=settings)
    has_depth = clip.store is not None
    cfg = config_from_meta(meta)
    engine = StreamingAnticipator(model, cfg, clip.fps, meta.get("verb_classes"), meta.get("noun_classes"),
                                  meta.get("actions"), depth_range=(settings["depth_min"], settings["depth_max"]),
                                  topk=topk)
    mods = engine.modalities
    if "rgb" not in mods and not has_depth:
        raise DataError(f"{checkpoint}: this model uses depth only ({mods}); pass --depth")
    if "rgb" in mods and not clip.has_rgb:
        raise DataError(f"{rgb}: the recording has no colour stream, and this model uses RGB ({mods})")
    if not has_depth:
        if "depth" in mods:
            sub = "EBR substitutes depth from RGB" if engine.has_ebr else \
                "depth tokens are zeros + mask (no EBR in this checkpoint)"
            note(f"no --depth given: RGB-only inference, depth is missing in every window ({sub})")
    elif "depth" not in mods:
        note(f"this checkpoint uses {mods} only: the depth recording is shown in the overlay but not used")
    for msg in clip.alignment.mismatch:
        note(msg)
    if clip.alignment.rgb_frames_without_depth and has_depth and "depth" in mods and not engine.has_ebr:
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
                if overlay is not None:  # a recording without colour shows a black colour panel
                    shown = frame if frame is not None else np.zeros((clip.height, clip.width, 3), np.uint8)
                    overlay.write(shown, dframe, latest, t=t, frame_index=k)
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
        "depth": str(depth) if depth is not None else (str(rgb) if has_depth else None),
        "recording": clip.recording.summary() if clip.recording is not None else None,
        "modalities": mods,
        "fps": clip.fps,
        "num_frames": clip.num_frames,
        "window": {"num_frames": engine.num_frames, "tau_o": engine.tau_o, "spacing_s": engine.spacing,
                   "first_frame": first},
        "stride": stride,
        "topk": topk,
        "backbone_mode": dict(engine.backbone_mode),
        "missing_depth": "ebr" if engine.has_ebr else "zeros",
        "depth_settings": settings,
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
