"""Low-level readers: RGB frames through decord, 16-bit depth from PNG folders, npz/npy arrays and FFV1 MKV.

RGB: `probe_video` and `read_rgb_frames` open a `decord.VideoReader` inside each call (nothing is opened at import
or kept in an object, so DataLoader workers never share a decoder) and read with one sorted, de-duplicated
`get_batch`. decord is imported lazily, after cv2: decord 0.6.0 imported *before* cv2 breaks cv2's PNG reader
(libpng reports "bad parameters to zlib"). decord2 3.4.0 fails on some frame widths (e.g. 16, 32 or 48 px:
"DECORDArrayCopyFromTo: The size must exactly match"); when `get_batch` fails, the frames are decoded with PyAV
instead (same rgb24 pixels as decord).

Depth: decord decodes to 8-bit RGB, so depth never goes through it. One `DepthStore` subclass per storage kind, picked
by `open_depth` from what exists for a video under ``ROOT/depth`` (first match wins, in this order):

| kind | path | data |
|---|---|---|
| `png` | ``depth/<video_id>/%06d.png`` | one 16-bit single-channel PNG per frame (cv2.IMREAD_UNCHANGED) |
| `npz` | ``depth/<video_id>.npz`` | key ``depth``, (T, H, W) integer depth units or float metres; optional ``fps`` |
| `npy` | ``depth/<video_id>.npy`` | the same array as a .npy (memory-mapped) |
| `mkv` | ``depth/<video_id>.mkv`` | FFV1 ``gray16le`` (PyAV, bit-exact) |

`DepthStore.read` returns float32 metres: integer data × `depth_scale`, float data as stored (already metres). Non-
finite values in float arrays (NaN, ±inf) become 0 (= no reading, as in the PNG convention) and are counted in
`DepthStore.nonfinite` (per process; a warning is logged once per file) rather than raising: real sensors export
NaN for holes. `DepthStore.count_nonfinite` counts them without converting (the dataset does, at index time, for the
frames a split uses, so the run's stats report them). Range checks (depth_min/depth_max) belong to the transforms,
not to the readers. A store's own frame rate (`DepthStore.fps`: the MKV stream's, or an npz's scalar ``fps`` key)
times the frames of a video that has no RGB.
"""
from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2  # before decord, on purpose (see the module docstring)
import numpy as np

from .errors import DataError

PathLike = Union[str, os.PathLike]
_logger = logging.getLogger(__name__)
_warned: set = set()

ZLIB_CLASH_HINT = ("if decord 0.6.0 was imported before cv2, cv2 cannot read any PNG ('libpng error: bad parameters "
                   "to zlib'): import cv2 first or install decord2; otherwise the file is corrupt, re-write it")


def _warn_once(key: str, msg: str, *args) -> None:
    if key not in _warned:
        _warned.add(key)
        _logger.warning(msg, *args)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line DataErrors."""
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _check_file(path: PathLike, what: str) -> Path:
    """`path` as a Path if it is a non-empty file, else a DataError naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: {what} not found; check data.root and the video_id in the annotation CSV")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: {what} is empty (0 bytes); re-export or re-copy it")
    return p


def as_indices(indices: Sequence[int]) -> np.ndarray:
    """Frame indices (any shape, integer dtype) -> (K,) int64; TypeError for non-integers."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"frame indices must be integers, got dtype {idx.dtype}")
    return idx.reshape(-1).astype(np.int64)


def check_frame_range(idx: np.ndarray, n: int, path: Path) -> None:
    """DataError naming `path` when an index of `idx` is outside 0..n-1."""
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx[(idx < 0) | (idx >= n)][0])
        raise DataError(f"{path}: frame index {bad} is out of range 0..{n - 1} ({n} frames); the annotation or the "
                        f"fps does not match this file")


# -- RGB -------------------------------------------------------------------------------------------------------------
# decord decoder threads per reader. Measured on 2 shared cores: with 1, decord2 3.4.0 stalls when the machine is busy
# (load ~8: a training sample's read took ~40 ms wall, against ~15 ms with 0); at load ~5 an 8-frame window took
# 8.1 ms wall / 5.6 ms CPU with 1, 7.2 / 5.9 with 0 (ffmpeg's choice: one thread per core, which multiplies with
# DataLoader workers on big machines) and 6.8 / 5.3 with 2. Same frames bit for bit (tests/test_perf.py).
DECODE_THREADS = 2

class VideoInfo(NamedTuple):
    """What `probe_video` reports about an RGB video. As a video's clock, `stream` names the stream whose frames its
    frame indices count: "rgb" here, "depth" for a `DepthClock`."""

    num_frames: int
    fps: float
    height: int
    width: int
    stream = "rgb"


class DepthClock(VideoInfo):
    """The depth stream's (num_frames, fps, height, width) as the clock of a video without RGB."""

    __slots__ = ()
    stream = "depth"


def _open_video(p: Path, num_threads: int):
    import decord  # lazily, after cv2

    try:
        return decord.VideoReader(str(p), num_threads=num_threads)
    except Exception as e:  # decord raises RuntimeError / DECORDError for anything it cannot open
        raise DataError(f"{p}: cannot be decoded ({first_line(e)}); re-encode it, e.g. "
                        f"`ffmpeg -i in -c:v libx264 -pix_fmt yuv420p out.mp4`") from None


def _decode_sequential(p: Path, uniq: np.ndarray, fmt: str, pick_stream=None) -> np.ndarray:
    """Frames at sorted unique `uniq` decoded with PyAV from the start, as (K, H, W[, C]) arrays of format `fmt`.

    `pick_stream(container)` selects the video stream (default: the first one).
    """
    import av

    want = {int(i): k for k, i in enumerate(uniq)}
    out: List[Optional[np.ndarray]] = [None] * len(uniq)
    last, seen = int(uniq[-1]), 0
    try:
        with av.open(str(p)) as container:
            stream = pick_stream(container) if pick_stream is not None else container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                seen = i + 1
                if i in want:
                    out[want[i]] = frame.to_ndarray(format=fmt)
                if i >= last:
                    break
    except DataError:
        raise
    except Exception as e:  # av.error.FFmpegError and friends
        raise DataError(f"{p}: cannot be decoded ({first_line(e)}); re-encode it") from None
    if any(o is None for o in out):
        raise DataError(f"{p}: only {seen} frames could be decoded but frame {last} was requested; the file is "
                        f"truncated or its frame count is wrong; re-encode it")
    return np.stack(out)


def _get_batch(vr, p: Path, uniq: np.ndarray) -> np.ndarray:
    try:
        frames = vr.get_batch(uniq.tolist()).asnumpy()
    except Exception as e:  # decord2 size bug on some widths, or a broken stream: try PyAV before giving up
        _warn_once(f"pyav:{p}", "decord could not read %s (%s); decoding it with PyAV instead", p, first_line(e))
        frames = _decode_sequential(p, uniq, "rgb24")
    if frames.ndim != 4 or frames.shape[0] != len(uniq) or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DataError(f"{p}: decoded frames have shape {frames.shape} {frames.dtype}, expected (K, H, W, 3) uint8; "
                        f"re-encode it as an 8-bit RGB/YUV video")
    return frames


def probe_video(path: PathLike, num_threads: int = DECODE_THREADS) -> VideoInfo:
    """(num_frames, fps, height, width) of an RGB video; decodes frame 0 to learn the frame size.

    Raises DataError naming the file when it is missing, empty (0 bytes), undecodable, frameless or has no fps.
    """
    p = _check_file(path, "video")
    vr = _open_video(p, num_threads)
    n, fps = len(vr), float(vr.get_avg_fps())
    if n <= 0:
        raise DataError(f"{p}: the video has no frames; re-export it")
    if not np.isfinite(fps) or fps <= 0:
        raise DataError(f"{p}: the video reports frame rate {fps}; re-encode it with a constant frame rate (-r)")
    frame = _get_batch(vr, p, np.zeros(1, dtype=np.int64))
    return VideoInfo(n, fps, int(frame.shape[1]), int(frame.shape[2]))


def read_rgb_frames(path: PathLike, indices: Sequence[int], num_threads: int = DECODE_THREADS) -> np.ndarray:
    """RGB frames at `indices` (any order, duplicates allowed) -> (K, H, W, 3) uint8, in the requested order.

    One decord `get_batch` reads the sorted, de-duplicated indices; the requested order is restored afterwards.
    Raises DataError naming the file for a missing/empty/undecodable file or an index outside 0..num_frames-1.
    """
    p = _check_file(path, "video")
    idx = as_indices(indices)
    vr = _open_video(p, num_threads)
    check_frame_range(idx, len(vr), p)
    if idx.size == 0:
        return _get_batch(vr, p, np.zeros(1, dtype=np.int64))[:0]
    uniq, inv = np.unique(idx, return_inverse=True)
    return _get_batch(vr, p, uniq)[inv.reshape(-1)]


# -- depth -----------------------------------------------------------------------------------------------------------
class DepthStore:
    """One video's depth frames. Subclasses set `kind`, `num_frames` and implement `_read_raw`.

    Attributes: `path` (file or folder), `depth_scale` (metres per integer unit), `num_frames`, `fps` (float when
    the store itself knows it, e.g. an MKV; else None), `nonfinite` (non-finite values zeroed so far), `dtype` (the
    stored dtype when the store may hold floats (npz/npy); None for the 16-bit integer stores PNG and MKV).
    `random_access` (class attribute): False for stores whose read cost grows with the frame index (decoded from
    the start), so that cheap checks sample their first frames only. `aligned` (class attribute): True for stores
    whose frame i already belongs to frame i of the video's clock (a sensor recording's paired depth).
    """

    kind = "?"
    random_access = True
    aligned = False

    def __init__(self, path: PathLike, depth_scale: float) -> None:
        if not depth_scale > 0:
            raise DataError(f"{path}: depth_scale must be > 0 (metres per depth unit), got {depth_scale}; set "
                            f"depth_scale in dataset.yaml or data.depth_scale")
        self.path = Path(path)
        self.depth_scale = float(depth_scale)
        self.num_frames = 0
        self.fps: Optional[float] = None
        self.nonfinite = 0
        self.dtype: Optional[np.dtype] = None
        self._scan_chunk = 256  # frames per read in count_nonfinite

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={self.num_frames}, scale={self.depth_scale})"

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        """Frames at sorted unique indices -> (K, H, W) array as stored (integer units or float metres)."""
        raise NotImplementedError

    def read(self, indices: Sequence[int], count: bool = True) -> np.ndarray:
        """Depth frames at `indices` (any order, duplicates allowed) -> (K, H, W) float32 metres (0 = no reading).
        `count` False leaves `nonfinite` as it is (a check that peeks at frames)."""
        idx = as_indices(indices)
        check_frame_range(idx, self.num_frames, self.path)
        if idx.size == 0:
            return np.zeros((0, 0, 0), dtype=np.float32)
        uniq, inv = np.unique(idx, return_inverse=True)
        return self.to_metres(self._read_raw(uniq), count)[inv.reshape(-1)]

    def count_nonfinite(self, indices: Sequence[int]) -> Tuple[int, int]:
        """(non-finite values, frames holding any) among the frames at `indices` (duplicates counted once), read as
        stored; `nonfinite` is not changed. Integer stores cannot hold NaN/inf and are not read."""
        if self.dtype is None or not np.issubdtype(self.dtype, np.floating):
            return 0, 0
        uniq = np.unique(as_indices(indices))
        check_frame_range(uniq, self.num_frames, self.path)
        values = frames = 0
        for s in range(0, len(uniq), self._scan_chunk):
            bad = ~np.isfinite(self._read_raw(uniq[s:s + self._scan_chunk]))
            values += int(bad.sum())
            frames += int(bad.reshape(bad.shape[0], -1).any(axis=1).sum())
        return values, frames

    def to_metres(self, raw: np.ndarray, count: bool = True) -> np.ndarray:
        """Stored values -> float32 metres: integers × depth_scale; floats as they are, non-finite -> 0 (counted in
        `nonfinite` unless `count` is False)."""
        if np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_:
            return raw.astype(np.float32) * np.float32(self.depth_scale)
        if np.issubdtype(raw.dtype, np.floating):
            m = raw.astype(np.float32)  # a copy, so a memory-mapped file is never written
            bad = ~np.isfinite(m)
            n_bad = int(bad.sum())
            m[bad] = 0.0
            if n_bad and count:
                self.nonfinite += n_bad
                _warn_once(f"nonfinite:{self.path}", "%s: %d non-finite depth values (NaN/inf) read as 0 (no reading)",
                           self.path, n_bad)
            return m
        raise DataError(f"{self.path}: depth has dtype {raw.dtype}; store uint16 depth units or float32 metres")


class PngDepthStore(DepthStore):
    """``<folder>/<prefix><index>.png`` 16-bit single-channel PNGs, index zero-padded to `digits`, from `start`."""

    kind = "png"

    def __init__(self, folder: PathLike, depth_scale: float, prefix: str = "", digits: int = 6, start: int = 0):
        super().__init__(folder, depth_scale)
        self.prefix, self.digits, self.start = prefix, digits, start
        pat = re.compile(rf"^{re.escape(prefix)}(\d{{{digits}}})\.png$")
        numbers = sorted(int(m.group(1)) for m in map(pat.match, os.listdir(self.path)) if m)
        if not numbers:
            raise DataError(f"{self.path}: depth folder has no {self.frame_name(start)}-style frames; write one "
                            f"16-bit PNG per RGB frame (000000.png, 000001.png, ...) or remove the folder")
        missing = sorted(set(range(start, start + len(numbers))) - set(numbers))
        if missing:
            raise DataError(f"{self.frame_path(missing[0] - start)}: depth frame missing (the folder has "
                            f"{len(numbers)} frames numbered up to {numbers[-1]}); frames must be numbered "
                            f"contiguously from {self.frame_name(start)}")
        self.num_frames = len(numbers)

    def frame_name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.digits}d}.png"

    def frame_path(self, index: int) -> Path:
        """Path of depth frame `index` (0-based)."""
        return self.path / self.frame_name(index + self.start)

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        frames = [read_png16(self.frame_path(int(i))) for i in uniq]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(f"{self.path}: depth frames have different sizes {sorted(shapes)}; re-export them at "
                            f"one resolution")
        return np.stack(frames)


def read_png16(path: PathLike) -> np.ndarray:
    """One 16-bit single-channel PNG -> (H, W) uint16, bit-exact; DataError naming the file otherwise."""
    p = Path(path)
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None:
        if not p.is_file():
            raise DataError(f"{p}: depth frame not found; write one PNG per RGB frame")
        raise DataError(f"{p}: cv2.imread returned None; {ZLIB_CLASH_HINT}")
    if img.ndim != 2:
        raise DataError(f"{p}: depth PNG has {img.shape[2]} channels, expected 1; save a single-channel 16-bit PNG "
                        f"(r3d.data.io.write_depth_png16)")
    if img.dtype != np.uint16:
        raise DataError(f"{p}: {img.dtype} ({img.dtype.itemsize * 8}-bit) PNG where a 16-bit depth PNG is expected "
                        f"(8-bit cannot hold depth units); save uint16 depth (r3d.data.io.write_depth_png16)")
    return img


def _npy_header(f) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


class NpzDepthStore(DepthStore):
    """``<video_id>.npz`` with key `key` (default ``depth``): (T, H, W) integer units or float metres, and an
    optional scalar ``fps`` (the depth frame rate).

    An uncompressed member (`np.savez`) is memory-mapped, so a read costs only the frames it reads; a compressed
    one (`np.savez_compressed`) is decompressed whole on every read (prefer .npy or np.savez for long videos).
    """

    kind = "npz"

    def __init__(self, path: PathLike, depth_scale: float, key: str = "depth") -> None:
        super().__init__(path, depth_scale)
        self.key = key
        self._mmap_args = None
        try:
            with zipfile.ZipFile(self.path) as z:
                names = z.namelist()
                member = f"{key}.npy"
                if member not in names:
                    keys = [n[:-4] for n in names if n.endswith(".npy")]
                    raise DataError(f"{self.path}: no key '{key}' (keys: {keys}); save the depth array as "
                                    f"np.savez(path, {key}=array)")
                info = z.getinfo(member)
                with z.open(member) as f:
                    shape, fortran, dtype = _npy_header(f)
                    header_len = f.tell()
                if "fps.npy" in names:
                    with z.open("fps.npy") as f:
                        fps = np.lib.format.read_array(f)
                    if fps.size != 1 or not np.issubdtype(fps.dtype, np.number) or not 0 < fps.reshape(-1)[0] < np.inf:
                        raise DataError(f"{self.path}: key 'fps' is {fps.tolist()!r}; it must be one positive number")
                    self.fps = float(fps.reshape(-1)[0])
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"{self.path}: not a readable .npz ({first_line(e)}); re-save it with np.savez") from None
        if len(shape) != 3:
            raise DataError(f"{self.path}: '{key}' has shape {shape}, expected (T, H, W)")
        self.num_frames = int(shape[0])
        self.dtype = dtype
        if info.compress_type == zipfile.ZIP_STORED and not fortran and not dtype.hasobject:
            with open(self.path, "rb") as fh:  # the member's data follows its local header (30 bytes + name + extra)
                fh.seek(info.header_offset)
                local = fh.read(30)
            data_start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                int.from_bytes(local[28:30], "little")
            self._mmap_args = (dtype, data_start + header_len, shape)
        else:  # every read decompresses the whole member: scan it in one read
            self._scan_chunk = max(self.num_frames, 1)

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        if self._mmap_args is not None:
            dtype, offset, shape = self._mmap_args
            return np.array(np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape)[uniq])
        with np.load(self.path) as z:
            return z[self.key][uniq]


class NpyDepthStore(DepthStore):
    """``<video_id>.npy``: (T, H, W) integer units or float metres, memory-mapped."""

    kind = "npy"

    def __init__(self, path: PathLike, depth_scale: float) -> None:
        super().__init__(path, depth_scale)
        try:
            arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{self.path}: not a readable .npy ({first_line(e)}); re-save it with np.save") from None
        if arr.ndim != 3:
            raise DataError(f"{self.path}: array has shape {arr.shape}, expected (T, H, W)")
        self.num_frames = int(arr.shape[0])
        self.dtype = arr.dtype

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[uniq])


class MkvDepthStore(DepthStore):
    """``<video_id>.mkv``: the first 16-bit gray video stream (FFV1 gray16le), decoded bit-exact with PyAV.

    Frames are decoded sequentially from the start up to the largest requested index.
    """

    kind = "mkv"
    random_access = False

    def __init__(self, path: PathLike, depth_scale: float) -> None:
        super().__init__(path, depth_scale)
        _check_file(self.path, "depth video")
        import av

        try:
            with av.open(str(self.path)) as c:
                stream = self._depth_stream(c)
                n = int(stream.frames or 0)
                if n <= 0:  # Matroska often has no frame count: count the packets (no decoding)
                    n = sum(1 for pkt in c.demux(stream) if pkt.size > 0)
                self.fps = float(stream.average_rate) if stream.average_rate else None
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{self.path}: cannot be opened ({first_line(e)}); re-write it with "
                            f"r3d.data.io.write_depth_ffv1") from None
        self.num_frames = n

    def _depth_stream(self, container):
        fmts = []
        for s in container.streams.video:
            fmt = s.codec_context.pix_fmt or ""
            if fmt.startswith("gray16"):
                return s
            fmts.append(fmt)
        raise DataError(f"{self.path}: no 16-bit gray video stream (pixel formats: {fmts}); 8-bit video cannot hold "
                        f"depth, store FFV1 gray16le (r3d.data.io.write_depth_ffv1)")

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        return _decode_sequential(self.path, uniq, "gray16le", self._depth_stream)



def open_depth(root: PathLike, video_id: str, depth_scale: float) -> Optional[DepthStore]:
    """The depth store of `video_id` under ``root/depth`` (folder, .npz, .npy, .mkv; first found), or None if absent.

    `root` is the dataset ROOT. None means the depth modality is missing for this video.
    """
    base = Path(root) / "depth"
    folder = base / video_id
    if folder.is_dir():
        return PngDepthStore(folder, depth_scale)
    for suffix, cls in ((".npz", NpzDepthStore), (".npy", NpyDepthStore), (".mkv", MkvDepthStore)):
        p = base / f"{video_id}{suffix}"
        if p.is_file():
            return cls(p, depth_scale)
    return None


# -- writers (fixtures, converters) ----------------------------------------------------------------------------------
