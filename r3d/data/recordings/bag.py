"""Intel RealSense recordings: rosbag v1 files as realsense-viewer (librealsense's recorder) writes them, read with
`rosbags` (pure Python; no RealSense SDK needed).

Layout librealsense writes: one ``sensor_msgs/Image`` topic per stream,
``/device_<d>/sensor_<s>/<Stream>_<i>/image/data`` — depth is ``Depth_<i>`` (z16, encoding ``mono16``), colour
``Color_<i>`` (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``yuv422`` = UYVY, ``YUYV``, ``mono8``/``8UC1``); infrared
(``Infrared_<i>``) is ignored. Each image's header stamp is
the frame's device timestamp (seconds); the bag's own message time is the time since the recording started. The
depth unit comes from, in this order: the ``depth_units`` float newer librealsense appends to each depth image
(its header frame_id is then ``"1"``), the ``/device_<d>/sensor_<s>/option/Depth Units/value`` option, else 1 mm.
``.../<Stream>_<i>/info`` (realsense_msgs/StreamInfo) gives the nominal frame rate.

Bags from other ROS tools fall back on names: the first Image topic with ``depth`` in its name is depth, the first
with ``color`` or ``rgb`` is colour. Images are parsed straight from their ROS1 serialisation (`parse_image`), which
also accepts librealsense's extra trailing field. Frames are paired on the header stamps when every frame has one,
else on the bag times (`RecordingIndex.clock` says which).
"""
from __future__ import annotations

import os
import re
import struct
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from ..errors import DataError
from .common import Recording, RecordingIndex, StreamIndex, first_line, register_reader

DEPTH_TOPIC = re.compile(r"^/device_(\d+)/sensor_(\d+)/Depth_(\d+)/image/data$")
COLOR_TOPIC = re.compile(r"^/device_(\d+)/sensor_(\d+)/Color_(\d+)/image/data$")
FALLBACK_NAMES = {"depth": ("depth",), "color": ("color", "rgb")}  # topic words used without librealsense's layout
IMAGE_TYPE = "sensor_msgs/msg/Image"
DEPTH_ENCODINGS = ("mono16", "16uc1")  # lower case; librealsense writes z16 depth as mono16


def _uyvy(a: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(a, cv2.COLOR_YUV2RGB_UYVY)


def _yuyv(a: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(a, cv2.COLOR_YUV2RGB_YUYV)


# encoding (lower case) -> (bytes per pixel, (h, w, bytes) uint8 -> (h, w, 3) RGB)
COLOR_ENCODINGS: Dict[str, Tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "rgb8": (3, lambda a: a),
    "bgr8": (3, lambda a: a[..., ::-1]),
    "rgba8": (4, lambda a: a[..., :3]),
    "bgra8": (4, lambda a: a[..., 2::-1]),
    "mono8": (1, lambda a: np.repeat(a, 3, axis=-1)),
    "8uc1": (1, lambda a: np.repeat(a, 3, axis=-1)),
    "yuv422": (2, _uyvy),  # librealsense's name for UYVY
    "uyvy": (2, _uyvy),
    "yuyv": (2, _yuyv),
    "yuv422_yuy2": (2, _yuyv),
}


class ImageHeader(NamedTuple):
    """The fields of a serialised sensor_msgs/Image, with where its pixel bytes are."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    encoding: str
    bigendian: bool
    step: int
    data_start: int
    data_len: int
    depth_units: Optional[float]  # librealsense's trailing field (header frame_id "1"), else None


def parse_image(raw: bytes) -> ImageHeader:
    """Parse a ROS1-serialised sensor_msgs/Image without copying its pixels (ValueError if it is cut short)."""
    sec, nsec, n = struct.unpack_from("<III", raw, 4)
    p = 16 + n
    frame_id = bytes(raw[16:p]).decode("utf-8", "replace")
    height, width, n = struct.unpack_from("<III", raw, p)
    encoding = bytes(raw[p + 12:p + 12 + n]).decode("utf-8", "replace")
    p += 12 + n
    bigendian, step, n = struct.unpack_from("<BII", raw, p)
    start = p + 9
    if start + n > len(raw):
        raise ValueError(f"image data needs {n} bytes but the message has {len(raw) - start}")
    units = None
    if frame_id == "1" and len(raw) >= start + n + 4:
        units = struct.unpack_from("<f", raw, start + n)[0]
    return ImageHeader(sec * 10**9 + nsec, frame_id, height, width, encoding, bool(bigendian), step, start, n, units)


def bag_index_position(path) -> int:
    """The bag header's index_pos (0 = not indexed); DataError when the file is not a rosbag v2.0."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.startswith(b"#ROSBAG V2.0\n"):
        raise DataError(f"{path}: not a rosbag v2.0 file (it starts with {head[:13]!r}); record with realsense-viewer "
                        f"or convert ROS 2 bags to ROS 1 first")
    try:
        (hlen,) = struct.unpack_from("<I", head, 13)
        p, end = 17, 17 + hlen
        while p < end:
            (flen,) = struct.unpack_from("<I", head, p)
            name, _, value = head[p + 4:p + 4 + flen].partition(b"=")
            if name == b"index_pos":
                return struct.unpack("<Q", value)[0]
            p += 4 + flen
    except struct.error:  # a header cut short: reported below like a missing field
        pass
    raise DataError(f"{path}: the rosbag header is damaged (no index_pos); the file is not a complete recording")


class _Topic(NamedTuple):
    topic: str
    device: int
    sensor: int
    stream: int


def _choose(topics: List[str], images: List[str], pattern: re.Pattern, role: str) -> Optional[_Topic]:
    """The librealsense topic of `role` with the lowest (device, sensor, stream), else the first Image topic (of
    `images`) whose name has one of the role's words."""
    found = sorted(_Topic(t, *map(int, m.groups())) for t in topics for m in [pattern.match(t)] if m)
    if found:
        return min(found, key=lambda x: (x.device, x.sensor, x.stream, x.topic))
    named = sorted(t for t in images if any(w in t.lower() for w in FALLBACK_NAMES[role]))
    return _Topic(named[0], -1, -1, -1) if named else None


@register_reader(".bag")
class RealSenseBagRecording(Recording):
    """An Intel RealSense .bag (realsense-viewer's rosbag v1 layout; see the module docstring)."""

    kind = "realsense-bag"

    def _reader(self):
        """An open `rosbags` reader, one per process (reopened after a fork, so DataLoader workers never share it)."""
        from rosbags.rosbag1 import Reader

        cached = self.__dict__.get("_open_reader")
        if cached is None or cached[0] != os.getpid():
            reader = Reader(self.path)
            reader.open()
            self.__dict__["_open_reader"] = cached = (os.getpid(), reader)
        return cached[1]

    def close(self) -> None:
        """Close the bag file if a read opened it."""
        cached = self.__dict__.pop("_open_reader", None)
        if cached is not None and cached[0] == os.getpid():
            cached[1].close()

    def _open_checked(self):
        position = bag_index_position(self.path)
        size = self.path.stat().st_size
        if position == 0:
            raise DataError(f"{self.path}: the bag is not indexed (the recorder did not close it); run `rosbag "
                            f"reindex` on it, or record again and stop the recording before closing the viewer")
        if position >= size:
            raise DataError(f"{self.path}: the recording is truncated: its index should start at byte {position} but "
                            f"the file has {size} bytes; copy it again")
        try:
            return self._reader()
        except DataError:
            raise
        except Exception as e:  # rosbags.rosbag1.ReaderError, struct.error, lz4/bz2 errors
            raise DataError(f"{self.path}: cannot be read as a rosbag ({first_line(e)}); the file is damaged or "
                            f"truncated; copy it again") from None

    def _scan(self, reader, topics: Dict[str, _Topic]) -> Dict[str, Tuple[StreamIndex, Dict[str, Any]]]:
        """One pass over the image messages of `topics` ({role: topic}): (StreamIndex, facts) per role, with the
        header stamps and bag times in message order (`StreamIndex.times` is filled by the caller)."""
        conns = {}
        for role, topic in topics.items():
            conn = [c for c in reader.connections if c.topic == topic.topic]
            if any(c.msgtype != IMAGE_TYPE for c in conn):
                raise DataError(f"{self.path}: {role} topic {topic.topic} holds {conn[0].msgtype}, not {IMAGE_TYPE}; "
                                f"this encoding is not supported (record uncompressed images)")
            conns.update({c.id: role for c in conn})
        seen: Dict[str, Dict[str, Any]] = {role: {"stamps": [], "bag_ns": [], "units": None, "first": None}
                                           for role in topics}
        for conn, t, raw in reader.messages(connections=[c for c in reader.connections if c.id in conns]):
            role = conns[conn.id]
            x, topic = seen[role], topics[role].topic
            try:
                img = parse_image(raw)
            except (ValueError, struct.error) as e:
                raise DataError(f"{self.path}: {role} message {len(x['stamps'])} on {topic} is not a readable Image "
                                f"({first_line(e)}); the file is damaged") from None
            first = x["first"]
            if first is None:
                x["first"] = first = img
                self._check_encoding(role, topic, img)
            elif (img.width, img.height, img.encoding, img.step) != (first.width, first.height, first.encoding,
                                                                      first.step):
                raise DataError(f"{self.path}: {role} frame {len(x['stamps'])} on {topic} is {img.width}x"
                                f"{img.height} {img.encoding}, frame 0 is {first.width}x{first.height} "
                                f"{first.encoding}; r3d needs one size and encoding per stream")
            if x["units"] is None and img.depth_units:
                x["units"] = float(img.depth_units)
            x["stamps"].append(img.stamp_ns)
            x["bag_ns"].append(t)
        out = {}
        for role, topic in topics.items():
            x = seen[role]
            first = x.pop("first")
            if first is None:
                raise DataError(f"{self.path}: the {role} topic {topic.topic} has no frames; the recording is empty")
            fps = None
            if topic.device >= 0:
                fps = self._first_value(reader, re.sub(r"/image/data$", "/info", topic.topic), "<I")
            x.update(topic=topic.topic, stamps=np.asarray(x["stamps"], np.int64),
                     bag_ns=np.asarray(x["bag_ns"], np.int64))
            out[role] = (StreamIndex(name=topic.topic, codec=first.encoding, width=first.width, height=first.height,
                                     times=np.zeros(0), keys=np.arange(len(x["stamps"]), dtype=np.int64),
                                     nominal_fps=float(fps) if fps else None), x)
        return out

    def _check_encoding(self, role: str, topic: str, img: ImageHeader) -> None:
        enc = img.encoding.lower()
        if role == "depth":
            ok, known = enc in DEPTH_ENCODINGS, "mono16 / 16UC1 (16-bit depth units)"
            need = img.width * 2
        else:
            ok, known = enc in COLOR_ENCODINGS, ", ".join(sorted(COLOR_ENCODINGS))
            need = img.width * COLOR_ENCODINGS[enc][0] if ok else 0
        if not ok:
            raise DataError(f"{self.path}: {role} topic {topic} has encoding '{img.encoding}', which is not "
                            f"supported; r3d reads {known}")
        if img.step < need or img.data_len < img.step * img.height:
            raise DataError(f"{self.path}: {role} image on {topic} has {img.data_len} bytes for {img.width}x"
                            f"{img.height} {img.encoding} (step {img.step}); the message is damaged")

    def _first_value(self, reader, topic: str, fmt: str) -> Optional[float]:
        """The first number (struct format `fmt`) of the first message on `topic`, or None."""
        conn = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in reader.messages(connections=conn) if conn else ():
            try:
                return struct.unpack_from(fmt, raw, 0)[0]
            except struct.error:
                return None
        return None

    def _build_index(self) -> RecordingIndex:
        reader = self._open_checked()
        try:
            topics = [c.topic for c in reader.connections]
            images = sorted({c.topic for c in reader.connections if c.msgtype == IMAGE_TYPE})
            depth_topic = _choose(topics, images, DEPTH_TOPIC, "depth")
            if depth_topic is None:
                raise DataError(f"{self.path}: the bag has no depth topic (image topics: "
                                f"{', '.join(images) or 'none'}); enable the depth stream (Stereo Module) in "
                                f"realsense-viewer before recording")
            color_topic = _choose(topics, images, COLOR_TOPIC, "color")
            chosen = {"depth": depth_topic, **({"color": color_topic} if color_topic is not None else {})}
            scanned = self._scan(reader, chosen)
            depth, dx = scanned["depth"]
            color, cx = scanned.get("color", (None, None))
            option = None
            if depth_topic.device >= 0:
                option = self._first_value(
                    reader, f"/device_{depth_topic.device}/sensor_{depth_topic.sensor}/option/Depth Units/value", "<f")
        except DataError:
            raise
        except Exception as e:  # rosbags errors while reading messages, lz4/bz2 decompression errors
            raise DataError(f"{self.path}: cannot be read ({first_line(e)}); the file is damaged or truncated; copy "
                            f"it again") from None
        streams = [s for s in ((depth, dx), (color, cx)) if s[0] is not None]
        stamped = all((x["stamps"] > 0).all() for _, x in streams)
        notes = []
        clock = "stamps" if stamped else "bag_ns"
        base = min(int(x[clock].min()) for _, x in streams)  # in integers: float seconds since 1970 lose µs
        for s, x in streams:
            order = np.argsort(x[clock], kind="stable")
            s.times, s.keys = (x[clock][order] - base) / 1e9, s.keys[order]
        if not stamped:
            notes.append("some images have no header stamp: colour and depth are paired on the bag's message times")
        if dx["units"]:  # float32 in the file: 0.001 is stored as 0.0010000000475, read it back as 0.001
            scale, source = float(f"{dx['units']:.7g}"), "depth_units field of the depth images"
        elif option:
            scale, source = float(f"{option:.7g}"), "the bag's Depth Units option"
        else:
            scale, source = None, ""
        extra = {"depth": dx, "color": cx}
        return RecordingIndex(color=color, depth=depth, depth_scale=scale, depth_scale_source=source,
                              clock="image header stamps" if stamped else "bag message times", notes=notes,
                              extra=extra)

    def _read_images(self, role: str, uniq: np.ndarray) -> List[Tuple[ImageHeader, bytes]]:
        """(header, raw message) of the frames at sorted unique stream positions, one pass over each run."""
        x = self.index.extra[role]
        ordinal = (self.index.depth if role == "depth" else self.index.color).keys[uniq]  # message positions
        bag_ns = x["bag_ns"]
        try:
            reader = self._reader()
        except Exception as e:  # rosbags.rosbag1.ReaderError, OSError: the file changed or went away since indexing
            raise DataError(f"{self.path}: cannot be opened any more ({first_line(e)}); was it moved or "
                            f"overwritten?") from None
        conn = [c for c in reader.connections if c.topic == x["topic"]]
        want = {int(o): k for k, o in enumerate(ordinal)}
        out: List[Optional[Tuple[ImageHeader, bytes]]] = [None] * len(uniq)
        todo = np.sort(ordinal)
        runs = np.split(todo, np.nonzero(np.diff(todo) > 1)[0] + 1)
        try:
            for run in runs:
                lo, hi = int(run[0]), int(run[-1])
                pos = int(np.searchsorted(bag_ns, bag_ns[lo], side="left"))  # first message at that time
                for _, _, raw in reader.messages(connections=conn, start=int(bag_ns[lo]), stop=int(bag_ns[hi]) + 1):
                    if pos in want:
                        out[want[pos]] = (parse_image(raw), raw)
                    pos += 1
                    if pos > hi:
                        break
        except Exception as e:  # rosbags.rosbag1.ReaderError, decompression errors, a cut-short message
            raise DataError(f"{self.path}: a {role} image cannot be read ({first_line(e)}); the file is "
                            f"damaged") from None
        missing = [int(uniq[k]) for k, o in enumerate(out) if o is None]
        if missing:
            raise DataError(f"{self.path}: {role} frame {missing[0]} could not be read; the file is damaged")
        return out

    def _pixels(self, img: ImageHeader, raw: bytes, bpp: int) -> np.ndarray:
        rows = np.frombuffer(raw, np.uint8, img.step * img.height, img.data_start).reshape(img.height, img.step)
        return rows[:, :img.width * bpp]

    def _read_depth(self, uniq: np.ndarray) -> np.ndarray:
        out = []
        for img, raw in self._read_images("depth", uniq):
            px = self._pixels(img, raw, 2).copy().view(">u2" if img.bigendian else "<u2")
            out.append(px.astype(np.uint16))
        return np.stack(out)

    def _read_color(self, uniq: np.ndarray) -> np.ndarray:
        out = []
        for img, raw in self._read_images("color", uniq):
            bpp, to_rgb = COLOR_ENCODINGS[img.encoding.lower()]
            px = self._pixels(img, raw, bpp).reshape(img.height, img.width, bpp)
            out.append(np.ascontiguousarray(to_rgb(px)))
        return np.stack(out)
