"""Dataset adapters: a ROOT on disk -> `DatasetInfo` (class names, action vocabulary, segments per split, depth facts).

An adapter is a builder registered in `r3d.registry.DATASETS` with the signature ``(root, cfg=None) -> DatasetInfo``;
`build_info(cfg)` calls the one named by `data.format` on `data.root`. Built in here: ``folder``, the layout of
DATA-FORMAT.md. Adapters for other layouts (EK100, NTU RGB+D, ...) convert their annotations into the same
`DatasetInfo`, so the dataset, protocols and transforms never see the difference.

Depth facts come from ``ROOT/dataset.yaml`` (depth_scale 0.001, depth_min 0.2 m, depth_max 4.5 m, depth_fps None
when absent); the config keys `data.depth_scale`, `data.depth_min`, `data.depth_max` override it when not null.

Where the dataset reads a video it goes through `DatasetInfo` (`probe_rgb`, `read_rgb`, `open_depth`, `check_depth`,
`depth_indices`), so an adapter whose layout differs subclasses `DatasetInfo` and overrides only those. RGB may be a
video file or a frame folder (`r3d.data.frames`; its rate is `fps`, or `video_fps[video_id]`). The adapters for
EK100, RULSTM, NTU RGB+D and UTKinect-Action3D live in `r3d.data.adapters` (imported at the end of this module, so
their names are always registered).
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from ..registry import DATASETS
from .annotations import Segment, int_field, iter_rows, read_classes, read_segments
from .errors import DataError, where
from .frames import FrameFolder
from .io import DepthStore, VideoInfo, open_depth, probe_video, read_rgb_frames
from .protocols import match_depth_indices

PathLike = Union[str, os.PathLike]

DEPTH_DEFAULTS: Dict[str, Optional[float]] = {"depth_scale": 0.001, "depth_min": 0.2, "depth_max": 4.5,
                                              "depth_fps": None}
DATASET_YAML_KEYS = ("name", "fps", *DEPTH_DEFAULTS)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".MP4", ".AVI", ".MOV")


@dataclass
class DatasetInfo:
    """What a dataset adapter knows about a ROOT.

    Attributes:
        root: the dataset ROOT (videos/, depth/, annotations/).
        name: dataset name (dataset.yaml `name`, else the folder name).
        verb_classes / noun_classes: class names, index = class id.
        actions: the action vocabulary, one (verb, noun) pair per action id.
        splits: segments per split name, filled on first use by `segments()` (or eagerly by the adapter).
        depth_scale: metres per integer depth unit. depth_min / depth_max: valid depth range in metres.
        depth_fps: depth frame rate when it differs from the RGB one (frames are then matched by time), else None.
        split_loader: picklable callable ``(split, require_labels) -> List[Segment]`` behind `segments()`.
        fps: frame rate of RGB frame folders (None: a frame folder is an error asking for it); `video_fps` maps a
            video_id to its own rate. Video files always use their container's rate.
        frame_numbering: how frame-folder file numbers map to frame indices ("position" or "number",
            see `r3d.data.frames`).
    """

    root: Path
    name: str
    verb_classes: List[str]
    noun_classes: List[str]
    actions: List[Tuple[int, int]]
    splits: Dict[str, List[Segment]] = field(default_factory=dict)
    depth_scale: float = 0.001
    depth_min: float = 0.2
    depth_max: float = 4.5
    depth_fps: Optional[float] = None
    split_loader: Optional[Any] = field(default=None, repr=False)
    fps: Optional[float] = None
    video_fps: Dict[str, float] = field(default_factory=dict, repr=False)
    frame_numbering: str = "position"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.actions = [(int(v), int(n)) for v, n in self.actions]
        self._action_ids = {a: i for i, a in enumerate(self.actions)}

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    def action_id(self, verb: int, noun: int) -> int:
        """Action class of a (verb, noun) pair; -1 if either is -1.

        A pair outside the vocabulary (e.g. seen in val but not in train) gets
        ``num_actions + verb * len(noun_classes) + noun``: deterministic, distinct per pair, and ≥ num_actions, so
        losses and metrics can recognise it (no head output can predict it).
        """
        if verb < 0 or noun < 0:
            return -1
        known = self._action_ids.get((int(verb), int(noun)))
        if known is not None:
            return known
        return self.num_actions + int(verb) * len(self.noun_classes) + int(noun)

    def segments(self, split: str, require_labels: bool = False) -> List[Segment]:
        """Segments of `split` (loaded on first use); with `require_labels`, every one must have verb and noun."""
        if split not in self.splits:
            if self.split_loader is None:
                raise DataError(f"dataset '{self.name}' ({self.root}) has no split '{split}' (known: "
                                f"{sorted(self.splits)}); set data.train_split / data.val_split")
            self.splits[split] = self.split_loader(split, require_labels)
        segs = self.splits[split]
        if require_labels:
            for s in segs:
                if s.verb < 0 or s.noun < 0:
                    raise DataError(f"{s.where}: segment '{s.narration_id}' has no verb/noun class but split "
                                    f"'{split}' is used for training; fill verb_class and noun_class")
        return segs

    def video_path(self, video_id: str) -> Path:
        """``ROOT/videos/<video_id>.mp4`` (or the first other video extension that exists), else the frame folder
        ``ROOT/videos/<video_id>/`` if it exists; the .mp4 path if none."""
        base = self.root / "videos"
        for ext in VIDEO_EXTENSIONS:
            p = base / f"{video_id}{ext}"
            if p.is_file():
                return p
        return base / video_id if (base / video_id).is_dir() else base / f"{video_id}.mp4"

    def frames(self, video_id: str) -> FrameFolder:
        """The `FrameFolder` at `video_path(video_id)` (scanned once per process)."""
        cache = self.__dict__.setdefault("_frame_folders", {})
        if video_id not in cache:
            cache[video_id] = FrameFolder(self.video_path(video_id), self.video_fps.get(video_id, self.fps),
                                          self.frame_numbering)
        return cache[video_id]

    def probe_rgb(self, video_id: str) -> VideoInfo:
        """(num_frames, fps, height, width) of the RGB of `video_id`: a video file or a frame folder (a successful
        probe is remembered per process, so an adapter that needs durations and the dataset share one)."""
        cache = self.__dict__.setdefault("_rgb_probes", {})
        if video_id not in cache:
            path = self.video_path(video_id)
            cache[video_id] = self.frames(video_id).probe() if path.is_dir() else probe_video(path)
        return cache[video_id]

    def read_rgb(self, video_id: str, indices: Sequence[int]) -> np.ndarray:
        """RGB frames of `video_id` at `indices` (K,) -> (K, H, W, 3) uint8 (`r3d.data.io.read_rgb_frames` contract)."""
        path = self.video_path(video_id)
        return self.frames(video_id).read(indices) if path.is_dir() else read_rgb_frames(path, indices)

    def check_depth(self, video_id: str, video: VideoInfo, store: DepthStore) -> None:
        """DataError when `store` cannot be matched to the RGB `video` (default: without `depth_fps`, depth frame i
        belongs to RGB frame i, so the counts must agree)."""
        if self.depth_fps is None and store.num_frames != video.num_frames:
            raise DataError(
                f"{store.path}: {store.num_frames} depth frames but {self.video_path(video_id)} has "
                f"{video.num_frames} RGB frames; depth frame i must belong to RGB frame i: re-export one "
                f"of them, or set depth_fps in dataset.yaml to match frames by time")

    def depth_indices(self, rgb_indices: np.ndarray, video: VideoInfo, store: DepthStore) -> np.ndarray:
        """Depth frame for each RGB frame index (T,) -> (T,) int64 (`protocols.match_depth_indices`)."""
        return match_depth_indices(rgb_indices, video.fps, self.depth_fps, store.num_frames)

    def depth_location(self, video_id: str) -> Path:
        """Where the depth of `video_id` is expected (the PNG folder; .npz/.npy/.mkv files next to it also count)."""
        return self.root / "depth" / video_id

    def open_depth(self, video_id: str) -> Optional[DepthStore]:
        """The depth store of `video_id`, or None when it has no depth (see `r3d.data.io.open_depth`)."""
        return open_depth(self.root, video_id, self.depth_scale)


# -- dataset.yaml and config ------------------------------------------------------------------------------------------
def read_dataset_yaml(path: PathLike) -> Dict[str, Any]:
    """The optional ``dataset.yaml`` of a ROOT as a dict ({} when absent).

    Keys the loader does not use (e.g. a generator's ``fps`` or ``synthetic:`` block) are kept as metadata, but one
    that looks like a misspelt known key (``depth_sacle``) is an error naming it.
    """
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{p}: not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, Mapping):
        raise DataError(f"{p}: the top level must be a mapping (depth_scale: 0.001, ...), got {type(data).__name__}")
    for key, value in data.items():
        if key not in DATASET_YAML_KEYS:
            close = difflib.get_close_matches(str(key), DATASET_YAML_KEYS, n=1, cutoff=0.8)
            if close:
                raise DataError(f"{p}: unknown key '{key}'; did you mean '{close[0]}'? (keys read by r3d: "
                                f"{', '.join(DATASET_YAML_KEYS)})")
            continue
        if key != "name" and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(f"{p}: key '{key}' must be a number, got {value!r}")
    return dict(data)


def resolve_depth(meta: Mapping[str, Any], cfg: Optional[Mapping] = None, source: str = "dataset.yaml") -> Dict:
    """depth_scale/min/max/fps: `data.*` config values when not null, else `meta` (dataset.yaml), else defaults."""
    out: Dict[str, Optional[float]] = {}
    data_cfg = cfg.get("data", {}) if cfg is not None else {}
    for key, default in DEPTH_DEFAULTS.items():
        value, origin = meta.get(key), f"{source} key '{key}'"
        if data_cfg.get(key) is not None:  # there is no data.depth_fps: that one is a property of the recording
            value, origin = data_cfg[key], f"config key 'data.{key}'"
        value = default if value is None else float(value)
        ok = value is None or (math.isfinite(value) and (value >= 0 if key == "depth_min" else value > 0))
        if not ok:
            kind = "non-negative" if key == "depth_min" else "positive"
            raise DataError(f"{origin} = {value} is not valid; it must be a {kind} number")
        out[key] = value
    if out["depth_min"] >= out["depth_max"]:
        raise DataError(f"depth_min {out['depth_min']} m must be below depth_max {out['depth_max']} m; fix "
                        f"{source} or data.depth_min / data.depth_max")
    return out


def read_actions(path: PathLike, num_verbs: int, num_nouns: int) -> List[Tuple[int, int]]:
    """The action vocabulary from ``annotations/actions.csv`` (id,verb,noun; ids 0..n-1, distinct pairs)."""
    p = Path(path)
    by_id: Dict[int, Tuple[int, int]] = {}
    lines: Dict[Tuple[int, int], int] = {}
    for line, row in iter_rows(p, ("id", "verb", "noun")):
        try:
            aid = int(row["id"])
        except ValueError:
            raise DataError(f"{where(p, line, 'id')} is '{row['id']}', not an integer; action ids are 0..n-1") from None
        pair = (int_field(p, line, row, "verb", num_verbs, True), int_field(p, line, row, "noun", num_nouns, True))
        if aid in by_id:
            raise DataError(f"{where(p, line, 'id')}: action id {aid} is used twice; ids must be unique")
        if pair in lines:
            raise DataError(f"{where(p, line)}: pair (verb {pair[0]}, noun {pair[1]}) repeats line {lines[pair]}; "
                            f"each action is one distinct pair")
        by_id[aid], lines[pair] = pair, line
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{p}: action ids must be 0..{len(by_id) - 1} without gaps; renumber them")
    if not by_id:
        raise DataError(f"{p}: no actions; add `id,verb,noun` rows or delete the file to use the pairs of train.csv")
    return [by_id[i] for i in range(len(by_id))]


def actions_from_segments(segments: List[Segment]) -> List[Tuple[int, int]]:
    """(verb, noun) pairs in order of first appearance (labelled segments only)."""
    seen: Dict[Tuple[int, int], None] = {}
    for s in segments:
        if s.verb >= 0 and s.noun >= 0:
            seen.setdefault((s.verb, s.noun), None)
    return list(seen)


# -- the folder adapter -----------------------------------------------------------------------------------------------
class FolderSplits:
    """Picklable split loader: ``annotations/<split>.csv`` -> segments (class ids checked against the class lists)."""

    def __init__(self, annotations: PathLike, num_verbs: int, num_nouns: int) -> None:
        self.annotations = Path(annotations)
        self.num_verbs, self.num_nouns = num_verbs, num_nouns

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        return read_segments(self.annotations / f"{split}.csv", self.num_verbs, self.num_nouns, require_labels)


@DATASETS.register("folder")
def folder(root: PathLike, cfg: Optional[Mapping] = None) -> DatasetInfo:
    """A ROOT laid out as DATA-FORMAT.md: videos/, depth/, annotations/ (+ optional actions.csv and dataset.yaml).

    A video may also be a folder of numbered images ``videos/<video_id>/`` (`r3d.data.frames`, "position"
    numbering); its frame rate is dataset.yaml's ``fps``.

    The action vocabulary is ``annotations/actions.csv`` when it exists, else the (verb, noun) pairs of the training
    split (`data.train_split`, default ``train``) in order of first appearance.
    """
    root = Path(root)
    ann = root / "annotations"
    if not ann.is_dir():
        raise DataError(f"{ann}: not found; data.root must be a ROOT with videos/, depth/ and annotations/ "
                        f"(DATA-FORMAT.md), or set data.generate_if_missing=true to render the synthetic benchmark")
    meta = read_dataset_yaml(root / "dataset.yaml")
    depth = resolve_depth(meta, cfg, source=str(root / "dataset.yaml"))
    verbs = read_classes(ann / "verb_classes.csv")
    nouns = read_classes(ann / "noun_classes.csv")
    loader = FolderSplits(ann, len(verbs), len(nouns))
    splits: Dict[str, List[Segment]] = {}
    if (ann / "actions.csv").is_file():
        actions = read_actions(ann / "actions.csv", len(verbs), len(nouns))
    else:
        train_split = cfg["data"]["train_split"] if cfg is not None else "train"
        splits[train_split] = loader(train_split, True)
        actions = actions_from_segments(splits[train_split])
    return DatasetInfo(root=root, name=str(meta.get("name") or root.name), verb_classes=verbs, noun_classes=nouns,
                       actions=actions, splits=splits, split_loader=loader, fps=meta.get("fps"), **depth)


def build_info(cfg: Mapping) -> DatasetInfo:
    """The `DatasetInfo` of `data.root` built by the adapter named in `data.format`."""
    info = DATASETS.build(cfg["data"]["format"], cfg["data"]["root"], cfg)
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"dataset adapter '{cfg['data']['format']}' returned {type(info).__name__}, not DatasetInfo")
    return info


from . import adapters  # noqa: E402,F401  (registers ek100, rulstm, ntu, utkinect)
