"""`DatasetInfo`: what a dataset adapter knows about a ROOT, and the one place a video's frames are read.

An adapter (`r3d.data.adapters`, registered in `r3d.registry.DATASETS`) turns a ROOT into a `DatasetInfo`: class
names, the action vocabulary, segments per split, frame rates, depth settings. The dataset and the validator read a
video only through its methods, so a layout that stores videos differently subclasses `DatasetInfo` and overrides
only these:

| method | what |
|---|---|
| `video_path`, `has_rgb` | where a video's RGB is (a file or a frame folder), and whether it exists |
| `probe_rgb`, `read_rgb`, `rgb_timing_problem` | RGB (num_frames, fps, height, width), frames, timing check |
| `depth_location`, `open_depth` | where its depth is expected, and its `DepthStore` (None: no depth) |
| `probe_depth` | the depth stream as the clock of a video without RGB |
| `check_depth`, `depth_indices` | whether depth fits the clock, and the depth frame of each clock frame |
| `timing_stream` | which stream's frames a video's frame indices count ("rgb" or "depth") |

Native sensor recordings: a file ``ROOT/recordings/<video_id>.mkv`` (Azure Kinect / Orbbec, k4arecorder) or ``.bag``
(RealSense, realsense-viewer) stands in for both ``videos/<video_id>`` and ``depth/<video_id>``. Its frames are put on
a constant-rate clock at the recording's own rate (`Recording.uniform_frames`: frame i at i / fps, so annotation times
map to frames as for any video) and its depth is paired to them by the recording's timestamps; the depth unit is the
file's own unless `data.depth_scale` or dataset.yaml sets one.

Frame timing: frame indices (what the protocols sample; frame i is at time i / fps) count the RGB frames when the
model uses RGB or the video has RGB on disk, else the depth frames (a depth-only model on a dataset without RGB). A
depth clock's rate is the store's own (`DepthStore.fps`: MKV, npz key ``fps``), else dataset.yaml's ``depth_fps``,
else its ``fps``.

Depth settings (`depth_scale`, `depth_min`, `depth_max`, `depth_fps`) hold the adapter's values until
`resolve_depth_settings` (called once by `r3d.data.formats.build_info`) applies the precedence of
`r3d.data.dataset_yaml.resolve_depth`; `depth_settings()` is what a trained model depends on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .annotations import Segment
from .dataset_yaml import DEPTH_DEFAULTS, read_dataset_yaml, resolve_depth
from .errors import DataError
from .file_checks import video_timing_problem
from .frames import FrameFolder
from .io import DepthClock, DepthStore, VideoInfo, open_depth, probe_video, read_rgb_frames
from .protocols import match_depth_indices
from .recordings import READERS, Recording, open_recording

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".MP4", ".AVI", ".MOV")  # in ROOT/videos/
MODEL_DEPTH_KEYS = ("depth_scale", "depth_min", "depth_max")


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
        fps: frame rate of RGB frame folders and of depth PNG folders of videos without RGB (None: such a folder is
            an error asking for it); `video_fps` maps a video_id to its own rate. Video files use their container's.
        frame_numbering: how frame-folder file numbers map to frame indices ("position" or "number",
            see `r3d.data.frames`).
    """

    root: Path
    name: str
    verb_classes: List[str]
    noun_classes: List[str]
    actions: List[Tuple[int, int]]
    splits: Dict[str, List[Segment]] = field(default_factory=dict)
    depth_scale: float = DEPTH_DEFAULTS["depth_scale"]
    depth_min: float = DEPTH_DEFAULTS["depth_min"]
    depth_max: float = DEPTH_DEFAULTS["depth_max"]
    depth_fps: Optional[float] = None
    split_loader: Optional[Any] = field(default=None, repr=False)
    fps: Optional[float] = None
    video_fps: Dict[str, float] = field(default_factory=dict, repr=False)
    frame_numbering: str = "position"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.actions = [(int(v), int(n)) for v, n in self.actions]
        self._action_ids = {a: i for i, a in enumerate(self.actions)}

    # -- classes and segments ----------------------------------------------------------------------------------------
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

    # -- depth settings ----------------------------------------------------------------------------------------------
    def resolve_depth_settings(self, cfg: Optional[Mapping] = None) -> None:
        """Apply the depth precedence once: `data.*` keys of `cfg` when not null > ROOT/dataset.yaml > the values
        this info holds (the adapter's, else the defaults). DataError naming the key or file for a bad value."""
        path = self.root / "dataset.yaml"
        own = {key: getattr(self, key) for key in DEPTH_DEFAULTS}
        meta = read_dataset_yaml(path)
        for key, value in resolve_depth(meta, cfg, str(path), fallback=own).items():
            setattr(self, key, value)
        # whether the unit was given (config or dataset.yaml): else a sensor recording's own unit applies
        self.depth_scale_given = meta.get("depth_scale") is not None or \
            ((cfg or {}).get("data") or {}).get("depth_scale") is not None

    def recording_path(self, video_id: str) -> Optional[Path]:
        """``ROOT/recordings/<video_id>.<suffix>`` for a registered recording suffix (.mkv, .bag), or None."""
        base = self.root / "recordings"
        return next((base / f"{video_id}{ext}" for ext in sorted(READERS) if (base / f"{video_id}{ext}").is_file()),
                    None)

    def recording(self, video_id: str) -> Optional[Recording]:
        """The native recording of `video_id`, opened once per process, or None; DataError naming the file when it
        cannot be read (truncated, no depth track, streams that never overlap, ...)."""
        path = self.recording_path(video_id)
        if path is None:
            return None
        cache = self.__dict__.setdefault("_recordings", {})
        if video_id not in cache:
            scale = self.depth_scale if getattr(self, "depth_scale_given", False) else None
            try:
                cache[video_id] = open_recording(path, depth_scale=scale)
            except DataError as e:
                cache[video_id] = e
        if isinstance(cache[video_id], DataError):
            raise cache[video_id]
        return cache[video_id]

    def depth_settings(self) -> Dict[str, float]:
        """{depth_scale, depth_min, depth_max}: how integer depth becomes the model's input (what a checkpoint must
        keep to feed other clips the same way). depth_fps is left out: it describes this dataset's recordings."""
        return {key: float(getattr(self, key)) for key in MODEL_DEPTH_KEYS}

    # -- RGB ---------------------------------------------------------------------------------------------------------
    def video_path(self, video_id: str) -> Path:
        """``ROOT/videos/<video_id>.mp4`` (or the first other video extension that exists), else the frame folder
        ``ROOT/videos/<video_id>/`` if it exists, else a native recording ``ROOT/recordings/<video_id>.mkv|.bag``;
        the .mp4 path if none."""
        rec = self.recording_path(video_id)
        if rec is not None:
            return rec
        base = self.root / "videos"
        for ext in VIDEO_EXTENSIONS:
            p = base / f"{video_id}{ext}"
            if p.is_file():
                return p
        return base / video_id if (base / video_id).is_dir() else base / f"{video_id}.mp4"

    def has_rgb(self, video_id: str) -> bool:
        """Whether the RGB of `video_id` exists on disk (a file, possibly broken, a frame folder, or a recording
        with a colour stream)."""
        if self.recording_path(video_id) is None:
            return self.video_path(video_id).exists()
        try:
            return self.recording(video_id).has_rgb
        except DataError:  # a broken recording: reading its RGB then names the problem
            return True

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
            rec, path = self.recording(video_id), self.video_path(video_id)
            if rec is not None:
                cache[video_id] = VideoInfo(len(rec.uniform_frames()), float(rec.fps), rec.height, rec.width)
            else:
                cache[video_id] = self.frames(video_id).probe() if path.is_dir() else probe_video(path)
        return cache[video_id]

    def read_rgb(self, video_id: str, indices: Sequence[int]) -> np.ndarray:
        """RGB frames of `video_id` at `indices` (K,) -> (K, H, W, 3) uint8 (`r3d.data.io.read_rgb_frames` contract)."""
        rec = self.recording(video_id)
        if rec is not None:
            return rec.read_rgb(rec.uniform_frames()[np.asarray(indices, dtype=np.int64)])
        path = self.video_path(video_id)
        return self.frames(video_id).read(indices) if path.is_dir() else read_rgb_frames(path, indices)

    def rgb_timing_problem(self, video_id: str, probe: VideoInfo) -> Optional[str]:
        """The one-line frame timing problem of a video file (`r3d.data.file_checks.video_timing_problem`), or None
        (frame folders are timed by their numbering)."""
        path = self.video_path(video_id)
        if self.recording_path(video_id) is not None:  # timed by its own per-frame timestamps
            return None
        return video_timing_problem(path, probe) if path.is_file() else None

    # -- depth -------------------------------------------------------------------------------------------------------
    def depth_location(self, video_id: str) -> Path:
        """Where the depth of `video_id` is expected (the PNG folder; .npz/.npy/.mkv files next to it also count; a
        native recording holds its own)."""
        rec = self.recording_path(video_id)
        return rec if rec is not None else self.root / "depth" / video_id

    def open_depth(self, video_id: str) -> Optional[DepthStore]:
        """The depth store of `video_id`, or None when it has no depth (see `r3d.data.io.open_depth`); a native
        recording's depth on the same constant-rate clock as its colour."""
        rec = self.recording(video_id)
        if rec is not None:
            frames = rec.uniform_frames()
            return rec.depth_store(frames, rec.fps)
        return open_depth(self.root, video_id, self.depth_scale)

    def timing_stream(self, video_id: str, modalities: Sequence[str]) -> str:
        """"rgb" when the model uses RGB or `video_id` has RGB on disk, else "depth" (see the module docstring)."""
        return "rgb" if "rgb" in modalities or self.has_rgb(video_id) else "depth"

    def probe_depth(self, video_id: str, store: Optional[DepthStore]) -> DepthClock:
        """The depth stream of a video without RGB as its clock: (num_frames, fps, height, width).

        Raises DataError naming the files when there is no depth either, or when no frame rate is known.
        """
        if store is None:
            raise DataError(f"{self.video_path(video_id)}: video not found, and no depth for video '{video_id}' "
                            f"at {self.depth_location(video_id)}[.npz|.npy|.mkv]; add the RGB video or its depth")
        fps = store.fps or self.depth_fps or self.video_fps.get(video_id, self.fps)
        if not fps:
            raise DataError(f"{store.path}: video '{video_id}' has no RGB, so its depth frames set the time, but "
                            f"their frame rate is unknown; write `fps: <rate>` in {self.root / 'dataset.yaml'}")
        if store.num_frames <= 0:
            raise DataError(f"{store.path}: the depth stream has no frames; re-export it")
        h, w = store.read([0], count=False).shape[1:]
        return DepthClock(store.num_frames, float(fps), int(h), int(w))

    def check_depth(self, video_id: str, clock: VideoInfo, store: DepthStore) -> None:
        """DataError when `store` cannot be matched to the clock (default: with an RGB clock and no `depth_fps`,
        depth frame i belongs to RGB frame i, so the counts must agree). A depth clock is the store itself."""
        if clock.stream == "rgb" and self.depth_fps is None and store.num_frames != clock.num_frames:
            raise DataError(
                f"{store.path}: {store.num_frames} depth frames but {self.video_path(video_id)} has "
                f"{clock.num_frames} RGB frames; depth frame i must belong to RGB frame i: re-export one "
                f"of them, or set depth_fps in dataset.yaml to match frames by time")

    def depth_indices(self, indices: np.ndarray, clock: VideoInfo, store: DepthStore) -> np.ndarray:
        """Depth frame of each clock frame index (T,) -> (T,) int64: the same index for a depth clock or a store
        whose frames are already those of the clock (`store.aligned`), else `match_rgb_to_depth`."""
        if clock.stream == "depth" or getattr(store, "aligned", False):  # e.g. a recording's depth, already paired
            return np.asarray(indices, dtype=np.int64).reshape(-1).copy()
        return self.match_rgb_to_depth(indices, clock, store)

    def match_rgb_to_depth(self, rgb_indices: np.ndarray, video: VideoInfo, store: DepthStore) -> np.ndarray:
        """Depth frame for each RGB frame index (T,) -> (T,) int64 (`protocols.match_depth_indices`)."""
        return match_depth_indices(rgb_indices, video.fps, self.depth_fps, store.num_frames)
