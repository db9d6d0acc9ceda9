"""RGB videos shipped as folders of numbered images (jpg/png) instead of a video file.

A frame folder holds one image per frame, named ``<prefix><number><ext>`` with one prefix and one extension, e.g.
EPIC-KITCHENS' ``rgb_frames/P01_01/frame_0000000001.jpg`` or UTKinect-Action3D's ``RGB/s01_e01/colorImg190.jpg``.
A folder has no frame rate of its own: the adapter supplies it (dataset.yaml ``fps`` for the folder format, EK100's
``EPIC_100_video_info.csv``, UTKinect's nominal 30 fps).

How a frame index (what the protocols sample; frame i is at time i / fps) maps onto the files, `numbering`:

- ``"position"``: the numbers must be contiguous (first, first+1, ...); index i is the file numbered first + i.
  A gap is an error naming the first missing file. For frames extracted from a video (EK100, the folder format).
- ``"number"``: the file numbers are capture frame numbers that may jump (UTKinect records a frame only while the
  skeleton is tracked, so its numbers skip). Index i stands for capture frame first + i and shows the last file
  numbered at or before it (a dropped frame repeats the previous one, never a later one), so time stays
  number / fps. ``num_frames`` = last - first + 1.

`FrameFolder.read` has the contract of `r3d.data.io.read_rgb_frames`: indices in any order, duplicates allowed,
(K, H, W, 3) uint8 RGB in the requested order, a `DataError` naming the file for anything unreadable.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2  # before decord, as in r3d.data.io
import numpy as np

from .errors import DataError
from .io import ZLIB_CLASH_HINT, VideoInfo, as_indices, check_frame_range

PathLike = Union[str, os.PathLike]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
NUMBERINGS = ("position", "number")
_FRAME_NAME = re.compile(r"^(.*?)(\d+)(\.(?:jpg|jpeg|png))$", re.IGNORECASE)


def scan_frames(folder: PathLike) -> Tuple[str, str, int, np.ndarray]:
    """(prefix, extension, zero-pad width or 0, sorted frame numbers (N,) int64) of a frame folder.

    Raises DataError naming the folder when it has no numbered images, or images with more than one prefix or
    extension (e.g. ``frame_1.jpg`` next to ``img_1.png``).
    """
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"{p}: frame folder not found; check data.root and the video_id in the annotations")
    groups: Dict[Tuple[str, str], List[str]] = {}
    for name in os.listdir(p):
        m = _FRAME_NAME.match(name)
        if m:
            groups.setdefault((m.group(1), m.group(3)), []).append(m.group(2))
    if not groups:
        raise DataError(f"{p}: no numbered images (<prefix><number>{'/'.join(FRAME_EXTENSIONS)}); put one image "
                        f"per frame in the folder, e.g. 000000.jpg, 000001.jpg, ...")
    if len(groups) > 1:
        kinds = sorted(f"{a}<n>{b}" for a, b in groups)[:4]
        raise DataError(f"{p}: frames named in more than one way ({', '.join(kinds)}); keep one prefix and one "
                        f"extension per folder")
    (prefix, ext), digits = next(iter(groups.items()))
    numbers = np.array(sorted(int(d) for d in digits), dtype=np.int64)
    if len(set(numbers.tolist())) != len(numbers):
        raise DataError(f"{p}: two images have the same frame number (e.g. 7.jpg and 007.jpg); keep one")
    lengths = {len(d) for d in digits}
    width = lengths.pop() if len(lengths) == 1 else 0
    return prefix, ext, width, numbers


class FrameFolder:
    """One RGB video stored as numbered images; see the module docstring for `numbering`.

    Attributes: `path`, `fps`, `numbering`, `num_frames`, `first` (number of frame index 0), `last`.
    """

    def __init__(self, path: PathLike, fps: Optional[float], numbering: str = "position") -> None:
        self.path = Path(path)
        if numbering not in NUMBERINGS:
            raise ValueError(f"frame numbering must be one of {NUMBERINGS}, got '{numbering}'")
        if fps is None or not np.isfinite(fps) or fps <= 0:
            raise DataError(f"{self.path}: frame folder without a frame rate; give it (for the folder format: "
                            f"`fps: 30` in ROOT/dataset.yaml)")
        self.fps, self.numbering = float(fps), numbering
        self.prefix, self.ext, self.width, numbers = scan_frames(self.path)
        self.first, self.last = int(numbers[0]), int(numbers[-1])
        if numbering == "position":
            if self.last - self.first + 1 != len(numbers):
                missing = int(np.setdiff1d(np.arange(self.first, self.last + 1), numbers)[0])
                raise DataError(f"{self.path / self.name(missing)}: frame missing (the folder has {len(numbers)} "
                                f"frames numbered {self.first}..{self.last}); frames must be numbered contiguously")
            self._numbers: Optional[np.ndarray] = None  # contiguous: a number is first + index
        else:
            self._numbers = numbers
        self.num_frames = self.last - self.first + 1

    def __repr__(self) -> str:
        return f"FrameFolder({str(self.path)!r}, frames={self.num_frames}, fps={self.fps:g}, {self.numbering})"

    def name(self, number: int) -> str:
        """File name of frame `number` (a file number, not an index)."""
        return f"{self.prefix}{number:0{self.width}d}{self.ext}"

    def numbers_of(self, indices: Sequence[int]) -> np.ndarray:
        """File numbers shown at frame `indices` (K,) -> (K,) int64 (the last file at or before first + index)."""
        idx = as_indices(indices)
        check_frame_range(idx, self.num_frames, self.path)
        wanted = idx + self.first
        if self._numbers is None:
            return wanted
        return self._numbers[np.searchsorted(self._numbers, wanted, side="right") - 1]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """RGB frames at `indices` (any order, duplicates allowed) -> (K, H, W, 3) uint8, in the requested order."""
        numbers = self.numbers_of(indices)
        if numbers.size == 0:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        uniq, inv = np.unique(numbers, return_inverse=True)
        frames = [self._read_one(int(n)) for n in uniq]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(f"{self.path}: frames have different sizes {sorted(shapes)}; re-export them at one "
                            f"resolution")
        return np.stack(frames)[inv.reshape(-1)]

    def _read_one(self, number: int) -> np.ndarray:
        p = self.path / self.name(number)
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            if not p.is_file():
                raise DataError(f"{p}: frame image not found (the folder changed after it was indexed?)")
            raise DataError(f"{p}: cv2.imread returned None; {ZLIB_CLASH_HINT}")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def probe(self) -> VideoInfo:
        """(num_frames, fps, height, width), reading the first image for the size."""
        h, w = self._read_one(self.first).shape[:2]
        return VideoInfo(self.num_frames, self.fps, int(h), int(w))
