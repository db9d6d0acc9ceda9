"""What every native recording reader shares: stream indexes, colour↔depth pairing, the `Recording` API, the depth
store view and the suffix table that maps a file to its reader.

A recording is one file with a colour stream and a 16-bit depth stream, each frame carrying its own timestamp (the
sensor does not promise equal counts or rates: frames get dropped, depth may start earlier). r3d puts it on one clock:

- **frame clock**: the colour frames in presentation order (depth-only recordings: the depth frames). Frame i is at
  ``timestamps[i]`` seconds after frame 0; `fps` is the stream's nominal rate (see `StreamIndex.rate`).
- **pairing**: colour frame i takes the depth frame nearest in time, if it is within `tolerance` seconds (default:
  half the longer of the two frame periods); otherwise it has no depth (`depth_index[i] == -1`) and reads as an
  all-zero frame (0 = no reading). `Recording.pairing` counts both kinds of leftovers. No overlap at all is an error.
- **indexing** reads the container once (packet/message headers, no decoding) and is cached per process by path,
  size and modification time, so DataLoader workers and repeated opens do not re-scan; reads then decode only the
  frames asked for.

Readers register with `register_reader` under their file suffixes; `open_recording(path)` looks the suffix up.
"""
from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np

from ..errors import DataError
from ..io import DepthStore, VideoInfo

PathLike = Union[str, os.PathLike]
_logger = logging.getLogger("r3d.recordings")

RATE_AGREEMENT = 0.02  # nominal and measured frame rates closer than this (relative) count as equal
INDEX_CACHE_SIZE = 32  # recordings whose index is kept per process
TRANSIENT = ("_open_reader", "_position_cache")  # per-process attributes readers may set, never pickled


@dataclass
class StreamIndex:
    """Where each frame of one stream is and when it was taken (built once per file by a reader).

    Attributes:
        name: the track title / topic it came from (for messages).
        codec: codec or encoding name (for messages).
        width / height: frame size in pixels.
        times: (F,) float64 seconds on the recording's own clock, non-decreasing (presentation order).
        keys: (F,) int64 locator of each frame for the reader (e.g. packet pts, bag message time).
        nominal_fps: the rate the file declares for the stream, or None.
        keyframe: (F,) bool, frames decodable without earlier ones (None: every frame is).
    """

    name: str
    codec: str
    width: int
    height: int
    times: np.ndarray
    keys: np.ndarray
    nominal_fps: Optional[float] = None
    keyframe: Optional[np.ndarray] = None

    @property
    def num_frames(self) -> int:
        return int(len(self.times))

    def measured_fps(self) -> Optional[float]:
        """1 / median frame interval (robust to dropped frames), or None with fewer than 2 distinct times."""
        gaps = np.diff(self.times)
        gaps = gaps[gaps > 0]
        return float(1.0 / np.median(gaps)) if gaps.size else None

    def rate(self, path: Path) -> float:
        """The stream's frame rate: the declared one when the timestamps agree with it (within 2 %), else the
        measured one (a warning says so); DataError naming `path` when neither exists (a single frame, no rate)."""
        measured = self.measured_fps()
        nominal = self.nominal_fps if self.nominal_fps and math.isfinite(self.nominal_fps) else None
        if nominal and measured and abs(measured - nominal) > RATE_AGREEMENT * nominal:
            _logger.warning("%s: stream '%s' declares %.3f fps but its timestamps say %.3f fps; using %.3f",
                            path, self.name, nominal, measured, measured)
            return measured
        if nominal or measured:
            return float(nominal or measured)
        raise DataError(f"{path}: stream '{self.name}' has {self.num_frames} frame(s) and declares no frame rate; "
                        f"record at least two frames")


@dataclass
class RecordingIndex:
    """A reader's scan of one file: its streams and what it says about depth units.

    Attributes:
        color: the colour stream, or None for a depth-only recording.
        depth: the depth stream (16-bit units).
        depth_scale: metres per depth unit found in the file, or None (the caller's or the 1 mm default applies).
        depth_scale_source: where `depth_scale` came from (for messages).
        clock: which timestamps the streams use (e.g. "Matroska block timestamps", "image header stamps").
        notes: things worth a warning that do not stop reading (e.g. an IR track taken for depth by position).
        extra: reader-specific facts (stream indices, topics, encodings).
    """

    color: Optional[StreamIndex]
    depth: StreamIndex
    depth_scale: Optional[float] = None
    depth_scale_source: str = "default (1 mm)"
    clock: str = ""
    notes: List[str] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Pairing:
    """How colour frames were paired with depth frames.

    Attributes:
        depth_index: (N,) int64 depth frame of each colour frame, -1 when none lies within `tolerance`.
        tolerance: the largest |colour time − depth time| accepted (s).
        unmatched_frames: colour frames without a depth frame.
        unused_depth_frames: depth frames no colour frame took (e.g. depth running before colour starts).
        max_offset: largest |time difference| among the pairs made (s).
    """

    depth_index: np.ndarray
    tolerance: float
    unmatched_frames: int
    unused_depth_frames: int
    max_offset: float

    @property
    def matched_frames(self) -> int:
        return int((self.depth_index >= 0).sum())

    def to_dict(self) -> Dict[str, Any]:
        return {"matched_frames": self.matched_frames, "unmatched_frames": self.unmatched_frames,
                "unused_depth_frames": self.unused_depth_frames, "tolerance_s": round(self.tolerance, 6),
                "max_offset_s": round(self.max_offset, 6)}


def pair_nearest(color_times: np.ndarray, depth_times: np.ndarray, tolerance: float) -> Pairing:
    """Pair each colour time with the nearest depth time within `tolerance` seconds.

    Args:
        color_times: (N,) non-decreasing seconds. depth_times: (M,) non-decreasing seconds, same clock.
        tolerance: largest accepted |difference| (s); ties go to the earlier depth frame.
    Returns: `Pairing` with depth_index (N,) int64 (-1 = no depth frame close enough).
    """
    c = np.asarray(color_times, dtype=np.float64)
    d = np.asarray(depth_times, dtype=np.float64)
    if d.size == 0:
        return Pairing(np.full(c.size, -1, np.int64), float(tolerance), int(c.size), 0, 0.0)
    right = np.clip(np.searchsorted(d, c, side="left"), 0, d.size - 1)
    left = np.clip(right - 1, 0, d.size - 1)
    use_left = np.abs(c - d[left]) <= np.abs(d[right] - c)
    nearest = np.where(use_left, left, right).astype(np.int64)
    offset = np.abs(d[nearest] - c)
    ok = offset <= tolerance
    index = np.where(ok, nearest, -1)
    used = np.unique(index[ok])
    return Pairing(index, float(tolerance), int((~ok).sum()), int(d.size - used.size),
                   float(offset[ok].max()) if ok.any() else 0.0)


def check_recording_file(path: PathLike) -> Path:
    """`path` as a Path when it is a non-empty file; DataError naming it otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: recording not found; check the path")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: recording is empty (0 bytes); copy it again from the recording machine")
    return p


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type name."""
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def as_index_array(indices: Sequence[int], n: int, path: Path) -> np.ndarray:
    """`indices` as a (K,) int64 array, each checked to lie in 0..n-1 (DataError naming `path` otherwise)."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"frame indices must be integers, got dtype {idx.dtype}")
    idx = idx.reshape(-1).astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        bad = int(idx[(idx < 0) | (idx >= n)][0])
        raise DataError(f"{path}: frame index {bad} is out of range 0..{n - 1} ({n} frames)")
    return idx


_INDEX_CACHE: "OrderedDict[Tuple, RecordingIndex]" = OrderedDict()
_WARNED: set = set()


class Recording:
    """One native RGB-D recording on the frame clock described in the module docstring.

    Subclasses set `kind` and implement `_build_index`, `_read_color` and `_read_depth`.

    Args:
        path: the recording file.
        depth_scale: metres per depth unit; None uses what the file says, else 0.001 (millimetres).
        tolerance: largest colour↔depth time difference paired (s); None: half the longer frame period.

    Attributes:
        path, kind, depth_scale (metres per unit) and depth_scale_source, has_rgb, fps, num_frames,
        timestamps (N,) s from frame 0, depth_timestamps (M,) s on the same origin, depth_index (N,) int64,
        pairing (`Pairing`), width/height (frame clock stream), depth_width/depth_height, notes (warnings).
    """

    kind = "?"

    def __init__(self, path: PathLike, depth_scale: Optional[float] = None,
                 tolerance: Optional[float] = None) -> None:
        self.path = check_recording_file(path)
        index = self._cached_index()
        self.index = index
        self.notes: List[str] = list(index.notes)
        if depth_scale is not None:
            if not depth_scale > 0:
                raise DataError(f"{self.path}: depth_scale must be > 0 (metres per depth unit), got {depth_scale}")
            self.depth_scale, self.depth_scale_source = float(depth_scale), "given by the caller"
        elif index.depth_scale is not None:
            self.depth_scale, self.depth_scale_source = float(index.depth_scale), index.depth_scale_source
        else:
            self.depth_scale, self.depth_scale_source = 0.001, "default (1 mm; the file does not say)"
        depth = index.depth
        if depth.num_frames == 0:
            raise DataError(f"{self.path}: the depth stream '{depth.name}' has no frames; the recording is empty")
        clock = index.color if index.color is not None else depth
        if clock.num_frames == 0:
            raise DataError(f"{self.path}: the colour stream '{clock.name}' has no frames; the recording is empty")
        self.has_rgb = index.color is not None
        self.fps = clock.rate(self.path)
        self.depth_fps = depth.rate(self.path)
        origin = float(clock.times[0])
        self.timestamps = clock.times - origin
        self.depth_timestamps = depth.times - origin
        self.width, self.height = clock.width, clock.height
        self.depth_width, self.depth_height = depth.width, depth.height
        self.num_frames = clock.num_frames
        if tolerance is None:
            tolerance = 0.5 / min(self.fps, self.depth_fps)
        if not tolerance >= 0:
            raise DataError(f"{self.path}: pairing tolerance must be >= 0 s, got {tolerance}")
        if self.has_rgb:
            self.pairing = pair_nearest(self.timestamps, self.depth_timestamps, tolerance)
            if self.pairing.matched_frames == 0:
                c, d = self.timestamps, self.depth_timestamps
                raise DataError(
                    f"{self.path}: colour ({c[0]:.3f}–{c[-1]:.3f} s) and depth ({d[0]:.3f}–{d[-1]:.3f} s) have no "
                    f"overlapping timestamps: no colour frame has a depth frame within {tolerance * 1000:.1f} ms; "
                    f"the streams come from different recordings or clocks")
        else:
            self.pairing = Pairing(np.arange(self.num_frames, dtype=np.int64), 0.0, 0, 0, 0.0)
        self.depth_index = self.pairing.depth_index
        if self.pairing.unmatched_frames:
            self.notes.append(f"{self.pairing.unmatched_frames} of {self.num_frames} colour frames have no depth "
                              f"frame within {self.pairing.tolerance * 1000:.1f} ms (they read as all-zero depth)")
        for note in self.notes:
            if (str(self.path), note) not in _WARNED:  # once per process: datasets open a recording many times
                _WARNED.add((str(self.path), note))
                _logger.warning("%s: %s", self.path, note)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
                f"rgb={self.has_rgb}, depth_frames={len(self.depth_timestamps)})")

    # -- reader hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def holds_depth(cls, path: Path) -> bool:
        """Cheap look inside a file with this reader's suffix: whether it holds depth this reader would read (so a
        plain colour video sharing the suffix, e.g. an ordinary .mkv, is not taken for a recording)."""
        return True

    def _build_index(self) -> RecordingIndex:
        """Scan the file once: streams, timestamps, depth units. Raises DataError for unreadable files."""
        raise NotImplementedError

    def _read_color(self, uniq: np.ndarray) -> np.ndarray:
        """Colour frames at sorted unique stream positions (K,) -> (K, H, W, 3) uint8 RGB."""
        raise NotImplementedError

    def _read_depth(self, uniq: np.ndarray) -> np.ndarray:
        """Depth frames at sorted unique depth-stream positions (K,) -> (K, h, w) uint16 depth units."""
        raise NotImplementedError

    def _cached_index(self) -> RecordingIndex:
        st = self.path.stat()
        key = (type(self).__name__, str(self.path.resolve()), st.st_size, st.st_mtime_ns)
        if key in _INDEX_CACHE:
            _INDEX_CACHE.move_to_end(key)
            return _INDEX_CACHE[key]
        index = self._build_index()
        _INDEX_CACHE[key] = index
        while len(_INDEX_CACHE) > INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
        return index

    # -- public API -----------------------------------------------------------------------------------------------
    @property
    def num_depth_frames(self) -> int:
        """Frames in the depth stream (may differ from `num_frames`)."""
        return int(len(self.depth_timestamps))

    def close(self) -> None:
        """Release open files (readers that keep one open override this)."""

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> Dict[str, Any]:
        # open handles and per-process caches stay behind when a DataLoader worker receives the object
        return {k: v for k, v in self.__dict__.items() if k not in TRANSIENT}

    def probe(self) -> VideoInfo:
        """(num_frames, fps, height, width) of the frame clock stream, like `r3d.data.io.probe_video`."""
        return VideoInfo(self.num_frames, self.fps, self.height, self.width)

    def read_rgb(self, indices: Sequence[int]) -> np.ndarray:
        """Colour frames at `indices` (any order, duplicates allowed) -> (K, H, W, 3) uint8 RGB.

        Raises DataError naming the file for a depth-only recording or an index outside 0..num_frames-1.
        """
        if not self.has_rgb:
            raise DataError(f"{self.path}: the recording has no colour stream (depth only); use a depth-only model "
                            f"or a recording with colour")
        idx = as_index_array(indices, self.num_frames, self.path)
        if idx.size == 0:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        uniq, inv = np.unique(idx, return_inverse=True)
        return self._read_color(uniq)[inv.reshape(-1)]

    def read_depth_units(self, indices: Sequence[int]) -> np.ndarray:
        """Depth stream frames at depth-stream positions `indices` (not frame-clock indices) -> (K, h, w) uint16
        depth units, bit-exact as recorded."""
        idx = as_index_array(indices, self.num_depth_frames, self.path)
        if idx.size == 0:
            return np.zeros((0, self.depth_height, self.depth_width), dtype=np.uint16)
        uniq, inv = np.unique(idx, return_inverse=True)
        return self._read_depth(uniq)[inv.reshape(-1)]

    def read_paired_depth_units(self, indices: Sequence[int]) -> np.ndarray:
        """Depth paired with frames `indices` of the frame clock -> (K, h, w) uint16 units; 0 where unpaired."""
        idx = as_index_array(indices, self.num_frames, self.path)
        out = np.zeros((idx.size, self.depth_height, self.depth_width), dtype=np.uint16)
        j = self.depth_index[idx]
        have = j >= 0
        if have.any():
            out[have] = self.read_depth_units(j[have])
        return out

    def depth_store(self, frames: Optional[np.ndarray] = None, fps: Optional[float] = None) -> "RecordingDepthStore":
        """The depth as an `r3d.data.io.DepthStore`: frame i = the depth paired with frame i of the frame clock, or
        with frame ``frames[i]`` when a frame map (K,) is given (e.g. `uniform_frames`; `fps` is then its rate)."""
        return RecordingDepthStore(self, frames, fps)

    def nearest_frames(self, times: Sequence[float]) -> np.ndarray:
        """Frame-clock index nearest to each time (s from frame 0): (K,) -> (K,) int64 (ties: the earlier)."""
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        ts = self.timestamps
        right = np.clip(np.searchsorted(ts, t, side="left"), 0, len(ts) - 1)
        left = np.clip(right - 1, 0, len(ts) - 1)
        return np.where(np.abs(t - ts[left]) <= np.abs(ts[right] - t), left, right).astype(np.int64)

    def uniform_frames(self, fps: Optional[float] = None) -> np.ndarray:
        """The recording on a constant-rate clock: frame k at k / fps s shows the nearest frame -> (K,) int64.

        K = round(duration · fps), duration = last frame time + one frame period, so at the recording's own rate
        (the default) K = the frame count when nothing was dropped, and a dropped frame is filled by a neighbour.
        With this map, a time t maps to frame floor(t · fps) as r3d's protocols assume.
        """
        fps = self.fps if fps is None else float(fps)
        if not fps > 0 or not math.isfinite(fps):
            raise DataError(f"{self.path}: a frame rate must be a positive number, got {fps}")
        cache = self.__dict__.setdefault("_uniform_frames", {})  # per-sample callers ask for the same map
        if fps not in cache:
            n = max(1, int(round((float(self.timestamps[-1]) + 1.0 / self.fps) * fps)))
            cache[fps] = self.nearest_frames(np.arange(n) / fps)
            cache[fps].setflags(write=False)
        return cache[fps]

    def summary(self) -> Dict[str, Any]:
        """Facts for reports: kind, frames, rates, sizes, depth units and their source, clock, pairing, notes."""
        return {"path": str(self.path), "kind": self.kind, "has_rgb": self.has_rgb, "num_frames": self.num_frames,
                "fps": round(self.fps, 4), "size": [self.height, self.width],
                "depth_frames": self.num_depth_frames, "depth_fps": round(self.depth_fps, 4),
                "depth_size": [self.depth_height, self.depth_width], "depth_scale": self.depth_scale,
                "depth_scale_source": self.depth_scale_source, "clock": self.index.clock,
                "seconds": round(float(self.timestamps[-1]) + 1.0 / self.fps, 4),
                "pairing": self.pairing.to_dict(), "notes": list(self.notes)}


class RecordingDepthStore(DepthStore):
    """A recording's depth as an `r3d.data.io.DepthStore` (integer units, `depth_scale` = the recording's).

    Frame i is the depth frame paired with frame ``frames[i]`` of the recording's frame clock (default: frame i), all
    zeros when none was paired. `num_frames` = len(frames) and `fps` = the recording's (or the given) rate, so a
    reader that matches depth to RGB by frame rate maps frame i to frame i. `aligned` says so to a dataset: depth
    frame i belongs to clock frame i whatever the dataset's own `depth_fps`.
    """

    aligned = True

    def __init__(self, recording: Recording, frames: Optional[np.ndarray] = None,
                 fps: Optional[float] = None) -> None:
        super().__init__(recording.path, recording.depth_scale)
        self.kind = recording.kind
        self.recording = recording
        self.frames = None if frames is None else as_index_array(frames, recording.num_frames, recording.path)
        self.num_frames = recording.num_frames if frames is None else len(self.frames)
        self.fps = float(fps) if fps is not None else recording.fps

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        return self.recording.read_paired_depth_units(uniq if self.frames is None else self.frames[uniq])


# -- the suffix table ------------------------------------------------------------------------------------------------
READERS: Dict[str, Type[Recording]] = {}


def register_reader(*suffixes: str) -> Callable[[Type[Recording]], Type[Recording]]:
    """Class decorator: open files ending in `suffixes` (case-insensitive, with the dot) with this `Recording`."""

    def deco(cls: Type[Recording]) -> Type[Recording]:
        for s in suffixes:
            key = s.lower()
            if key in READERS and READERS[key] is not cls:
                raise ValueError(f"recording suffix '{key}' is registered twice: {READERS[key].__name__} and "
                                 f"{cls.__name__}")
            READERS[key] = cls
        return cls

    return deco


def is_recording(path: PathLike, look_inside: bool = False) -> bool:
    """Whether `path` has the suffix of a registered recording format; with `look_inside`, also whether the file
    holds depth for it (an .mkv with a 16-bit grey or k4a DEPTH track), so that plain videos are told apart."""
    p = Path(path)
    cls = READERS.get(p.suffix.lower())
    if cls is None:
        return False
    return not look_inside or (p.is_file() and cls.holds_depth(p))


def open_recording(path: PathLike, depth_scale: Optional[float] = None,
                   tolerance: Optional[float] = None) -> Recording:
    """Open a native recording with the reader registered for its suffix (see `READERS`).

    Raises DataError naming the file for an unknown suffix, a missing/empty/truncated file, a file without depth,
    an unsupported encoding, or colour and depth that never overlap in time.
    """
    p = Path(path)
    cls = READERS.get(p.suffix.lower())
    if cls is None:
        known = ", ".join(f"{s} ({c.kind})" for s, c in sorted(READERS.items()))
        raise DataError(f"{p}: '{p.suffix}' is not a recording format r3d reads; known: {known}")
    return cls(p, depth_scale=depth_scale, tolerance=tolerance)
