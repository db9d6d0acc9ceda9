"""NTU RGB+D (60 classes) and NTU RGB+D 120: sample names, the standard splits, RGB video and masked depth.

Documents followed:
- Shahroudy, Liu, Ng & Wang, "NTU RGB+D: A Large Scale Dataset for 3D Human Activity Analysis", CVPR 2016, Sec. 3.2
  (benchmarks): cross-subject trains on the 20 subjects `NTU60_XSUB_TRAIN_SUBJECTS` and tests on the other 20;
  cross-view trains on cameras 2 and 3 and tests on camera 1.
- Liu, Shahroudy, Perez, Wang, Duan & Kot, "NTU RGB+D 120: A Large-Scale Benchmark for 3D Human Activity
  Understanding", TPAMI 2019, Sec. 4 (benchmarks): cross-subject trains on the 53 subjects
  `NTU120_XSUB_TRAIN_SUBJECTS` (of 106); cross-setup trains on the even setup ids and tests on the odd ones (of 32).
- The dataset README (github.com/shahroudy/NTURGB-D): names ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer,
  replication, action class), NTU RGB+D = setups S001-S017 and actions A1-A60, NTU RGB+D 120 = S001-S032 and
  A1-A120, RGB 1920x1080 and depth 512x424 from Kinect v2, the action names `ACTION_NAMES`; its MATLAB samples read
  depth maps in millimetres, one ``Depth-%08d.png`` per frame numbered from 1 (masked: ``MDepth-%08d.png``).

Layout read (the archives extracted into ROOT)::

    ROOT/nturgb+d_rgb/<name>_rgb.avi                     RGB video, one per sample (what defines the samples)
    ROOT/nturgb+d_depth_masked/<name>/MDepth-00000001.png 16-bit masked depth in mm, numbered from 1
    ROOT/depth/<name>...                                  or any r3d depth store; none = depth missing for it

A name outside the chosen version (data.ntu.version = 60: a setup > 17 or an action > 60) is ignored, so an NTU-120
folder also serves NTU-60. Splits: ``train`` and ``val`` (``test`` = ``val``) by data.ntu.protocol.

Vocabulary (a choice, shared with the utkinect adapter): an NTU clip has one action class and no object label, so
verb = the action class (A001 -> verb 0, names as in the README), noun = 0 ("person") for every clip, and the action
vocabulary is every (verb, 0) pair in class order: action id = verb id = label - 1. The noun head is trivial and the
action head repeats the verb head.

Segments: one per RGB video; narration_id = video_id = the name; participant_id = ``P%03d``. A clip is trimmed to
its action, so by default (data.ntu.observed = 0) the segment is the whole clip [0, D], D = RGB frames / fps (what the
long-term protocol reads). The next-action protocol needs an observable past before the segment start: with
data.ntu.observed = rho in (0, 1) the segment starts at rho * D, so the model sees the first rho of the clip (less
data.tau_a) and predicts the clip's action: early action prediction, the usual anticipation task on trimmed clips.
Durations come from probing each RGB video once (shared with the dataset's own probe).

RGB and depth run at ~30 fps but a sample's frame counts differ, so depth is matched by normalised time: RGB frame i
of N_rgb starts at fraction i / N_rgb of the clip and gets depth frame floor(i * N_depth / N_rgb), the last depth frame
starting at or before that fraction. The folder format's equal-count check does not apply.
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, NamedTuple, Optional

import numpy as np

from ...registry import DATASETS
from ..annotations import Segment
from ..errors import DataError
from ..dataset_yaml import PathLike, read_dataset_yaml
from ..info import DatasetInfo
from ..io import DepthStore, PngDepthStore, VideoInfo, open_depth
from .common import adapter_config, verb_only_vocabulary

_logger = logging.getLogger(__name__)

RGB_DIR, DEPTH_DIR, RGB_SUFFIX = "nturgb+d_rgb", "nturgb+d_depth_masked", "_rgb.avi"
NTU60_XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103)
XVIEW_TRAIN_CAMERAS = (2, 3)
VERSIONS = {60: {"setups": 17, "actions": 60}, 120: {"setups": 32, "actions": 120}}
PROTOCOLS = ("xsub", "xview", "xset")
_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

ACTION_NAMES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw", "sitting down",
    "standing up (from sitting position)", "clapping", "reading", "writing", "tear up paper", "wear jacket",
    "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)", "rub two hands together",
    "nod head/bow", "shake head", "wipe face", "salute", "put the palms together", "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person", "kicking other person",
    "pushing other person", "pat on back of other person", "point finger at the other person",
    "hugging other person", "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # NTU RGB+D 120 only:
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down", "make ok sign",
    "make victory sign", "staple book", "counting money", "cutting nails", "cutting paper (using scissors)",
    "snapping fingers", "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper",
    "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects", "shake fist",
    "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff", "shoot at other person with a gun",
    "step on foot", "high-five", "cheers and drink", "carry something with other person",
    "take a photo of other person", "follow other person", "whisper in other person's ear",
    "exchange things with other person", "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)


class NtuName(NamedTuple):
    """The fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (1-based, as written)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int


def parse_name(name: str) -> Optional[NtuName]:
    """``"S001C002P003R002A013"`` -> NtuName(1, 2, 3, 2, 13); None when `name` is not of that form."""
    m = _NAME.match(name)
    return NtuName(*map(int, m.groups())) if m else None


def train_split_of(sample: NtuName, protocol: str, version: int = 60) -> bool:
    """True when `sample` is in the training set of `protocol` (xsub: the training subjects of `version`; xview:
    cameras 2 and 3; xset: even setup ids)."""
    if protocol == "xsub":
        return sample.subject in (NTU60_XSUB_TRAIN_SUBJECTS if version == 60 else NTU120_XSUB_TRAIN_SUBJECTS)
    if protocol == "xview":
        return sample.camera in XVIEW_TRAIN_CAMERAS
    if protocol == "xset":
        return sample.setup % 2 == 0
    raise ValueError(f"unknown NTU protocol '{protocol}' (known: {PROTOCOLS})")


def list_samples(rgb_dir: Path, version: int) -> List[NtuName]:
    """Sample names of ``<rgb_dir>/*_rgb.avi`` that belong to NTU `version`, sorted; DataError for a file named like an
    NTU sample but with an impossible camera (not 1-3) or replication (not 1-2)."""
    limits = VERSIONS[version]
    out, other = [], 0
    for fname in sorted(os.listdir(rgb_dir)):
        if not fname.endswith(RGB_SUFFIX):
            continue
        sample = parse_name(fname[:-len(RGB_SUFFIX)])
        if sample is None:
            other += 1
            continue
        if not (1 <= sample.camera <= 3 and 1 <= sample.replication <= 2 and sample.setup >= 1 and
                sample.action >= 1 and sample.subject >= 1):
            raise DataError(f"{rgb_dir / fname}: not a valid NTU sample name (camera 1-3, replication 1-2, ids from "
                            f"1); rename or remove it")
        if sample.setup > limits["setups"] or sample.action > limits["actions"]:
            other += 1
            continue
        out.append(sample)
    if other:
        _logger.info("%s: %d files are not NTU RGB+D %d samples and were ignored", rgb_dir, other, version)
    return out


def sample_name(s: NtuName) -> str:
    return f"S{s.setup:03d}C{s.camera:03d}P{s.subject:03d}R{s.replication:03d}A{s.action:03d}"


@dataclass
class NtuInfo(DatasetInfo):
    """`DatasetInfo` with NTU's layout and depth matched by normalised time (see the module docstring)."""

    def video_path(self, video_id: str) -> Path:
        return self.root / RGB_DIR / f"{video_id}{RGB_SUFFIX}"

    def depth_location(self, video_id: str) -> Path:
        return self.root / DEPTH_DIR / video_id

    def open_depth(self, video_id: str) -> Optional[DepthStore]:
        """``nturgb+d_depth_masked/<name>/MDepth-%08d.png`` (from 1), else any store under ROOT/depth, else None."""
        folder = self.depth_location(video_id)
        if folder.is_dir():
            return PngDepthStore(folder, self.depth_scale, prefix="MDepth-", digits=8, start=1)
        return open_depth(self.root, video_id, self.depth_scale)

    def check_depth(self, video_id: str, video: VideoInfo, store: DepthStore) -> None:
        """Nothing to check: any depth frame count is matched to the RGB one by normalised time."""

    def match_rgb_to_depth(self, rgb_indices: np.ndarray, video: VideoInfo, store: DepthStore) -> np.ndarray:
        """floor(i * N_depth / N_rgb) for each RGB frame i: (T,) -> (T,) int64."""
        rgb = np.asarray(rgb_indices, dtype=np.int64).reshape(-1)
        return np.minimum(rgb * store.num_frames // video.num_frames, store.num_frames - 1)


class NtuSplits:
    """Picklable split loader: ``train`` / ``val`` (``test``) samples of one protocol -> segments."""

    def __init__(self, info: NtuInfo, version: int, protocol: str, observed: float) -> None:
        self.info, self.version, self.protocol, self.observed = info, version, protocol, observed

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        if split not in ("train", "val", "test"):
            raise DataError(f"NTU has the splits 'train' and 'val' (or 'test') of data.ntu.protocol, not '{split}'; "
                            f"set data.train_split / data.val_split")
        rgb_dir = self.info.root / RGB_DIR
        out = []
        for s in list_samples(rgb_dir, self.version):
            if train_split_of(s, self.protocol, self.version) != (split == "train"):
                continue
            name = sample_name(s)
            try:
                video = self.info.probe_rgb(name)
                duration = video.num_frames / video.fps
            except DataError:  # the dataset reports (or, with data.on_bad_sample=skip, drops) this video itself
                duration = 0.0
            out.append(Segment(name, name, self.observed * duration, duration, s.action - 1, 0, f"P{s.subject:03d}",
                               0, str(self.info.video_path(name))))
        if not out:
            raise DataError(f"{rgb_dir}: no NTU RGB+D {self.version} samples in split '{split}' of protocol "
                            f"'{self.protocol}'; check data.root and data.ntu.version")
        return out


@DATASETS.register("ntu")
def ntu(root: PathLike, cfg: Optional[Mapping] = None) -> NtuInfo:
    """NTU RGB+D 60/120: SsssCcccPpppRrrrAaaa names, xsub/xview/xset splits, avi RGB + masked depth PNGs."""
    root = Path(root)
    section = adapter_config(cfg, "ntu")
    version, protocol, observed = int(section["version"]), str(section["protocol"]), float(section["observed"])
    if version not in VERSIONS:
        raise DataError(f"config key 'data.ntu.version' is {version}; use 60 (NTU RGB+D) or 120 (NTU RGB+D 120)")
    if protocol not in PROTOCOLS or (protocol == "xset" and version != 120):
        raise DataError(f"config key 'data.ntu.protocol' is '{protocol}'; use xsub or xview (and xset for "
                        f"data.ntu.version=120)")
    if not (math.isfinite(observed) and 0.0 <= observed < 1.0):
        raise DataError(f"config key 'data.ntu.observed' is {observed}; it is a fraction of the clip in [0, 1)")
    if not (root / RGB_DIR).is_dir():
        raise DataError(f"{root / RGB_DIR}: not found; data.root must hold nturgb+d_rgb/ (and "
                        f"nturgb+d_depth_masked/) as extracted from the NTU RGB+D archives")
    meta = read_dataset_yaml(root / "dataset.yaml")
    nouns, actions = verb_only_vocabulary(version)
    info = NtuInfo(root=root, name=str(meta.get("name") or f"NTU RGB+D {version} ({protocol})"),
                   verb_classes=list(ACTION_NAMES[:version]), noun_classes=nouns, actions=actions)
    info.split_loader = NtuSplits(info, version, protocol, observed)
    return info
