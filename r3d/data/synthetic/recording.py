"""One unannotated synthetic clip of a given length (e.g. for the streaming demo), from the benchmark's renderer."""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np

from .clip import write_clip
from .modes import DEFAULT_MODE, get_mode
from .plan import CUE_MARGIN, RESPONSE_SECONDS, RenderedSegment, plan_video, with_frames
from .render import render_frames
from .rule import check_rule

PathLike = Union[str, os.PathLike]


def render_recording(out_dir: PathLike, *, seconds: float, seed: int, depth_noise: float = 0.0, num_verbs: int = 4,
                     num_nouns: int = 4, fps: float = 8.0, size: int = 64, tau_a: float = 1.0, tau_o: float = 2.0,
                     name: str = "recording", mode: str = DEFAULT_MODE) -> Tuple[Path, Path, List[RenderedSegment]]:
    """Render one unannotated clip of `seconds` with the benchmark's renderer.

    Writes ``out_dir/videos/<name>.mp4`` and ``out_dir/depth/<name>/%06d.png`` (a dataset layout without
    annotations). The clip is (cue, response) pairs cut at `seconds`, drawn in `mode` (a name in `MODES`).

    Returns:
        (rgb_path, depth_dir, segments): the mp4, the PNG folder, and every segment (cues and responses) that starts
        before `seconds`, the last one cut there.
    """
    check_rule(num_verbs, num_nouns)
    get_mode(mode)
    if not seconds > 0:
        raise ValueError(f"render_recording: seconds = {seconds} must be positive")
    rng = np.random.default_rng([int(seed)])
    pair_seconds = tau_a + tau_o + CUE_MARGIN[0] + RESPONSE_SECONDS[0]
    plan = plan_video(rng, int(math.ceil(seconds / pair_seconds)), num_verbs, num_nouns, fps, tau_a, tau_o)
    end = int(round(seconds * 100))
    cut = [replace(s, stop_cs=min(s.stop_cs, end)) for s in plan if s.start_cs < end]
    segments = with_frames(cut, fps)
    n = segments[-1].stop_frame + 1
    rgb, depth = render_frames(segments, n, fps=fps, size=size, depth_noise=depth_noise, rng=rng, mode=mode,
                               num_verbs=num_verbs)
    out = Path(out_dir)
    write_clip(out, name, rgb, depth, fps)
    return out / "videos" / f"{name}.mp4", out / "depth" / name, segments
