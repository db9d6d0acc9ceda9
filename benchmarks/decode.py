"""P5: is the loader's video reading at the decoder's limit? Every window of a clip vs one sequential decode of it.

The clip is generated here so that it looks like a real recording: 456×256 pixels, 30 fps, H.264 (libx264, crf 23,
preset veryfast, B-frames as x264 decides), 120 s (quick: 30 s) of textured background with moving, shaded objects and
sensor noise, encoded twice: with a keyframe every 2 s and every 8 s (`GOPS`). The windows are the next-action
protocol's (`r3d.data.protocols.next_action_window`): one every 3 s of the clip, 8 frames over the 2 s before it.

- A (the loader): every window read the way `AnticipationDataset.__getitem__` reads one — `r3d.data.io.read_rgb_frames`
  on the window's 8 frame indices (decord's batched `get_batch`, PyAV where decord cannot), one call per window.
- B (the decode limit): one sequential pass over the whole file, every frame decoded to an RGB array and dropped
  (PyAV with frame threading) — what a reader that touched every frame exactly once would pay.

Rounds alternate A and B (`timing.interleaved`); the figure is the median paired ratio of wall seconds A / B per GOP
(target ≤ 1.4x: reading windows costs about what decoding the file once costs, so the reader is at the decoder's limit
rather than re-decoding a keyframe interval per window). With a 3 s stride the windows cover 2 s of every 3 s, and a
window's first frame sits up to one GOP after its keyframe, so a longer GOP decodes more frames that nobody uses.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import av
import numpy as np

from r3d.config import Config
from r3d.data.io import read_rgb_frames
from r3d.data.protocols import next_action_window

from .timing import Figure, interleaved, paired_ratio

TARGET = 1.4
WIDTH, HEIGHT, FPS = 456, 256, 30
GOPS = (2.0, 8.0)  # seconds between keyframes
WINDOW_EVERY, TAU_O, NUM_FRAMES = 3.0, 2.0, 8


def write_clip(path: Path, seconds: float, gop_seconds: float, seed: int = 0) -> Path:
    """Encode a real-looking `seconds`-long H.264 clip (module docstring) with a keyframe every `gop_seconds`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    texture = rng.integers(0, 256, (HEIGHT // 8 + 1, WIDTH // 8 + 1, 3)).astype(np.float32)
    texture = np.kron(texture, np.ones((8, 8, 1), np.float32))[:HEIGHT, :WIDTH]
    blobs = rng.uniform(0, 1, (6, 5))  # x, y, radius, speed, phase of each object
    colours = rng.integers(40, 256, (6, 3)).astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.gop_size = int(round(gop_seconds * FPS))
        stream.options = {"crf": "23", "preset": "veryfast", "keyint_min": str(stream.gop_size),
                          "sc_threshold": "0"}
        for k in range(int(round(seconds * FPS))):
            t = k / FPS
            shift = int(20 * np.sin(0.3 * t))  # the camera pans slowly
            frame = np.roll(texture, shift, axis=1) * (0.85 + 0.1 * np.sin(0.7 * t))
            for (bx, by, br, bs, bp), c in zip(blobs, colours):
                cx = WIDTH * (0.5 + 0.4 * np.sin(bs * t + 6 * bp)) + 40 * bx
                cy = HEIGHT * (0.5 + 0.35 * np.cos(0.8 * bs * t + 6 * bp)) + 20 * by
                d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (20 + 40 * br) ** 2
                shade = np.clip(1.0 - d2, 0, 1)[..., None]
                frame = frame * (1 - shade) + c * shade
            frame += rng.normal(0, 4, frame.shape)  # sensor noise
            img = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(img):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def clip_windows(num_frames: int) -> List[np.ndarray]:
    """The frame indices (8,) of every window: one ending every `WINDOW_EVERY` s, τo = 2 s, τa = 0."""
    ends = np.arange(TAU_O + WINDOW_EVERY, num_frames / FPS, WINDOW_EVERY)
    return [next_action_window(float(t), FPS, NUM_FRAMES, 0.0, TAU_O, drop_style="pad").indices for t in ends]


def read_windows(path: Path, windows: List[np.ndarray]) -> None:
    """A: every window through the loader's reader."""
    for w in windows:
        read_rgb_frames(path, w)


def decode_all(path: Path) -> int:
    """B: one sequential decode of every frame to RGB (PyAV, frame threading); returns the frame count."""
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None, workdir: Optional[str] = None,
            seconds: Optional[float] = None) -> Figure:
    """P5: wall time of reading every window vs one sequential decode, per GOP (module docstring); ≤ 1.4x."""
    reps = int(repeats or (2 if quick else 3))
    seconds = float(seconds or (30.0 if quick else 120.0))
    with tempfile.TemporaryDirectory(prefix="r3d_p5_", dir=workdir) as tmp:
        clips = {g: write_clip(Path(tmp) / f"clip_gop{g:g}s.mp4", seconds, g) for g in GOPS}
        frames = {g: decode_all(p) for g, p in clips.items()}
        windows = {g: clip_windows(frames[g]) for g in GOPS}

        fns: Dict[str, Callable[[], object]] = {}
        for g, p in clips.items():
            fns[f"{g:g}/windows"] = lambda p=p, w=windows[g]: read_windows(p, w)
            fns[f"{g:g}/sequential"] = lambda p=p: decode_all(p)
        s = interleaved(fns, reps, warmup=1).samples
        sizes = {g: p.stat().st_size for g, p in clips.items()}
    ratios = {g: paired_ratio(s[f"{g:g}/windows"], s[f"{g:g}/sequential"]) for g in GOPS}
    delivered = {g: len(windows[g]) * NUM_FRAMES for g in GOPS}
    return Figure(
        id="P5", what=f"every window of a {seconds:g} s {WIDTH}x{HEIGHT} H.264 clip vs one sequential decode "
                      f"(GOP {max(GOPS):g} s; wall time)",
        value=max(ratios.values()), target=TARGET, better="<=", unit="x",
        detail={"ratio_by_gop_s": {f"{g:g}": round(r, 3) for g, r in ratios.items()},
                "median_seconds": {k: round(statistics.median(v), 3) for k, v in s.items()},
                "frames": {f"{g:g}": frames[g] for g in GOPS}, "windows": {f"{g:g}": len(windows[g]) for g in GOPS},
                "frames_delivered": {f"{g:g}": delivered[g] for g in GOPS},
                "file_bytes": {f"{g:g}": sizes[g] for g in GOPS}, "rounds": reps,
                "window": f"{NUM_FRAMES} frames over {TAU_O:g} s, one every {WINDOW_EVERY:g} s"})
