"""The streaming demo's overlay video (OpenCV only): what the model sees and what it anticipates, frame by frame.

```
+--------------------------+--------------------------+
|  RGB frame               |  depth colormap (turbo), |   640 px wide; each panel 320 px, height from the aspect
|                          |  holes (no reading) black |
+--------------------------+--------------------------+
|  anticipated next action: top-k bars with probabilities |
+-----------------------------------------------------+
|  top-1 timeline: one colour per action, red underline   |
|  where the window lacked a modality                    |
+-----------------------------------------------------+
```
`render_overlay` draws one frame from a prediction dict of `r3d.engine.stream.StreamingAnticipator.predict` (or None
before the first full window); `OverlayWriter` writes them as mp4v with `cv2.VideoWriter` at the clip's frame rate, one
overlay frame per RGB frame.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

PathLike = Union[str, os.PathLike]

WIDTH = 640
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT = (235, 235, 235)  # BGR
DIM = (150, 150, 150)
BG = (28, 28, 28)
WARN = (60, 80, 235)
ROW = 22  # bar-chart row height (px)
TIMELINE_H = 54


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def action_colour(action: int) -> Tuple[int, int, int]:
    """A distinct, stable BGR colour per action id (golden-angle hues)."""
    hue = int((action * 137.508) % 180)
    hsv = np.uint8([[[hue, 200, 235]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def depth_colormap(depth_m: np.ndarray, depth_min: float, depth_max: float) -> np.ndarray:
    """(h, w) metres -> (h, w, 3) uint8 BGR turbo colormap over [depth_min, depth_max]; holes (0, non-finite, outside
    the range) black."""
    d = np.asarray(depth_m, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & (d > 0) & (d >= depth_min) & (d <= depth_max)
    u = np.where(valid, (d - depth_min) / max(depth_max - depth_min, 1e-6), 0.0)
    img = cv2.applyColorMap(np.clip(u * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[~valid] = 0
    return img


def _text(img: np.ndarray, s: str, org: Tuple[int, int], scale: float = 0.45, colour=TEXT, box: bool = False) -> None:
    """Text with its baseline at `org`; `box` puts a dark box behind it (readable over any image)."""
    if box:
        (w, h), base = cv2.getTextSize(s, FONT, scale, 1)
        x, y = org
        cv2.rectangle(img, (x - 4, y - h - 4), (x + w + 4, y + base + 2), BG, -1)
    cv2.putText(img, s, org, FONT, scale, colour, 1, cv2.LINE_AA)


def _colourbar(img: np.ndarray, x: int, y: int, w: int, depth_range: Tuple[float, float]) -> None:
    """A small turbo legend at (x, y): near (depth_min) on the left, far (depth_max) on the right."""
    ramp = cv2.applyColorMap(np.linspace(0, 255, w).astype(np.uint8)[None].repeat(8, 0), cv2.COLORMAP_TURBO)
    _text(img, f"{depth_range[0]:g}", (x, y - 4), scale=0.4, box=True)
    _text(img, f"{depth_range[1]:g} m", (x + w - 34, y - 4), scale=0.4, box=True)
    img[y:y + 8, x:x + w] = ramp


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    up = w >= 2 * img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if up else cv2.INTER_AREA)


class OverlayLayout:
    """Sizes of the overlay for frames of `frame_hw` and `topk` bars: panels, chart and timeline stacked vertically."""

    def __init__(self, frame_hw: Tuple[int, int], topk: int, width: int = WIDTH) -> None:
        h, w = frame_hw
        self.width = _even(width)
        self.panel_w = self.width // 2
        self.panel_h = _even(self.panel_w * h / max(w, 1))
        self.chart_h = 30 + max(1, topk) * ROW + 6
        self.timeline_h = TIMELINE_H
        self.height = _even(self.panel_h + self.chart_h + self.timeline_h)


def render_overlay(layout: OverlayLayout, rgb: np.ndarray, depth_m: Optional[np.ndarray],
                   pred: Optional[Mapping[str, Any]], history: Sequence[Tuple[float, int, bool]], *, t: float,
                   frame_index: int, duration: float, depth_range: Tuple[float, float], topk: int,
                   window_seconds: float) -> np.ndarray:
    """One overlay frame, (layout.height, layout.width, 3) uint8 BGR.

    Args:
        rgb: (H, W, 3) uint8 RGB. depth_m: (h, w) metres, or None (no depth for this frame).
        pred: the newest prediction (`StreamingAnticipator.predict`), or None before the first full window.
        history: (time, top-1 action id, a modality was missing) of every prediction so far, for the timeline.
        t / frame_index: the current frame. duration: clip length in seconds (timeline scale).
    """
    L = layout
    img = np.full((L.height, L.width, 3), BG, np.uint8)
    pw, ph = L.panel_w, L.panel_h
    img[:ph, :pw] = _fit(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), pw, ph)
    if depth_m is not None:
        img[:ph, pw:2 * pw] = _fit(depth_colormap(depth_m, *depth_range), pw, ph)
        _text(img, "depth (holes black)", (pw + 8, 20), box=True)
        if ph >= 80:
            _colourbar(img, pw + 8, ph - 14, min(140, pw - 16), depth_range)
    else:
        img[:ph, pw:2 * pw] = (45, 45, 45)
        _text(img, "depth missing", (pw + 8, 20), colour=WARN, box=True)
    _text(img, f"RGB  t = {t:.2f} s  frame {frame_index}", (8, 20), box=True)
    cv2.line(img, (pw, 0), (pw, ph), BG, 2)

    # -- top-k bar chart -----------------------------------------------------------------------------------------------
    y0 = ph
    if pred is None:
        _text(img, f"waiting for the first full observation window ({window_seconds:g} s)", (8, y0 + 22), colour=DIM)
    else:
        missing = pred.get("missing") or []
        sub = pred.get("substituted") or []
        head = f"next action, seen {pred['window_start']:.2f}-{pred['time']:.2f} s"
        _text(img, head, (8, y0 + 20))
        if missing:
            s = "missing: " + ", ".join(missing) + (" (EBR substituted)" if sub else "")
            _text(img, s, (L.width - 8 - cv2.getTextSize(s, FONT, 0.45, 1)[0][0], y0 + 20), colour=WARN)
        label_w, prob_w = 190, 48
        bar_x, bar_max = 8 + label_w, L.width - 8 - label_w - prob_w - 8
        for r, a in enumerate(list(pred.get("topk") or [])[:topk]):
            y = y0 + 30 + r * ROW
            _text(img, f"{a['verb']} {a['noun']}"[:24], (8, y + 15), colour=TEXT if r == 0 else DIM)
            cv2.rectangle(img, (bar_x, y + 3), (bar_x + bar_max, y + ROW - 3), (55, 55, 55), -1)
            cv2.rectangle(img, (bar_x, y + 3), (bar_x + max(1, int(bar_max * a["prob"])), y + ROW - 3),
                          action_colour(int(a["action"])), -1)
            _text(img, f"{a['prob']:.2f}", (bar_x + bar_max + 8, y + 15), colour=TEXT if r == 0 else DIM)

    # -- top-1 timeline ------------------------------------------------------------------------------------------------
    y0 = ph + L.chart_h
    x0, x1 = 8, L.width - 8
    _text(img, "top-1 over time", (8, y0 + 16), scale=0.4, colour=DIM)
    _text(img, f"{duration:.1f} s", (x1 - 44, y0 + 16), scale=0.4, colour=DIM)
    ty0, ty1 = y0 + 24, y0 + L.timeline_h - 8
    cv2.rectangle(img, (x0, ty0), (x1, ty1), (55, 55, 55), -1)

    def xpos(s: float) -> int:
        return x0 + int(round((x1 - x0) * min(max(s / max(duration, 1e-9), 0.0), 1.0)))

    for i, (ts, action, missing) in enumerate(history):
        nxt = history[i + 1][0] if i + 1 < len(history) else t
        cv2.rectangle(img, (xpos(ts), ty0), (max(xpos(nxt), xpos(ts) + 1), ty1), action_colour(action), -1)
        if missing:  # a red underline marks steps whose window lacked a modality
            cv2.rectangle(img, (xpos(ts), ty1 - 4), (max(xpos(nxt), xpos(ts) + 1), ty1), WARN, -1)
    cv2.line(img, (xpos(t), ty0 - 3), (xpos(t), ty1 + 3), TEXT, 2)
    return img


class OverlayWriter:
    """Writes one overlay frame per RGB frame into an mp4v video (`cv2.VideoWriter`).

    Args:
        path: output .mp4. fps: the clip's frame rate. frame_hw: (H, W) of the RGB frames.
        num_frames: frames in the clip (timeline scale). topk: bars. depth_range: colormap range in metres.
        window_seconds: τo, shown before the first prediction. width: overlay width in pixels.
    """

    def __init__(self, path: PathLike, fps: float, frame_hw: Tuple[int, int], num_frames: int, topk: int = 5,
                 depth_range: Tuple[float, float] = (0.2, 4.5), window_seconds: float = 0.0,
                 width: int = WIDTH) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.layout = OverlayLayout(frame_hw, topk, width)
        self.duration = num_frames / self.fps
        self.topk, self.depth_range, self.window_seconds = topk, depth_range, window_seconds
        self.history: List[Tuple[float, int, bool]] = []
        self._last_frame: Optional[int] = None
        self.frames_written = 0
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                      (self.layout.width, self.layout.height))
        if not self.writer.isOpened():
            raise OSError(f"{self.path}: cv2.VideoWriter cannot write mp4v here; check the folder and the .mp4 name")

    def write(self, rgb: np.ndarray, depth_m: Optional[np.ndarray], pred: Optional[Mapping[str, Any]], *, t: float,
              frame_index: int) -> np.ndarray:
        """Render and append the overlay of one frame; returns it (BGR)."""
        if pred is not None and pred.get("topk") and pred["frame"] != self._last_frame:
            self.history.append((float(pred["time"]), int(pred["topk"][0]["action"]), bool(pred.get("missing"))))
            self._last_frame = pred["frame"]
        img = render_overlay(self.layout, rgb, depth_m, pred, self.history, t=t, frame_index=frame_index,
                             duration=self.duration, depth_range=self.depth_range, topk=self.topk,
                             window_seconds=self.window_seconds)
        self.writer.write(img)
        self.frames_written += 1
        return img

    def close(self) -> None:
        self.writer.release()

    def __enter__(self) -> "OverlayWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
