"""Azure Kinect / Orbbec Femto recordings: Matroska as k4arecorder (and Orbbec's K4A wrapper) writes it, read with PyAV.

Layout k4arecorder writes: video tracks named ``COLOR`` (MJPEG, or raw NV12/YUY2/BGRA), ``DEPTH`` and ``IR``
(codec ``V_MS/VFW/FOURCC``, fourcc ``b16g``: 16-bit grey, big-endian, depth in millimetres), an ``IMU`` track, tags
``K4A_COLOR_TRACK`` / ``K4A_DEPTH_TRACK`` / ``K4A_IR_TRACK`` that point at each track, and device timestamps (1 µs
units, starting at 0 = ``K4A_START_OFFSET_NS``). FFmpeg exposes a track's name as the stream title and track-targeted
tags as stream metadata, so a stream is identified the way k4a's playback does: by name or k4a tag first
(`TITLE_ROLES`, `TAG_ROLES`). Files from other writers (no names) fall back on the codec: the first 16-bit grey stream
(``b16g``, gray16le/be, e.g. FFV1) is depth, the first other video stream is colour; the IR track is never used.

k4a depth (a DEPTH track) is millimetres; a 16-bit track found by codec alone has no declared unit, so the caller's
`depth_scale` or the 1 mm default applies.

Colour may be any codec FFmpeg decodes (MJPEG, H.264, raw YUV); random access seeks to the key frame before a
requested frame and decodes forward, decoding only the requested packets of intra-only streams (MJPEG, b16g, FFV1).
A file shorter than its Matroska segment declares is refused as truncated (a copy or a recording cut short).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataError
from .common import Recording, RecordingIndex, StreamIndex, first_line, register_reader

TITLE_ROLES = {"COLOR": "color", "DEPTH": "depth", "IR": "ir"}  # k4arecorder's track names
TAG_ROLES = {"K4A_COLOR_TRACK": "color", "K4A_DEPTH_TRACK": "depth", "K4A_IR_TRACK": "ir"}  # track-targeted k4a tags
GRAY16 = ("gray16be", "gray16le")
SEEK_GAP = 8  # a requested frame more than this many packets past the decoder's position is reached by seeking

EBML_ID, SEGMENT_ID = 0x1A45DFA3, 0x18538067


def _read_vint(data: bytes, pos: int, keep_marker: bool) -> Tuple[Optional[int], int]:
    """(value, next position) of an EBML variable-length integer at `pos`; value None for "unknown size"."""
    first = data[pos]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML variable-length integer")
    value = int.from_bytes(data[pos:pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            return None, pos + length
    return value, pos + length


def matroska_truncation(path, file_size: int) -> Optional[str]:
    """Why a Matroska file is incomplete, or None: its segment declares more bytes than the file holds."""
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        eid, pos = _read_vint(head, 0, keep_marker=True)
        if eid != EBML_ID:
            return "it does not start with an EBML header (not a Matroska file)"
        size, pos = _read_vint(head, pos, keep_marker=False)
        pos += size or 0
        eid, pos = _read_vint(head, pos, keep_marker=True)
        if eid != SEGMENT_ID:
            return None
        size, pos = _read_vint(head, pos, keep_marker=False)
    except (ValueError, IndexError):
        return "its header is cut short"
    if size is not None and pos + size > file_size:
        return (f"its Matroska segment declares {pos + size} bytes but the file has {file_size} "
                f"({100 * file_size / (pos + size):.0f} %)")
    return None


def _describe(stream) -> str:
    cc = stream.codec_context
    title = stream.metadata.get("title") or f"#{stream.index}"
    tag = f"/{cc.codec_tag}" if cc.codec_tag and cc.codec_tag.strip("\x00") else ""
    return f"{title} ({cc.name}{tag}, {cc.pix_fmt})"


def _role(stream) -> Optional[str]:
    title = (stream.metadata.get("title") or "").strip().upper()
    if title in TITLE_ROLES:
        return TITLE_ROLES[title]
    for tag, role in TAG_ROLES.items():
        if tag in stream.metadata:
            return role
    return None


def _is_gray16(stream) -> bool:
    cc = stream.codec_context
    return (cc.pix_fmt or "") in GRAY16 or (cc.codec_tag or "") == "b16g"


@register_reader(".mkv")
class K4aMkvRecording(Recording):
    """An Azure Kinect / Orbbec Femto MKV (k4arecorder layout; see the module docstring)."""

    kind = "k4a-mkv"

    @classmethod
    def holds_depth(cls, path) -> bool:
        """Whether the MKV has a track k4a names DEPTH or a 16-bit grey track (False for plain colour videos and for
        files PyAV cannot open)."""
        import av

        try:
            with av.open(str(path)) as c:
                return any(_role(s) == "depth" or (_role(s) is None and _is_gray16(s)) for s in c.streams.video)
        except Exception:  # av.error.FFmpegError: not a readable Matroska file, so not a recording r3d reads
            return False

    def _pick_streams(self, container) -> Tuple[Optional[object], object, List[str]]:
        """(colour stream or None, depth stream, notes) by k4a name/tag, then by codec; DataError without depth."""
        video = list(container.streams.video)
        roles = {s.index: _role(s) for s in video}
        notes: List[str] = []
        by_role = {}
        for s in video:
            if roles[s.index] is not None and roles[s.index] not in by_role:
                by_role[roles[s.index]] = s
        unnamed = [s for s in video if roles[s.index] is None]
        depth = by_role.get("depth")
        if depth is None:
            gray = [s for s in unnamed if _is_gray16(s)]
            if gray:
                depth = gray[0]
                if len(gray) > 1:
                    notes.append(f"{len(gray)} unnamed 16-bit grey tracks; took the first, {_describe(depth)}, for "
                                 f"depth (k4arecorder writes DEPTH before IR)")
        if depth is None:
            tracks = ", ".join(_describe(s) for s in video) or "none"
            mode = container.metadata.get("K4A_DEPTH_MODE")
            why = f" (K4A_DEPTH_MODE={mode})" if mode else ""
            raise DataError(f"{self.path}: no depth track{why}; video tracks: {tracks}. r3d needs k4arecorder's DEPTH "
                            f"track (record with --depth-mode other than OFF/PASSIVE_IR) or a 16-bit grey track")
        if not _is_gray16(depth):
            raise DataError(f"{self.path}: the depth track {_describe(depth)} is not 16-bit grey; this encoding is not "
                            f"supported (r3d reads b16g as k4arecorder writes it, or FFV1/raw gray16)")
        color = by_role.get("color")
        if color is None:
            others = [s for s in unnamed if s is not depth and not _is_gray16(s)]
            color = others[0] if others else None
        return color, depth, notes

    def _build_index(self) -> RecordingIndex:
        import av

        size = self.path.stat().st_size
        cut = matroska_truncation(self.path, size)
        if cut is not None:
            raise DataError(f"{self.path}: the recording is truncated: {cut}; copy it again (or re-record: "
                            f"k4arecorder finalises the file only when it stops cleanly)")
        try:
            with av.open(str(self.path)) as c:
                color, depth, notes = self._pick_streams(c)
                streams = [s for s in (color, depth) if s is not None]
                pts: Dict[int, List[int]] = {s.index: [] for s in streams}
                keys: Dict[int, List[bool]] = {s.index: [] for s in streams}
                for pkt in c.demux(streams):
                    if pkt.size == 0 or pkt.pts is None:
                        continue
                    pts[pkt.stream.index].append(int(pkt.pts))
                    keys[pkt.stream.index].append(bool(pkt.is_keyframe))
                index = {}
                for s in streams:
                    order = np.argsort(np.asarray(pts[s.index], dtype=np.int64), kind="stable")
                    p = np.asarray(pts[s.index], dtype=np.int64)[order]
                    tb = s.time_base
                    rate = s.average_rate or s.guessed_rate
                    index[s.index] = StreamIndex(
                        name=s.metadata.get("title") or f"track #{s.index}", codec=_describe(s),
                        width=int(s.codec_context.width), height=int(s.codec_context.height),
                        times=p * (tb.numerator / tb.denominator), keys=p,
                        nominal_fps=float(rate) if rate else None,
                        keyframe=np.asarray(keys[s.index], dtype=bool)[order])
                color_no, depth_no = None if color is None else color.index, depth.index
                extra = {"depth_stream": depth_no, "color_stream": color_no, "tags": dict(c.metadata)}
                k4a_depth = _role(depth) == "depth"
        except DataError:
            raise
        except Exception as e:  # av.error.FFmpegError and friends: damaged data PyAV cannot demux
            raise DataError(f"{self.path}: cannot be read as Matroska ({first_line(e)}); the file is damaged or is "
                            f"not a k4arecorder MKV") from None
        return RecordingIndex(color=None if color_no is None else index[color_no], depth=index[depth_no],
                              depth_scale=0.001 if k4a_depth else None,
                              depth_scale_source="k4a depth is millimetres" if k4a_depth else "",
                              clock="Matroska block timestamps", notes=notes, extra=extra)

    def _positions(self, role: str, info: StreamIndex) -> Tuple[Dict[int, int], np.ndarray]:
        """({pts: frame position}, (F,) position of the last key frame at or before each frame), cached."""
        cache = self.__dict__.setdefault("_position_cache", {})
        if role not in cache:
            where = {int(p): i for i, p in enumerate(info.keys)}
            pos = np.arange(info.num_frames)
            key = info.keyframe if info.keyframe is not None else np.ones(info.num_frames, bool)
            key_before = np.maximum.accumulate(np.where(key, pos, 0))
            cache[role] = (where, key_before)
        return cache[role]

    def _decode(self, role: str, uniq: np.ndarray, fmt: str) -> np.ndarray:
        """Frames at sorted unique positions of the colour/depth stream -> (K, H, W[, C]) arrays of format `fmt`.

        Seeks are by time on the whole file (FFmpeg then uses the cues, which k4arecorder writes for its first
        track only) to the key frame before the next wanted frame; packets are demuxed forward from there, and
        decoded from that key frame on (intra-only streams: only the wanted packets).
        """
        import av

        info = self.index.color if role == "color" else self.index.depth
        where, key_before = self._positions(role, info)
        intra = info.keyframe is None or bool(info.keyframe.all())
        want = set(int(i) for i in uniq)
        out: Dict[int, np.ndarray] = {}
        t = 0
        try:
            with av.open(str(self.path)) as c:
                s = c.streams[self.index.extra[f"{role}_stream"]]
                while t < len(uniq):
                    key = int(key_before[int(uniq[t])])
                    c.seek(int(info.times[key] * av.time_base), backward=True, any_frame=False)
                    started, jumped = False, False
                    for pkt in c.demux(s):
                        i = where.get(int(pkt.pts)) if pkt.pts is not None else None
                        started = started or i == key or i is None
                        if started and not (intra and i is not None and i not in want):
                            for frame in pkt.decode():
                                j = where.get(int(frame.pts)) if frame.pts is not None else i
                                if j in want and j not in out:
                                    out[j] = frame.to_ndarray(format=fmt)
                        while t < len(uniq) and int(uniq[t]) in out:
                            t += 1
                        if t == len(uniq):
                            break
                        if started and i is not None and key_before[int(uniq[t])] > i + SEEK_GAP:
                            jumped = True  # far ahead: seek instead of demuxing up to it
                            break
                    if not jumped:
                        break
        except Exception as e:  # av.error.FFmpegError and friends
            raise DataError(f"{self.path}: {role} track cannot be decoded ({first_line(e)}); the file is "
                            f"damaged") from None
        missing = [int(i) for i in uniq if int(i) not in out]
        if missing:
            raise DataError(f"{self.path}: {role} frame {missing[0]} of {info.num_frames} could not be decoded; the "
                            f"file is damaged or truncated")
        return np.stack([out[int(i)] for i in uniq])

    def _read_color(self, uniq: np.ndarray) -> np.ndarray:
        return self._decode("color", uniq, "rgb24")

    def _read_depth(self, uniq: np.ndarray) -> np.ndarray:
        return self._decode("depth", uniq, "gray16le")
