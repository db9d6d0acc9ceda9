"""Tiny native recordings written from known arrays, so tests compare what the readers return with what was written.

- `write_k4a_mkv`: Matroska laid out the way the Azure Kinect recorder (k4arecorder, also used by Orbbec's K4A
  wrapper) writes it, by a small EBML writer here (FFmpeg's muxer cannot store the `b16g` tag, see below): tracks
  named COLOR / DEPTH / IR with codec ``V_MS/VFW/FOURCC`` and a BITMAPINFOHEADER (MJPG colour, ``b16g`` big-endian
  16-bit depth and IR), k4a tags (K4A_COLOR_TRACK / K4A_DEPTH_TRACK / K4A_IR_TRACK naming each TrackUID, K4A_DEPTH_MODE,
  K4A_START_OFFSET_NS, ...), a 1 µs timestamp scale, one SimpleBlock per image, clusters shorter than 32 ms, cues.
- `write_pyav_mkv`: what PyAV writes on its own: H.264 or MJPEG colour plus FFV1 gray16le depth, no k4a titles/tags.
  (PyAV can set ``codec_tag = "b16g"`` on a rawvideo gray16 stream, but FFmpeg's muxer resets a rawvideo tag that is
  not in its Matroska table and writes biCompression 0 with 16 bits, which FFmpeg reads back as rgb555le.)
- `write_realsense_bag`: a rosbag v1 with realsense-viewer's topic layout, written with `rosbags`: depth
  ``/device_0/sensor_0/Depth_0/image/data`` (sensor_msgs/Image, mono16), colour
  ``/device_0/sensor_1/Color_0/image/data`` (rgb8, bgr8, ...), stream info and the Depth Units option; optionally
  librealsense's newer image layout (header frame_id "1" and a float32 depth_units after the data).

Frame content: colour frame k is a smooth gradient whose level encodes k (`color_frame`), so a frame read back can be
identified; depth frame k is `depth_frame(k)` (mm, with a hole of zeros), so depth is compared bit for bit.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

H, W = 24, 32  # colour frame size
DH, DW = 12, 16  # depth frame size (k4a depth and colour sizes differ too)


def color_frame(k: int, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8: a horizontal gradient plus a level 30 + 25·k (mod 200) per channel pattern."""
    x = np.linspace(0, 40, w, dtype=np.float32)[None, :, None]
    base = np.array([30 + (25 * k) % 200, 200 - (25 * k) % 200, 90 + (10 * k) % 100], np.float32)[None, None]
    return np.clip(base + x + np.zeros((h, 1, 1), np.float32), 0, 255).astype(np.uint8)


def depth_frame(k: int, h: int = DH, w: int = DW) -> np.ndarray:
    """(h, w) uint16 mm: 1000 + 37·k + 3·x + 5·y, with a 2×3 hole (0) and one 65535-free high reading."""
    y, x = np.mgrid[0:h, 0:w]
    d = (1000 + 37 * k + 3 * x + 5 * y).astype(np.uint16)
    d[1:3, 2:5] = 0
    d[-1, -1] = 4000 + k
    return d


# -- EBML / Matroska --------------------------------------------------------------------------------------------------
def _size(n: int) -> bytes:
    return bytes([0x01]) + n.to_bytes(7, "big")  # 8-byte EBML size, as k4arecorder writes the segment's


def el(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _size(len(payload)) + payload


def el_uint(eid: int, v: int) -> bytes:
    return el(eid, v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big"))


def el_str(eid: int, s: str) -> bytes:
    return el(eid, s.encode("utf-8"))


def bitmap_info_header(width: int, height: int, bits: int, fourcc: bytes, image_size: int) -> bytes:
    """The 40-byte BITMAPINFOHEADER k4arecorder stores as CodecPrivate."""
    return struct.pack("<IiiHH4sIiiII", 40, width, height, 1, bits, fourcc, image_size, 0, 0, 0, 0)


def _tag(name: str, value: str, track_uid: Optional[int] = None) -> bytes:
    targets = el(0x63C0, el_uint(0x68CA, 30) + el_uint(0x63C5, track_uid)) if track_uid else el(0x63C0, b"")
    return el(0x7373, targets + el(0x67C8, el_str(0x45A3, name) + el_str(0x4487, value)))


def write_k4a_mkv(path: Path, depth: np.ndarray, depth_us: Sequence[int], color: Optional[np.ndarray] = None,
                  color_us: Optional[Sequence[int]] = None, *, ir: bool = True, names: bool = True, tags: bool = True,
                  fps: int = 30, depth_mode: str = "NFOV_UNBINNED", jpeg_quality: int = 95,
                  depth_track: bool = True) -> Dict[str, object]:
    """Write a k4arecorder-style MKV; returns what was written (uids, JPEG bytes, the start offset).

    Args:
        depth: (T, h, w) uint16 mm. depth_us: (T,) device timestamps in µs (IR, when written, gets the same times and
            frames `65535 - depth`). color: (N, H, W, 3) uint8 RGB or None (colour off). color_us: (N,) µs.
        ir / names / tags: write the IR track, the track names, the k4a tags. depth_track: False writes IR only
            (k4arecorder's PASSIVE_IR mode).
    """
    t0 = min(list(depth_us) + list(color_us or []))
    tracks: List[Tuple[str, bytes, int]] = []  # (name, fourcc, uid)
    blocks: List[Tuple[int, int, bytes]] = []  # (time µs, track number, payload)
    jpegs: List[bytes] = []
    entries = b""
    uid = 0x1D5E2A30
    n_tracks = 0

    def add_track(name: str, fourcc: bytes, bits: int, w: int, h: int, image_size: int) -> int:
        nonlocal entries, n_tracks
        n_tracks += 1
        track_uid = uid + n_tracks
        body = (el_uint(0xD7, n_tracks) + el_uint(0x73C5, track_uid) + el_uint(0x83, 1)
                + (el_str(0x536E, name) if names else b"") + el_str(0x86, "V_MS/VFW/FOURCC")
                + el(0x63A2, bitmap_info_header(w, h, bits, fourcc, image_size))
                + el_uint(0x23E383, 1_000_000_000 // fps) + el(0xE0, el_uint(0xB0, w) + el_uint(0xBA, h)))
        entries += el(0xAE, body)
        tracks.append((name, fourcc, track_uid))
        return n_tracks

    if color is not None:
        num = add_track("COLOR", b"MJPG", 24, color.shape[2], color.shape[1], 0)
        for frame, t in zip(color, color_us):
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            assert ok
            jpegs.append(buf.tobytes())
            blocks.append((int(t), num, jpegs[-1]))
    h, w = depth.shape[1:]
    if depth_track:
        num = add_track("DEPTH", b"b16g", 16, w, h, w * h * 2)
        blocks += [(int(t), num, d.astype(">u2").tobytes()) for d, t in zip(depth, depth_us)]
    if ir:
        num = add_track("IR", b"b16g", 16, w, h, w * h * 2)
        blocks += [(int(t), num, (65535 - d).astype(">u2").tobytes()) for d, t in zip(depth, depth_us)]
    blocks.sort(key=lambda b: (b[0], b[1]))

    tag_bytes = b""
    if tags:
        for name, _, track_uid in tracks:
            tag_bytes += _tag(f"K4A_{name}_TRACK", str(track_uid), track_uid)
            if name == "COLOR":
                tag_bytes += _tag("K4A_COLOR_MODE", f"MJPG_{color.shape[1]}P", track_uid)
            if name == "DEPTH":
                tag_bytes += _tag("K4A_DEPTH_MODE", depth_mode, track_uid)
        if not depth_track:  # k4arecorder tags the mode globally when it writes no depth track (PASSIVE_IR)
            tag_bytes += _tag("K4A_DEPTH_MODE", depth_mode)
        tag_bytes += _tag("K4A_DEPTH_DELAY_NS", "0") + _tag("K4A_WIRED_SYNC_MODE", "STANDALONE")
        tag_bytes += _tag("K4A_START_OFFSET_NS", str(t0 * 1000))
    info = el(0x1549A966, el_uint(0x2AD7B1, 1000) + el_str(0x4D80, "libmatroska-1.4.9")
              + el_str(0x5741, "k4arecord-1.4.1") + el_str(0x7BA9, "Azure Kinect"))
    track_el = el(0x1654AE6B, entries)
    tags_el = el(0x1254C367, tag_bytes) if tag_bytes else b""

    clusters, cues = b"", b""
    head_len = None  # offset of the first cluster inside the segment, known once the seek head is sized
    groups: List[List[Tuple[int, int, bytes]]] = []
    for b in blocks:  # clusters span < 32 ms, as block times are int16 µs relative to the cluster
        if not groups or b[0] - groups[-1][0][0] >= 32_000:
            groups.append([])
        groups[-1].append(b)

    def seek_head(positions: Dict[int, int]) -> bytes:
        return el(0x114D9B74, b"".join(el(0x4DBB, el(0x53AB, eid.to_bytes(4, "big"))
                                           + el(0x53AC, pos.to_bytes(8, "big"))) for eid, pos in positions.items()))

    ids = [0x1549A966, 0x1654AE6B] + ([0x1254C367] if tags_el else []) + [0x1C53BB6B]
    head_len = len(seek_head({i: 0 for i in ids}))
    pos = head_len + len(info) + len(track_el) + len(tags_el)
    first_cluster = pos
    for g in groups:
        ct = g[0][0] - t0
        body = el_uint(0xE7, ct)
        for t, num, payload in g:
            body += el(0xA3, bytes([0x80 | num]) + struct.pack(">hB", t - t0 - ct, 0x80) + payload)
        cluster = el(0x1F43B675, body)
        cues += el(0xBB, el_uint(0xB3, ct) + el(0xB7, el_uint(0xF7, 1) + el_uint(0xF1, pos)))
        clusters += cluster
        pos += len(cluster)
    cues_el = el(0x1C53BB6B, cues)
    positions = {0x1549A966: head_len, 0x1654AE6B: head_len + len(info)}
    if tags_el:
        positions[0x1254C367] = head_len + len(info) + len(track_el)
    positions[0x1C53BB6B] = pos
    segment_body = seek_head(positions) + info + track_el + tags_el + clusters + cues_el
    assert first_cluster == len(seek_head(positions)) + len(info) + len(track_el) + len(tags_el)
    ebml = el(0x1A45DFA3, el_uint(0x4286, 1) + el_uint(0x42F7, 1) + el_uint(0x42F2, 4) + el_uint(0x42F3, 8)
              + el_str(0x4282, "matroska") + el_uint(0x4287, 2) + el_uint(0x4285, 2))
    Path(path).write_bytes(ebml + el(0x18538067, segment_body))
    return {"uids": {name: u for name, _, u in tracks}, "jpegs": jpegs, "start_offset_us": t0}


def write_pyav_mkv(path: Path, depth: np.ndarray, color: Optional[np.ndarray], fps: int = 30,
                   color_codec: str = "libx264") -> None:
    """PyAV's own Matroska: colour (libx264 yuv444p, GOP 4, or mjpeg) and FFV1 gray16le depth, frame k at k / fps,
    no track names or tags (the reader must fall back on codec and pixel format)."""
    import av

    with av.open(str(path), "w", format="matroska") as c:
        cs = None
        if color is not None:
            cs = c.add_stream(color_codec, rate=fps)
            cs.width, cs.height = color.shape[2], color.shape[1]
            cs.pix_fmt = "yuv444p" if color_codec == "libx264" else "yuvj444p"
            if color_codec == "libx264":
                cs.options = {"g": "4", "bf": "2", "crf": "10"}
        ds = c.add_stream("ffv1", rate=fps)
        ds.width, ds.height = depth.shape[2], depth.shape[1]
        ds.pix_fmt = "gray16le"
        for k in range(max(len(depth), 0 if color is None else len(color))):
            if cs is not None and k < len(color):
                f = av.VideoFrame.from_ndarray(color[k], format="rgb24")
                f.pts = k
                c.mux(cs.encode(f))
            if k < len(depth):
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(depth[k]), format="gray16le")
                f.pts = k
                c.mux(ds.encode(f))
        if cs is not None:
            c.mux(cs.encode())
        c.mux(ds.encode())


# -- RealSense bag ----------------------------------------------------------------------------------------------------
STREAM_INFO_MSG = "uint32 fps\nstring encoding\nbool is_recommended\n"


def _image_bytes(frame: np.ndarray, encoding: str, pad: int = 0) -> Tuple[np.ndarray, int]:
    """Pixel bytes (h, step) of an RGB (h, w, 3) uint8 frame, or of (h, w) uint16 / float32 depth, in `encoding`,
    each row followed by `pad` bytes (as a driver with aligned rows writes them), and the row step."""
    if frame.dtype == np.uint16:
        data = frame.astype("<u2").view(np.uint8)
    elif frame.dtype == np.float32:
        data = frame.astype("<f4").view(np.uint8)
    else:
        data = {"rgb8": lambda f: f, "bgr8": lambda f: f[..., ::-1],
                "rgba8": lambda f: np.concatenate([f, np.full(f.shape[:2] + (1,), 255, np.uint8)], -1),
                "bgra8": lambda f: np.concatenate([f[..., ::-1], np.full(f.shape[:2] + (1,), 255, np.uint8)], -1),
                "mono8": lambda f: f[..., 0], "8UC1": lambda f: f[..., 0],
                "yuv422": lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2YUV_UYVY),
                "YUYV": lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2YUV_YUYV)}[encoding](frame)
    rows = np.ascontiguousarray(data).reshape(frame.shape[0], -1)
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1)
    return rows, rows.shape[1]


def write_realsense_bag(path: Path, depth: np.ndarray, depth_ns: Sequence[int], color: Optional[np.ndarray] = None,
                        color_ns: Optional[Sequence[int]] = None, *, depth_units: Optional[float] = 0.001,
                        depth_encoding: str = "mono16", color_encoding: str = "rgb8", fps: int = 30,
                        rs_v1_fields: bool = False, zero_stamps: bool = False, depth_topic: bool = True,
                        compression: Optional[str] = None, ir: bool = True, pad: int = 0) -> None:
    """Write a realsense-viewer style bag; header stamps are the given device times, bag times are relative to the
    first frame plus 1 s (as librealsense writes the time since recording start).

    Args:
        depth: (T, h, w) uint16 units. depth_ns: (T,) device times in ns. color / color_ns: colour frames (RGB) and
            times, or None. depth_units: the Depth Units option value (None: not written). rs_v1_fields: newer
            librealsense layout (header frame_id "1", float32 depth_units after the data). zero_stamps: header stamps
            0 (the reader must use bag times). depth_topic: False writes no depth topic. compression: None, "lz4",
            "bz2". ir: also write an Infrared_1 stream (y8, as ``8UC1``) with depth's times. pad: bytes after
            each image row.
    """
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(get_types_from_msg(STREAM_INFO_MSG, "realsense_msgs/msg/StreamInfo"))
    Image = store.types["sensor_msgs/msg/Image"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    Float32 = store.types["std_msgs/msg/Float32"]
    StreamInfo = store.types["realsense_msgs/msg/StreamInfo"]
    all_ns = list(depth_ns) + list(color_ns or [])
    base = min(all_ns)

    writer = Writer(path)
    if compression:
        writer.set_compression(getattr(Writer.CompressionFormat, compression.upper()))
    with writer:
        def conn(topic: str, msgtype: str):
            return writer.add_connection(topic, msgtype, typestore=store)

        def image(frame: np.ndarray, t_ns: int, seq: int, encoding: str, units: float) -> bytes:
            data, step = _image_bytes(frame, encoding, pad)
            stamp = Time(sec=0, nanosec=0) if zero_stamps else Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)
            msg = Image(header=Header(seq=seq, stamp=stamp, frame_id="1" if rs_v1_fields else "0"),
                        height=frame.shape[0], width=frame.shape[1], encoding=encoding, is_bigendian=0, step=step,
                        data=data.reshape(-1).view(np.uint8))
            raw = bytes(store.serialize_ros1(msg, "sensor_msgs/msg/Image"))
            return raw + struct.pack("<f", units) if rs_v1_fields else raw

        static = 0
        streams = []
        if depth_topic:
            streams.append(("/device_0/sensor_0/Depth_0", depth, depth_ns, depth_encoding, depth_units or 0.0))
        if ir:
            streams.append(("/device_0/sensor_0/Infrared_1", (depth // 16).astype(np.uint8)[..., None]
                            .repeat(3, -1), depth_ns, "8UC1", 0.0))
        if color is not None:
            streams.append(("/device_0/sensor_1/Color_0", color, color_ns, color_encoding, 0.0))
        for prefix, _, _, encoding, _ in streams:
            c = conn(f"{prefix}/info", "realsense_msgs/msg/StreamInfo")
            writer.write(c, static, bytes(store.serialize_ros1(StreamInfo(fps=fps, encoding=encoding,
                                                                          is_recommended=True),
                                                               "realsense_msgs/msg/StreamInfo")))
        if depth_units is not None:
            c = conn("/device_0/sensor_0/option/Depth Units/value", "std_msgs/msg/Float32")
            writer.write(c, static, bytes(store.serialize_ros1(Float32(data=depth_units), "std_msgs/msg/Float32")))
        conns = {prefix: conn(f"{prefix}/image/data", "sensor_msgs/msg/Image") for prefix, *_ in streams}
        events = []
        for prefix, frames, times, encoding, units in streams:
            for k, (frame, t) in enumerate(zip(frames, times)):
                events.append((int(t) - base + 10**9, prefix, frame, int(t), k, encoding, units))
        events.sort(key=lambda e: (e[0], e[1]))
        for bag_t, prefix, frame, t, k, encoding, units in events:
            writer.write(conns[prefix], bag_t, image(frame, t, k, encoding, units))
