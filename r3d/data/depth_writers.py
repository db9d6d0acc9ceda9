"""Writing 16-bit depth the way r3d reads it back bit for bit: one PNG per frame, or an FFV1 gray16le Matroska track."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .io import PathLike


def check_uint16(depth: np.ndarray, ndim: int, what: str) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.dtype != np.uint16 or depth.ndim != ndim:
        raise ValueError(f"{what} expects a {ndim}-D uint16 array, got {depth.ndim}-D {depth.dtype}; convert metres "
                         f"with np.round(m / depth_scale).astype(np.uint16)")
    return depth


def write_depth_png16(path: PathLike, depth_mm: np.ndarray) -> Path:
    """Write (H, W) uint16 depth units as a single-channel 16-bit PNG (creating parent folders). Returns the path."""
    depth_mm = check_uint16(depth_mm, 2, "write_depth_png16")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), np.ascontiguousarray(depth_mm)):
        raise OSError(f"{p}: cv2.imwrite failed; check the folder is writable and the name ends in .png")
    return p


def write_depth_ffv1(path: PathLike, frames: np.ndarray, fps: float) -> Path:
    """Write (T, H, W) uint16 depth units as lossless FFV1 gray16le in Matroska. Returns the path."""
    import av

    frames = check_uint16(frames, 3, "write_depth_ffv1")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(p), "w") as c:
        stream = c.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "gray16le"
        for f in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="gray16le")):
                c.mux(pkt)
        for pkt in stream.encode():
            c.mux(pkt)
    return p
