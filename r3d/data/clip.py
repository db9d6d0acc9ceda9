"""Reading a recorded RGB-D clip in time order: the colour video, its depth, and how the two are aligned.

`RGBDClip` decodes the colour video in chunks (`r3d.data.io.read_rgb_frames`) and reads depth from a PNG16 folder
(numbering gaps allowed: `SparsePngDepth`), a .npz/.npy array or an FFV1 .mkv (read forward-only by
`SequentialMkvReader`), aligned to the colour clock. A native sensor recording (Azure Kinect / Orbbec .mkv, RealSense
.bag: `r3d.data.recordings`) is one file with both streams, put on a constant-rate clock by
`Recording.uniform_frames` and paired by the recording's own timestamps. `clip_depth_settings` decides the depth scale, range and rate a
clip is read with. The streaming demo (`r3d.engine.demo`) is its user; `sample_clip` names the clip bundled with r3d.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import DataError
from .dataset_yaml import DEPTH_DEFAULTS, read_dataset_yaml, resolve_depth
from .io import DepthStore, MkvDepthStore, NpyDepthStore, NpzDepthStore, probe_video, read_png16, read_rgb_frames
from .protocols import frame_at
from .recordings import Recording, is_recording, open_recording

PathLike = Union[str, os.PathLike]
_logger = logging.getLogger("r3d.clip")
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "assets" / "sample"


def sample_clip() -> Tuple[Path, Path]:
    """(rgb.mp4, depth.npz) of the recording bundled with the package (rendered by tools/make_sample_clip.py)."""
    rgb, depth = SAMPLE_DIR / "rgb.mp4", SAMPLE_DIR / "depth.npz"
    if not rgb.is_file() or not depth.is_file():
        raise FileNotFoundError(f"{SAMPLE_DIR}: the bundled sample clip is missing; re-create it with "
                                f"`python tools/make_sample_clip.py`")
    return rgb, depth


class SparsePngDepth(DepthStore):
    """A folder of 16-bit depth PNGs whose numbering may have gaps (dropped frames): ``<prefix><number>.png``.

    Unlike `r3d.data.io.PngDepthStore` (which refuses gaps, as a training dataset must be complete), a gap here is a
    frame without depth. Frame index = number − start, start = 1 when the numbering starts at 1 (NTU's
    MDepth-%08d.png) and 0 otherwise (r3d's folder layout, %06d.png). Files are read with `r3d.data.io.read_png16`.
    """

    kind = "png"

    def __init__(self, folder: PathLike, depth_scale: float) -> None:
        super().__init__(folder, depth_scale)
        pat = re.compile(r"^(.*?)(\d+)\.png$")
        found: Dict[str, Dict[int, Path]] = {}
        for name in os.listdir(self.path):
            m = pat.match(name)
            if m:
                found.setdefault(m.group(1), {})[int(m.group(2))] = self.path / name
        if not found:
            raise DataError(f"{self.path}: depth folder has no numbered PNG frames (000000.png, 000001.png, ...)")
        prefix = max(found, key=lambda p: len(found[p]))  # the main series if other PNGs lie around
        numbers = found[prefix]
        self.start = 1 if min(numbers) == 1 else 0
        self.files = {n - self.start: p for n, p in numbers.items() if n >= self.start}
        self.num_frames = max(self.files) + 1
        self.gaps = self.num_frames - len(self.files)

    def has(self, index: int) -> bool:
        return index in self.files

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        return np.stack([read_png16(self.files[int(i)]) for i in uniq])


class SequentialMkvReader:
    """Forward-only reader of an FFV1 gray16 depth track: frame j decoded once, in order (streaming-friendly)."""

    def __init__(self, store: MkvDepthStore) -> None:
        import av

        self.store = store
        self.container = av.open(str(store.path))
        stream = next((s for s in self.container.streams.video
                       if (s.codec_context.pix_fmt or "").startswith("gray16")), None)
        if stream is None:
            raise DataError(f"{store.path}: no 16-bit gray video stream; store FFV1 gray16le")
        self.frames = self.container.decode(stream)
        self.next_index = 0
        self.last: Optional[np.ndarray] = None

    def read(self, j: int) -> np.ndarray:
        if j < self.next_index - 1:
            raise ValueError(f"{self.store.path}: frame {j} was already passed (forward-only reader)")
        while self.next_index <= j:
            try:
                frame = next(self.frames)
            except StopIteration:
                raise DataError(f"{self.store.path}: ends at frame {self.next_index - 1}, frame {j} was "
                                f"expected") from None
            self.last = frame.to_ndarray(format="gray16le")
            self.next_index += 1
        return self.store.to_metres(self.last[None])[0]

    def close(self) -> None:
        self.container.close()


def open_depth_path(path: PathLike, depth_scale: float) -> DepthStore:
    """A depth recording given by path: a PNG16 folder (gaps allowed), .npz (key `depth`), .npy or FFV1 .mkv."""
    p = Path(path)
    if p.is_dir():
        return SparsePngDepth(p, depth_scale)
    if not p.is_file():
        raise DataError(f"{p}: depth not found; pass a folder of 16-bit PNGs, a .npz/.npy array or an FFV1 .mkv")
    kinds = {".npz": NpzDepthStore, ".npy": NpyDepthStore, ".mkv": MkvDepthStore}
    if p.suffix.lower() not in kinds:
        raise DataError(f"{p}: unknown depth file type '{p.suffix}'; use a PNG16 folder, .npz, .npy or FFV1 .mkv "
                        f"(8-bit video cannot hold depth)")
    return kinds[p.suffix.lower()](p, depth_scale)


def dataset_yaml_of(depth: PathLike) -> Dict[str, Any]:
    """dataset.yaml of the ROOT a depth path lies in (ROOT/depth/<id>[.ext]), else {}."""
    depth = Path(depth).resolve()
    cand = depth.parent.parent / "dataset.yaml"
    if depth.parent.name == "depth" and cand.is_file():
        try:
            return read_dataset_yaml(cand)
        except DataError as e:
            _logger.warning("ignoring %s: %s", cand, e)
    return {}


def clip_depth_settings(depth: Optional[PathLike], model: Optional[Mapping[str, Any]] = None,
                        **flags: Optional[float]) -> Dict[str, Optional[float]]:
    """The depth settings a recorded clip is read and normalised with, each from the first source that has it.

    - `depth_min`, `depth_max` (the valid range the model normalises to): a flag, else `model` (the values the
      checkpoint was trained with, saved in its model.json), else r3d's defaults (0.2 m, 4.5 m).
    - `depth_scale` (metres per stored unit) and `depth_fps` (a property of the recording): a flag, else the
      recording's own metadata (a sensor recording's depth unit; the dataset.yaml of the ROOT a depth path lies in,
      ROOT/depth/<id>), else (scale only) `model`, else 0.001 m; a depth file with its own frame rate (.mkv) supplies
      `depth_fps` when nothing else does (`RGBDClip`).

    Args:
        depth: the depth recording, or a sensor recording holding both streams (None: no depth).
        model: {depth_scale, depth_min, depth_max} of the checkpoint.
        flags: depth_scale / depth_min / depth_max / depth_fps given explicitly (None = not given).
    """
    unknown = set(flags) - set(DEPTH_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown depth setting(s) {sorted(unknown)}; known: {', '.join(DEPTH_DEFAULTS)}")
    if depth is not None and is_recording(depth, look_inside=True):
        near = {"depth_scale": open_recording(depth).depth_scale}  # the sensor's unit, from the file
    else:
        near = dataset_yaml_of(depth) if depth is not None else {}
    model = dict(model or {})
    sources = {"depth_min": (model,), "depth_max": (model,), "depth_scale": (near, model), "depth_fps": (near,)}
    out: Dict[str, Optional[float]] = {}
    for key, default in DEPTH_DEFAULTS.items():
        value = flags.get(key)
        for source in sources[key]:
            if value is None:
                value = source.get(key)
        out[key] = default if value is None else float(value)
    return resolve_depth(out, None, source="the demo's depth settings")


@dataclass
class Alignment:
    """How the depth frames were matched to the RGB clock (reported in pred.json)."""

    rgb_frames: int
    rgb_fps: float
    depth_path: Optional[str] = None
    depth_kind: Optional[str] = None
    depth_frames: int = 0
    depth_fps: Optional[float] = None
    matched_by: Optional[str] = None  # "index" (depth frame k = RGB frame k) or "timestamp"
    mismatch: List[str] = field(default_factory=list)
    rgb_frames_without_depth: int = 0  # RGB frames with no depth frame for their time (gap, end of stream, none)
    empty_depth_frames: int = 0  # RGB frames whose depth frame has no valid reading
    depth_frames_unused: int = 0  # depth frames never matched to an RGB frame

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


class RGBDClip:
    """A recorded RGB video plus optional depth, aligned on the RGB clock (frame k at k / rgb_fps seconds).

    Without a depth frame rate (`depth_fps` argument, the ROOT's dataset.yaml, or the .mkv's own rate), depth frame k
    belongs to RGB frame k, as in r3d's folder layout (docs/data.md). With one, RGB frame k takes the last depth frame
    at or before its time (`r3d.data.protocols.frame_at`, as `match_depth_indices` does for training), and none once
    the depth stream has ended. Frame count and rate mismatches are listed in `alignment.mismatch`. A sensor
    recording (.mkv with a depth track, .bag) carries both streams and its own pairing.
    """

    def __init__(self, rgb: PathLike, depth: Optional[PathLike] = None,
                 depth_settings: Optional[Mapping[str, Any]] = None, chunk: int = 32) -> None:
        """`rgb`: a colour video, or a sensor recording (.mkv with a depth track, .bag) whose own depth is used when
        `depth` is None. `depth_settings`: `depth_scale` (metres per stored unit) and `depth_fps` (None: matched by
        index), as `clip_depth_settings` resolves them; defaults 0.001 and the depth file's own rate."""
        self.rgb_path = Path(rgb)
        settings = dict(depth_settings or {})
        scale = float(settings.get("depth_scale") or DEPTH_DEFAULTS["depth_scale"])
        self.recording: Optional[Recording] = None
        if is_recording(self.rgb_path, look_inside=True):
            self.recording = open_recording(self.rgb_path, depth_scale=scale)
            self.frame_map = self.recording.uniform_frames()  # frame k at k / fps, as r3d's protocols count time
            self.num_frames, self.fps = len(self.frame_map), self.recording.fps
            self.height, self.width = self.recording.height, self.recording.width
        else:
            info = probe_video(self.rgb_path)
            self.num_frames, self.fps = info.num_frames, info.fps
            self.height, self.width = info.height, info.width
        self.has_rgb = self.recording is None or self.recording.has_rgb
        self.chunk = max(1, int(chunk))
        self.alignment = Alignment(rgb_frames=self.num_frames, rgb_fps=self.fps)
        self.store: Optional[DepthStore] = None
        self.depth_index = np.full(self.num_frames, -1, dtype=np.int64)  # depth frame per RGB frame (-1 = none)
        if depth is None and self.recording is not None:  # the recording's own depth, paired by its timestamps
            self.store = self.recording.depth_store(self.frame_map, self.fps)
            self._align(self.fps)
            return
        if depth is None:
            self.alignment.rgb_frames_without_depth = self.num_frames
            return
        self.store = open_depth_path(depth, scale)
        depth_fps = settings.get("depth_fps")
        if depth_fps is None and self.store.fps is not None:
            depth_fps = float(self.store.fps)
        self._align(depth_fps)

    def read_rgb(self, ks: np.ndarray) -> Optional[np.ndarray]:
        """Colour frames ks (K,) -> (K, H, W, 3) uint8, or None for a recording without colour."""
        if self.recording is None:
            return read_rgb_frames(self.rgb_path, ks)
        return self.recording.read_rgb(self.frame_map[ks]) if self.has_rgb else None

    def _align(self, depth_fps: Optional[float]) -> None:
        a, store = self.alignment, self.store
        a.depth_path, a.depth_kind, a.depth_frames, a.depth_fps = str(store.path), store.kind, store.num_frames, \
            depth_fps
        k = np.arange(self.num_frames)
        if depth_fps is None:
            a.matched_by = "index"
            j = k.copy()
            if store.num_frames != self.num_frames:
                a.mismatch.append(f"{store.num_frames} depth frames for {self.num_frames} RGB frames (no depth frame "
                                  f"rate given, matched by index: depth frame k = RGB frame k); pass --depth-fps if "
                                  f"the depth stream runs at another rate")
        else:
            if not depth_fps > 0:
                raise DataError(f"depth frame rate must be > 0, got {depth_fps}")
            a.matched_by = "timestamp"
            j = np.array([frame_at(int(i) / self.fps, depth_fps) for i in k], dtype=np.int64)
            if abs(depth_fps - self.fps) > 1e-3 * self.fps:
                a.mismatch.append(f"depth at {depth_fps:g} fps, RGB at {self.fps:g} fps: matched by timestamp (each "
                                  f"RGB frame takes the last depth frame at or before its time)")
            rgb_s, depth_s = self.num_frames / self.fps, store.num_frames / depth_fps
            if abs(rgb_s - depth_s) > max(1.0 / self.fps, 1.0 / depth_fps):
                a.mismatch.append(f"depth covers {depth_s:.2f} s ({store.num_frames} frames), RGB {rgb_s:.2f} s "
                                  f"({self.num_frames} frames)")
        ok = (j >= 0) & (j < store.num_frames)
        if isinstance(store, SparsePngDepth):
            ok &= np.array([store.has(int(x)) for x in j], dtype=bool)
            if store.gaps:
                a.mismatch.append(f"{store.gaps} depth frames missing from {store.path} (numbering gaps)")
        self.depth_index = np.where(ok, j, -1)
        a.rgb_frames_without_depth = int((~ok).sum())
        used = set(self.depth_index[ok].tolist())
        a.depth_frames_unused = int(store.num_frames - len(used) - getattr(store, "gaps", 0))
        if a.rgb_frames_without_depth:
            a.mismatch.append(f"{a.rgb_frames_without_depth} of {self.num_frames} RGB frames have no depth frame: "
                              f"they are missing-modality frames")

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def frames(self) -> Iterator[Tuple[int, float, Optional[np.ndarray], Optional[np.ndarray]]]:
        """(k, t, rgb (H,W,3) uint8 (None: a recording without colour), depth (h,w) float32 metres or None) for every
        frame, in time order.

        RGB is decoded in chunks of `chunk` consecutive frames (one decord call each); a depth frame with no valid
        reading (all 0 / non-finite) is returned as None and counted in `alignment.empty_depth_frames`.
        """
        mkv = SequentialMkvReader(self.store) if isinstance(self.store, MkvDepthStore) else None
        try:
            for start in range(0, self.num_frames, self.chunk):
                ks = np.arange(start, min(start + self.chunk, self.num_frames))
                rgb = self.read_rgb(ks)
                js = self.depth_index[ks]
                depth: Dict[int, np.ndarray] = {}
                want = sorted({int(j) for j in js if j >= 0})
                if want and mkv is not None:
                    depth = {j: mkv.read(j) for j in want}
                elif want:
                    depth = dict(zip(want, self.store.read(want)))
                for i, k in enumerate(ks):
                    d = depth.get(int(js[i])) if js[i] >= 0 else None
                    if d is not None and not (np.isfinite(d) & (d > 0)).any():
                        self.alignment.empty_depth_frames += 1
                        d = None
                    yield int(k), float(k) / self.fps, None if rgb is None else rgb[i], d
        finally:
            if mkv is not None:
                mkv.close()
