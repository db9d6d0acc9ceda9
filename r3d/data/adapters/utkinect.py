"""UTKinect-Action3D (Xia, Chen & Aggarwal, "View Invariant Human Action Recognition Using Histograms of 3D Joints",
CVPR Workshops 2012): continuous sessions of 10 actions; RGB as jpg frames, depth as OpenCV XML files.

The layout read (as the dataset's archives RGB.zip, depth.zip and its actionLabel.txt extract into ROOT)::

    ROOT/actionLabel.txt                       a session line (``s01_e01``), then ``action: start end`` lines
    ROOT/RGB/<session>/colorImg<frame>.jpg     640x480 colour frames
    ROOT/depth/<session>/depthImg<frame>.xml   320x240 depth frames, OpenCV XML
    ROOT/dataset.yaml                          optional: depth_scale/min/max (see below), name

Sources: the dataset page (cvrc.ece.utexas.edu/KinectDatasets/HOJ3D.html: 10 subjects x 2 sessions ``s01_e01`` ..
``s10_e02``, the actions walk, sitDown, standUp, pickUp, carry, throw, push, pull, waveHands, clapHands, one Kinect
at 30 fps, frames kept only while the skeleton was tracked so that frame numbers jump) could not be fetched from here;
those facts are from its text as commonly quoted. File names and the label format match R3D's released preprocessing
(github.com/olivesgatech/R3D, data/utkinect-actionlabeltogt.py, data/utkinect-xmltodepth.py) and other public loaders,
which also show that some actionLabel.txt rows hold ``NaN`` for an action that was not recorded.

Choices made where the format could not be confirmed (and what to change if your copy differs):
- Frame timing: a file's number is its capture frame at 30 fps; frame index i of a session is capture frame
  first + i (first = the session's first RGB file) and shows the last file at or before it (`r3d.data.frames`,
  numbering "number"), so times are (number - first) / 30 s and an action ``start end`` spans
  [(start - first) / 30, (end + 1 - first) / 30). Depth files are matched to the same capture numbers. (R3D's own
  preprocessing instead takes the stored frames in order, ignoring the jumps.)
- Depth units: the XML values are integers read as value x depth_scale, default 0.000125 m = 1 mm / 8. Evidence,
  not documentation: public loaders divide the values by 31800 = 3975 << 3, which fits Kinect for Windows SDK 1.x
  frames that pack millimetres << 3 with a 3-bit player index (the index then adds < 1 mm). If your files hold plain
  millimetres, set ``depth_scale: 0.001`` in ROOT/dataset.yaml (or data.depth_scale).
- XML layout: OpenCV's legacy ``cvSave`` of an IplImage, as R3D's reader expects: ``<opencv_storage><depthImg190
  type_id="opencv-image"><width>320</width><height>240</height>...<data>v v v ...</data>`` (row-major, single
  channel). An ``opencv-matrix`` node (rows/cols/data) is read too. cv2.FileStorage cannot read the legacy type, so
  the file is parsed with xml.etree.
- Rows with NaN are skipped (and logged); an unknown action name or a malformed row is an error naming the line.
- Splits: UTKinect has no single published cross-subject list; data.utkinect.train_subjects (default the odd subjects
  1, 3, 5, 7, 9) gives the ``train`` sessions, the rest are ``val`` (also ``test``).

Vocabulary (as the ntu adapter): verb = the action (in the order above), noun = 0 ("person"), action id = verb id.
With data.utkinect.undefined = true an 11th verb ``undefined`` labels the frames of a session outside every action,
emitted as segments ``<session>_undefined_<k>`` (for frame-level labels such as the long-term protocol's).
"""
from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...registry import DATASETS
from ..annotations import Segment
from ..errors import DataError, where
from ..dataset_yaml import PathLike, read_dataset_yaml
from ..info import DatasetInfo
from ..io import DepthStore
from .common import adapter_config, verb_only_vocabulary

_logger = logging.getLogger(__name__)

ACTIONS = ("walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands")
UNDEFINED = "undefined"
FPS = 30.0
DEPTH_SCALE = 0.001 / 8  # see the module docstring: millimetres << 3 (unconfirmed)
LABELS, RGB_DIR, DEPTH_DIR = "actionLabel.txt", "RGB", "depth"
_SESSION = re.compile(r"^s(\d+)_e(\d+)$")
_ACTION = re.compile(r"^(\w+)\s*:\s*(\S+)\s+(\S+)$")
_DEPTH_NAME = re.compile(r"^depthImg(\d+)\.xml$")


def read_action_labels(path: PathLike) -> Dict[str, List[Tuple[str, int, int, int]]]:
    """session -> [(action, start frame, end frame, line)] from ``actionLabel.txt``, in file order.

    Raises DataError naming the line for a line that is neither a session name nor ``action: start end``, an action
    before the first session, an unknown action, a non-integer frame, an end before its start, or an action listed
    twice in a session. ``NaN`` rows are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: not found; data.root must hold UTKinect-Action3D's actionLabel.txt, RGB/ and depth/")
    sessions: Dict[str, List[Tuple[str, int, int, int]]] = {}
    session, skipped = None, 0
    with open(p, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, 1):
            t = text.strip()
            if not t:
                continue
            if _SESSION.match(t):
                if t in sessions:
                    raise DataError(f"{where(p, line)}: session '{t}' is listed twice")
                session = t
                sessions[session] = []
                continue
            m = _ACTION.match(t)
            if not m:
                raise DataError(f"{where(p, line)}: '{t}' is neither a session (s01_e01) nor 'action: start end'")
            if session is None:
                raise DataError(f"{where(p, line)}: action before the first session line (s01_e01)")
            name, a, b = m.groups()
            if name not in ACTIONS:
                raise DataError(f"{where(p, line)}: unknown action '{name}' (known: {', '.join(ACTIONS)})")
            if a.lower() == "nan" or b.lower() == "nan":
                skipped += 1
                continue
            try:
                start, end = int(a), int(b)
            except ValueError:
                raise DataError(f"{where(p, line)}: frames '{a} {b}' are not integers (or NaN)") from None
            if end < start:
                raise DataError(f"{where(p, line)}: end frame {end} is before start frame {start}")
            if any(x[0] == name for x in sessions[session]):
                raise DataError(f"{where(p, line)}: action '{name}' appears twice in session '{session}'")
            sessions[session].append((name, start, end, line))
    if not sessions:
        raise DataError(f"{p}: no sessions; the file lists a session name (s01_e01) and its 'action: start end' lines")
    if skipped:
        _logger.info("%s: %d actions marked NaN (not recorded) were skipped", p, skipped)
    return sessions


def read_opencv_xml_depth(path: PathLike) -> np.ndarray:
    """One UTKinect depth frame: an OpenCV XML file holding one single-channel image -> (H, W) int32 depth units."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"{p}: not a readable XML file ({e}); re-extract depth.zip") from None
    node = root[0] if len(root) else None
    if node is None:
        raise DataError(f"{p}: the XML holds no image node (expected <opencv_storage><depthImgN ...>)")
    if node.find("width") is not None:  # type_id="opencv-image" (legacy IplImage)
        dims = (node.findtext("height"), node.findtext("width"))
    else:  # type_id="opencv-matrix"
        dims = (node.findtext("rows"), node.findtext("cols"))
    data = node.findtext("data")
    try:
        h, w = int(dims[0]), int(dims[1])
        values = np.fromstring(data or "", dtype=np.int64, sep=" ")
    except (TypeError, ValueError):
        raise DataError(f"{p}: <{node.tag}> lacks integer width/height (or rows/cols) and <data> values") from None
    if values.size != h * w:
        raise DataError(f"{p}: <data> has {values.size} values for a {h}x{w} image; expected one channel of "
                        f"{h * w}")
    return values.reshape(h, w).astype(np.int32)


class XmlDepthStore(DepthStore):
    """``<session>/depthImg<N>.xml`` frames; index i shows the last file numbered at or before `first` + i (the
    session's first RGB number), or the first file before that."""

    kind = "xml"

    def __init__(self, folder: PathLike, depth_scale: float, first: int, num_frames: int) -> None:
        super().__init__(folder, depth_scale)
        numbers = sorted(int(m.group(1)) for m in map(_DEPTH_NAME.match, os.listdir(self.path)) if m)
        if not numbers:
            raise DataError(f"{self.path}: no depthImg<N>.xml files; re-extract depth.zip or remove the folder")
        self.numbers = np.array(numbers, dtype=np.int64)
        self.first, self.num_frames = int(first), int(num_frames)

    def numbers_of(self, indices: np.ndarray) -> np.ndarray:
        """File numbers shown at frame indices (K,) -> (K,)."""
        pos = np.searchsorted(self.numbers, np.asarray(indices, dtype=np.int64) + self.first, side="right") - 1
        return self.numbers[np.maximum(pos, 0)]

    def _read_raw(self, uniq: np.ndarray) -> np.ndarray:
        frames = [read_opencv_xml_depth(self.path / f"depthImg{n}.xml") for n in self.numbers_of(uniq)]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(f"{self.path}: depth frames have different sizes {sorted(shapes)}")
        return np.stack(frames)


@dataclass
class UtkinectInfo(DatasetInfo):
    """`DatasetInfo` with UTKinect's layout: RGB frame folders (numbering "number") and XML depth."""

    def video_path(self, video_id: str) -> Path:
        return self.root / RGB_DIR / video_id

    def depth_location(self, video_id: str) -> Path:
        return self.root / DEPTH_DIR / video_id

    def open_depth(self, video_id: str) -> Optional[DepthStore]:
        folder = self.depth_location(video_id)
        if not folder.is_dir():
            return None
        frames = self.frames(video_id)
        return XmlDepthStore(folder, self.depth_scale, frames.first, frames.num_frames)


def session_segments(session: str, actions: Sequence[Tuple[str, int, int, int]], first: int, last: int,
                     fps: float, source: str, undefined: bool) -> List[Segment]:
    """The segments of one session whose RGB numbers run first..last, sorted by start; with `undefined`, the frames
    outside every action become segments of the verb ``undefined`` (id len(ACTIONS))."""
    subject = f"s{int(_SESSION.match(session).group(1)):02d}"
    out = []
    for name, start, end, line in actions:
        if start < first:
            raise DataError(f"{where(source, line)}: {name} starts at frame {start}, before the first RGB frame "
                            f"{first} of {session}")
        out.append(Segment(f"{session}_{name}", session, (start - first) / fps, (end + 1 - first) / fps,
                           ACTIONS.index(name), 0, subject, line, source))
    if undefined:
        gaps, cursor = [], first
        for _, start, end, _ in sorted(actions, key=lambda a: a[1]):
            if start > cursor:
                gaps.append((cursor, start - 1))
            cursor = max(cursor, end + 1)
        if cursor <= last:
            gaps.append((cursor, last))
        out += [Segment(f"{session}_{UNDEFINED}_{k}", session, (a - first) / fps, (b + 1 - first) / fps,
                        len(ACTIONS), 0, subject, 0, source) for k, (a, b) in enumerate(gaps)]
    return sorted(out, key=lambda s: s.start)


class UtkinectSplits:
    """Picklable split loader: ``train`` = sessions of the train subjects, ``val`` (``test``) = the others."""

    def __init__(self, info: UtkinectInfo, train_subjects: Sequence[int], undefined: bool) -> None:
        self.info, self.train_subjects, self.undefined = info, tuple(int(s) for s in train_subjects), undefined

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        if split not in ("train", "val", "test"):
            raise DataError(f"UTKinect has the splits 'train' and 'val' (or 'test') of data.utkinect.train_subjects, "
                            f"not '{split}'; set data.train_split / data.val_split")
        path = self.info.root / LABELS
        out: List[Segment] = []
        for session, actions in read_action_labels(path).items():
            if (int(_SESSION.match(session).group(1)) in self.train_subjects) != (split == "train"):
                continue
            try:
                frames = self.info.frames(session)
                first, last = frames.first, frames.last
            except DataError:  # no RGB folder: the dataset reports it (or drops it with data.on_bad_sample=skip)
                first = last = min((a[1] for a in actions), default=0)
            out += session_segments(session, actions, first, last, self.info.fps, str(path), self.undefined)
        if not out:
            raise DataError(f"{path}: no labelled sessions in split '{split}' (train subjects "
                            f"{list(self.train_subjects)}); check data.utkinect.train_subjects")
        return out


@DATASETS.register("utkinect")
def utkinect(root: PathLike, cfg: Optional[Mapping] = None) -> UtkinectInfo:
    """UTKinect-Action3D: actionLabel.txt frame ranges, RGB/<session>/colorImg<N>.jpg, depth/<session>/*.xml."""
    root = Path(root)
    section = adapter_config(cfg, "utkinect")
    meta = read_dataset_yaml(root / "dataset.yaml")
    undefined = bool(section["undefined"])
    verbs = list(ACTIONS) + ([UNDEFINED] if undefined else [])
    nouns, actions = verb_only_vocabulary(len(verbs))
    info = UtkinectInfo(root=root, name=str(meta.get("name") or "UTKinect-Action3D"), verb_classes=verbs,
                        noun_classes=nouns, actions=actions, fps=FPS, frame_numbering="number",
                        depth_scale=DEPTH_SCALE)
    info.split_loader = UtkinectSplits(info, section["train_subjects"], undefined)
    return info
