"""Writing one rendered synthetic clip to disk: an mp4 (mp4v) RGB video and a folder of 16-bit PNG depth maps."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..depth_writers import write_depth_png16


def write_clip(root: Path, video_id: str, rgb: np.ndarray, depth: np.ndarray, fps: float) -> None:
    """Write ``root/videos/<id>.mp4`` and ``root/depth/<id>/%06d.png``.

    Args:
        rgb: (T, H, W, 3) uint8 RGB. depth: (T, H, W) uint16 millimetres. fps: frame rate of the video.
    Raises:
        OSError: the video writer cannot open the mp4 file.
    """
    video = root / "videos" / f"{video_id}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    size = (rgb.shape[2], rgb.shape[1])
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise OSError(f"{video}: cv2.VideoWriter could not open it for mp4v; check the folder is writable")
    for frame in rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    folder = root / "depth" / video_id
    folder.mkdir(parents=True, exist_ok=True)
    for k, d in enumerate(depth):
        write_depth_png16(folder / f"{k:06d}.png", d)
