"""Checks of one file that reading it does not make: a video's frame timing and a depth PNG's header.

Shared by the validator (`r3d.data.validate`, which runs them on every file) and the dataset (which runs the video
timing check on each video it indexes, and the PNG header check on the frames it samples under
``data.on_bad_sample=skip``), so both print the same one-line message for the same problem.

- Video timing: r3d maps a time t to frame floor(t · fps), which is right only when decord's frame count and fps agree
  with the container's own frame count and duration (`container_problem`: truncated or mis-muxed files) and with
  every frame's timestamp (`frame_timing_problem`: variable frame rate).
- PNG headers: a depth frame must be a 16-bit single-channel PNG; its IHDR chunk says so without decoding.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import DataError
from .io import PngDepthStore, VideoInfo, first_line

PathLike = Union[str, os.PathLike]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


# -- video timing ----------------------------------------------------------------------------------------------------
def container_problem(path: PathLike, num_frames: int, fps: float) -> Optional[str]:
    """A one-line problem when the container's own frame count or duration (PyAV) disagrees with what decord indexes
    (`num_frames` at `fps`) — a truncated or mis-muxed file — else None. Containers that do not store a frame count
    (0) or duration are not judged."""
    import av

    p = Path(path)
    try:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            declared = int(s.frames or 0)
            duration = float(s.duration * s.time_base) if s.duration and s.time_base else None
    except Exception:  # decord opened it; PyAV may not (exotic containers): nothing to compare
        return None
    if declared > 0 and declared != num_frames:
        return (f"{p}: the container header declares {declared} frames but decord finds {num_frames}; the file is "
                f"truncated or mis-muxed: copy it again or re-encode it")
    if duration is not None and abs(duration - num_frames / fps) > 1.5 / fps:
        return (f"{p}: the stream lasts {duration:.3f} s but decord reports {num_frames} frames at {fps:.4g} fps "
                f"= {num_frames / fps:.3f} s; frame count and fps are inconsistent, so annotation times would select "
                f"the wrong frames: re-encode at a constant rate, e.g. `ffmpeg -i in -vsync cfr -r "
                f"{round(fps) or 1} out.mp4`")
    return None


def frame_timing_problem(path: PathLike, tolerance: float = 0.5) -> Optional[str]:
    """A one-line problem when decord's frame count and fps disagree with the frame timestamps, else None.

    Frame k's timestamp (decord `get_frame_timestamp`) must be within `tolerance` frames of k / fps, and the last
    frame must end where `num_frames / fps` says the video ends.
    """
    import decord  # lazily, after cv2 (see r3d.data.io)

    p = Path(path)
    vr = decord.VideoReader(str(p), num_threads=1)
    n, fps = len(vr), float(vr.get_avg_fps())
    if n < 2 or not fps > 0:
        return None
    ts = np.asarray(vr.get_frame_timestamp(list(range(n))), dtype=np.float64)[:, 0]
    expected = ts[0] + np.arange(n) / fps
    dev = np.abs(ts - expected)
    k = int(dev.argmax())
    if dev[k] > tolerance / fps:
        return (f"{p}: decord reports {n} frames at {fps:.4g} fps, so frame {k} should be at {expected[k] - ts[0]:.3f}"
                f" s, but its timestamp is {ts[k] - ts[0]:.3f} s (variable frame rate or a wrong frame count); "
                f"annotation times would select the wrong frames: re-encode at a constant rate, e.g. "
                f"`ffmpeg -i in -vsync cfr -r {round(fps) or 1} out.mp4`")
    return None


def video_timing_problem(path: PathLike, probe: VideoInfo) -> Optional[str]:
    """The one-line 'frame timing' problem of a video file decord opened (`probe`), or None: the container's frame
    count and duration against decord's (`container_problem`), then every frame's timestamp
    (`frame_timing_problem`)."""
    try:
        return container_problem(path, probe.num_frames, probe.fps) or frame_timing_problem(path)
    except Exception as e:  # decord cannot list timestamps
        return f"{path}: frame timestamps cannot be read ({first_line(e)[:120]}); re-encode it"


# -- depth PNG headers -----------------------------------------------------------------------------------------------
def png_header(path: PathLike) -> Tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, without decoding; DataError if not a PNG."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DataError(f"{p}: not a PNG file (bad signature or header); re-write it as a 16-bit PNG "
                        f"(r3d.data.io.write_depth_png16)")
    width, height = struct.unpack(">II", head[16:24])
    return width, height, head[24], head[25]


def png_frame_problem(path: PathLike) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """(one-line problem or None, (width, height) or None) of one depth PNG, from its IHDR header only (no decoding):
    unreadable, not a PNG, or not 16-bit single-channel."""
    p = Path(path)
    try:
        w, h, bits, color = png_header(p)
    except DataError as e:
        return str(e), None
    except OSError as e:
        return f"{p}: cannot be read ({e}); re-write it", None
    if bits != 16 or color != 0:
        kind = PNG_COLOR_TYPES.get(color, f"colour type {color}")
        return (f"{p}: {bits}-bit {kind} PNG where a 16-bit single-channel depth PNG is expected (8-bit cannot hold "
                f"depth units); save uint16 depth (r3d.data.io.write_depth_png16)"), (w, h)
    return None, (w, h)


def check_png_frames(store: PngDepthStore) -> List[Tuple[Path, str]]:
    """(path, message) for every frame of a PNG depth folder that is not a 16-bit single-channel PNG, and for the
    first frame whose size differs from the first one's (headers only)."""
    bad = []
    sizes: Dict[Tuple[int, int], Path] = {}
    for i in range(store.num_frames):
        p = store.frame_path(i)
        problem, size = png_frame_problem(p)
        if problem is not None:
            bad.append((p, problem))
        if size is not None:
            sizes.setdefault(size, p)
    if len(sizes) > 1:
        (s0, p0), (s1, p1) = list(sizes.items())[:2]
        bad.append((p1, f"{p1}: depth frame is {s1[0]}x{s1[1]} but {p0.name} is {s0[0]}x{s0[1]}; re-export the "
                        f"folder at one resolution"))
    return bad
