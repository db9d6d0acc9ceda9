"""P4: the streaming demo's rate, and the cost of a long history, with `r3d.engine.stream`.

The demo's per-frame work is `StreamingAnticipator.push` (evaluation transform + one backbone pass per modality into
the ring buffer) and, every `stride` frames, `predict` (projection, fusion and head over the T window tokens); this
module times exactly those calls on random frames of the model's input size (the cost does not depend on the
pixels), with the benchmark model (random weights). Decoding the clip and drawing the overlay are left out of P4
and P4b; P4c times the whole `run_demo` on the bundled clip with the bundled checkpoint, as `tools/demo.py --sample`
runs it.

- P4: frames per second of push + predict at the demo's default stride (one prediction per sampling step). The
  median over repetitions of wall-clock rates; the CPU-time rate (what one free core gives) is in the detail.
- P4b: cost per frame with a 64-frame history vs an 8-frame history (`data.num_frames` 64 vs 8, `data.tau_o` scaled
  so the spacing between sampled frames stays the same), both at the default stride, interleaved round by round;
  the median paired ratio of CPU seconds (a cost, measured like P1: robust to the other jobs on the machine). With a
  per-frame cache only the small fusion/head work grows with T.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from r3d.config import Config, apply_overrides
from r3d.data.clip import sample_clip
from r3d.engine.demo import run_demo
from r3d.engine.export import bundled_checkpoint
from r3d.engine.stream import StreamingAnticipator

from .common import build_random_model, class_counts
from .timing import Figure, Measured, interleaved, paired_ratio

RATE_TARGET = 30.0
HISTORY_TARGET = 1.2


def streaming_engine(cfg: Config, num_frames: Optional[int] = None):
    """A `StreamingAnticipator` of the config's model (random weights) at `synthetic.fps`; `num_frames` rebuilds it
    with that history (T) at the same spacing between sampled frames."""
    if num_frames is not None:
        spacing = float(cfg.data.tau_o) / int(cfg.data.num_frames)
        cfg = apply_overrides(cfg, [f"data.num_frames={num_frames}", f"data.tau_o={num_frames * spacing}"])
    c = class_counts(cfg)
    return StreamingAnticipator(build_random_model(cfg), cfg, float(cfg.synthetic.fps), actions=c["actions"])


def random_frames(size: int, n: int = 16, seed: int = 0):
    """n random RGB frames (n, size, size, 3) uint8 and depth frames (n, size, size) float32 metres in [0.5, 4)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            rng.uniform(0.5, 4.0, (n, size, size)).astype(np.float32))


def stream_seconds(engine, frames: int, stride: int, rgb: np.ndarray, depth: np.ndarray, clock=time.perf_counter
                   ) -> float:
    """Seconds (of `clock`) for the next `frames` pushes with a prediction every `stride` frames. The first call
    after a reset first fills one window (untimed); later calls continue the same stream."""
    n = len(rgb)
    while not engine.ready:
        engine.push(rgb[engine.count % n], depth[engine.count % n])
    t0 = clock()
    for i in range(frames):
        engine.push(rgb[engine.count % n], depth[engine.count % n])
        if i % stride == 0:
            engine.predict()
    return clock() - t0


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None) -> List[Figure]:
    """P4: streaming frames/s (≥ 30); P4b: 64-frame / 8-frame history cost per frame (≤ 1.2x).

    quick: 32 frames per measurement, 5 repetitions; full: 64 frames, 9.
    """
    reps = int(repeats or (5 if quick else 9))
    frames = 32 if quick else 64
    rgb, depth = random_frames(int(cfg.data.img_size))
    base = streaming_engine(cfg)
    stride = base.default_stride()
    stream_seconds(base, 4, stride, rgb, depth)  # warm-up
    wall, cpu_rate = [], []
    for _ in range(reps):
        wall.append(frames / stream_seconds(base, frames, stride, rgb, depth))
        cpu_rate.append(frames / stream_seconds(base, frames, stride, rgb, depth, clock=time.process_time))
    rate = Figure(
        id="P4", what=f"demo streaming rate, default model (T={base.num_frames}, stride {stride})",
        value=statistics.median(wall), target=RATE_TARGET, better=">=", unit=" fr/s",
        detail={"wall_rates": [round(x, 1) for x in wall], "cpu_rate_median": round(statistics.median(cpu_rate), 1),
                "frames": frames, "stride": stride, "torch_threads": torch.get_num_threads()})

    engines = {h: streaming_engine(cfg, h) for h in (8, 64)}
    cpu = time.process_time
    fns: Dict[str, object] = {}
    for h, e in engines.items():
        fns[f"T{h}"] = lambda e=e: Measured(stream_seconds(e, frames, stride, rgb, depth, cpu) / frames)
        fns[f"T{h}_stride1"] = lambda e=e: Measured(stream_seconds(e, frames, 1, rgb, depth, cpu) / frames)
    s = interleaved(fns, reps, warmup=1).samples
    history = Figure(
        id="P4b", what=f"demo cost per frame, 64- vs 8-frame history (stride {stride})",
        value=paired_ratio(s["T64"], s["T8"]), target=HISTORY_TARGET, unit="x",
        detail={"cpu_ms_per_frame": {k: round(1000 * statistics.median(v), 2) for k, v in s.items()},
                "paired_ratios": [round(a / b, 3) for a, b in zip(s["T64"], s["T8"])],
                "ratio_stride1": round(paired_ratio(s["T64_stride1"], s["T8_stride1"]), 3), "rounds": reps})
    end_to_end = end_to_end_figure(reps)
    return [rate, history, end_to_end]


def end_to_end_figure(repeats: int) -> Figure:
    """P4c: `tools/demo.py --sample --video` as a user runs it (the bundled clip and checkpoint, decoding, streaming,
    overlay video), frames per second over the whole clip; the median of `repeats` runs."""
    rgb, depth = sample_clip()
    rates = []
    with tempfile.TemporaryDirectory(prefix="r3d_p4c_") as tmp:
        for _ in range(repeats):
            doc = run_demo(bundled_checkpoint(), rgb, depth, out=None, video=Path(tmp) / "overlay.mp4", progress=False)
            rates.append(doc["summary"]["frames_per_second"])
    return Figure(id="P4c", what="demo end to end on the bundled clip (decode, stream, overlay video)",
                  value=statistics.median(rates), target=RATE_TARGET, better=">=", unit=" fr/s",
                  detail={"rates": rates, "frames": doc["summary"]["frames"], "steps": doc["summary"]["steps"]})
