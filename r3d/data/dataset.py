"""`AnticipationDataset`: annotated segments -> the sample dict of docs/architecture.md (next-action protocol).

The index is built once, in the constructor: each video's clock is probed (frame count, fps), its depth store is
found, and each segment becomes a sample with its frame indices (`windows.segment_window`) and matching depth indices
— or is dropped and counted. Frames are decoded in `__getitem__` only (decord readers are opened there, so DataLoader
workers never share one). Every read goes through `DatasetInfo` (`r3d.data.info`), as the validator's do.

Modalities:
- A modality the model does not use (`model.modalities`) is never decoded and need not exist on disk: zeros,
  ``present`` False, not counted.
- Frame timing comes from the RGB video when the model uses RGB or the video has one, else from the depth stream (a
  depth-only model on a dataset without videos/; `DatasetInfo.timing_stream`).
- Depth that is genuinely absent for a video (no folder/npz/npy/mkv under ROOT/depth) is a missing modality: zeros,
  ``present["depth"]`` False, counted in ``stats["missing_depth_videos"]`` / ``stats["missing_depth_samples"]``.
- `data.missing_rate.{rgb,depth}` removes a modality from a seeded random fraction of samples. The draw is fixed per
  sample (a function of `seed` and the narration id only), so it is the same in every epoch, every worker and every
  run, and it applies to training and evaluation datasets alike (for random per-step dropping in training use
  `model.modality_dropout`). The two draws are independent: a sample can lose both.
- Depth range: the depth of up to `depth_range.DATASET_VIDEOS` videos is sampled at index time; when (nearly) no
  reading survives depth_scale / depth_min / depth_max the constructor raises a `DataError` naming the measured span
  (the validator's "depth range" line), when most are cut it logs a warning.

Bad input (`data.on_bad_sample`): a missing, empty or undecodable video, a video file whose frame count and fps
disagree with its container or its frame timestamps (`file_checks.video_timing_problem`: the message
`tools/validate_data.py` prints), a segment starting after its video's end, or depth whose frame count differs from
the RGB one (without `depth_fps`) is a `DataError` under ``error``; under ``skip`` the segment is dropped at index time
and counted in ``stats["skipped_bad"]``. Under ``skip`` the PNG headers of the depth frames a sample uses are also read
at index time (`file_checks.png_frame_problem`, no decoding), so a sample with an unreadable or 8-bit depth PNG is
dropped and counted (``stats["bad_depth_frames"]``: distinct bad frames) instead of failing in a DataLoader worker.
When no sample is left, the error says why each segment was dropped (the first bad input's message included).
Failures only found while decoding in `__getitem__` always raise a `DataError` naming the file (a DataLoader cannot
drop items). Non-finite depth values (NaN/inf in float npz/npy) are read as 0 = no reading; the frames a split uses
are scanned at index time and counted in ``stats["nonfinite_depth_values"]`` / ``["nonfinite_depth_frames"]`` /
``["nonfinite_depth_videos"]`` (logged, and in metrics.json's ``data`` section).

Labels: verb/noun from the CSV (-1 when the split has none); action = `DatasetInfo.action_id`: the vocabulary id of
the pair, and for a pair never seen in training ``num_actions + verb * num_nouns + noun`` — deterministic and
≥ num_actions, so no head output matches it and the loss ignores it.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .annotations import Segment
from .depth_range import DATASET_VIDEOS, survey_stores
from .errors import DataError
from .file_checks import png_frame_problem
from .formats import build_info
from .info import DatasetInfo
from .io import DepthStore, PngDepthStore, VideoInfo
from .protocols import BEFORE_START, PADDED, UNOBSERVABLE
from .transforms import build_transforms
from .windows import segment_window, window_notes

_logger = logging.getLogger(__name__)

MODALITIES = ("rgb", "depth")
ON_BAD_SAMPLE = ("error", "skip")


@dataclass
class IndexItem:
    """One sample of a dataset's index."""

    segment: Segment
    video: str
    frame_idx: np.ndarray                # (T,) frame indices of the video's clock (RGB, or depth without RGB)
    depth_idx: Optional[np.ndarray]      # (T,) depth frame indices, None when depth is not delivered
    present_rgb: bool
    present_depth: bool


def uniform_draws(seed: int, key: str, n: int) -> np.ndarray:
    """`n` fixed uniforms in [0, 1) for a sample, from (seed, key) only (the `data.missing_rate` draws)."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8")), 0x4D495353]).random(n)


class AnticipationDataset(Dataset):
    """Next-action samples of one split (see the module docstring for missing modalities, bad input and labels).

    Args:
        cfg: the run config (`data.*`, `model.modalities`, `seed`).
        split: annotation split name (``annotations/<split>.csv`` for the folder format).
        train: random crop and flip (`data.hflip`); labels required. False: centre crop, no flip.
        info: the dataset description; built from the config (`data.format`, `data.root`) when None.
    Attributes:
        stats: counts (segments, samples, skipped_before_start, skipped_unobservable, padded, skipped_bad,
            bad_depth_frames, missing_depth_videos, missing_depth_samples, dropped_rgb, dropped_depth, missing_rgb,
            missing_depth, nonfinite_depth_values, nonfinite_depth_frames, nonfinite_depth_videos).
    """

    protocol = "next_action"  # the data.protocol this class samples (a subclass may implement another one)

    def __init__(self, cfg: Mapping, split: str, train: bool, info: Optional[DatasetInfo] = None) -> None:
        data = cfg["data"]
        if data["protocol"] != self.protocol:
            raise DataError(f"config key 'data.protocol' is '{data['protocol']}', but {type(self).__name__} implements "
                            f"{self.protocol} only; set data.protocol={self.protocol}")
        if data["on_bad_sample"] not in ON_BAD_SAMPLE:
            raise DataError(f"config key 'data.on_bad_sample' must be one of {ON_BAD_SAMPLE}, got "
                            f"'{data['on_bad_sample']}'")
        unknown = [m for m in cfg["model"]["modalities"] if m not in MODALITIES]
        if unknown:
            raise DataError(f"config key 'model.modalities' has {unknown}; this dataset provides {list(MODALITIES)}")
        self.info = info if info is not None else build_info(cfg)
        self.split, self.train = split, train
        self.seed = int(cfg["seed"])
        self.epoch = 0
        self.num_frames, self.img_size = int(data["num_frames"]), int(data["img_size"])
        self.use = {m: m in cfg["model"]["modalities"] for m in MODALITIES}
        self.modalities = [m for m in MODALITIES if self.use[m]]
        self.missing_rate = {m: float(data["missing_rate"][m]) for m in MODALITIES}
        for m, rate in self.missing_rate.items():
            if not 0.0 <= rate <= 1.0:
                raise DataError(f"config key 'data.missing_rate.{m}' is {rate}; it is a fraction in [0, 1]")
        self.on_bad_sample = data["on_bad_sample"]
        self.transform = build_transforms(data, self.info.depth_min, self.info.depth_max, train)
        self._data_cfg = data
        self._probes: Dict[str, Union[VideoInfo, DataError]] = {}
        self.depth_stores: Dict[str, Optional[DepthStore]] = {}
        self._depth_errors: Dict[str, DataError] = {}
        self._depth_checked: Dict[str, Optional[DataError]] = {}
        self._png_problems: Dict[Path, Optional[str]] = {}
        self._first_bad: Optional[str] = None
        self.stats: Dict[str, int] = {}
        self.items: List[IndexItem] = self._build_index(self.info.segments(split, require_labels=train))
        if self.use["depth"]:
            self._check_depth_range()

    # -- one video ---------------------------------------------------------------------------------------------------
    def probe(self, video_id: str) -> VideoInfo:
        """The clock of a video (once): its RGB (checked against the container and frame timestamps) when the model
        uses RGB or the video has it, else its depth stream (`DatasetInfo.timing_stream`). DataError when unusable."""
        if video_id not in self._probes:
            try:
                if self.info.timing_stream(video_id, self.modalities) == "rgb":
                    clock = self.info.probe_rgb(video_id)
                    problem = self.info.rgb_timing_problem(video_id, clock)
                    if problem:
                        raise DataError(problem)
                else:
                    clock = self.info.probe_depth(video_id, self._open_depth(video_id))
                self._probes[video_id] = clock
            except DataError as e:
                self._probes[video_id] = e
        probe = self._probes[video_id]
        if isinstance(probe, DataError):
            raise probe
        return probe

    def _open_depth(self, video_id: str) -> Optional[DepthStore]:
        """`DatasetInfo.open_depth`, once per video (its DataError too)."""
        if video_id in self._depth_errors:
            raise self._depth_errors[video_id]
        if video_id not in self.depth_stores:
            try:
                self.depth_stores[video_id] = self.info.open_depth(video_id)
            except DataError as e:
                self._depth_errors[video_id] = e
                raise
        return self.depth_stores[video_id]

    def depth_store(self, video_id: str, clock: VideoInfo) -> Optional[DepthStore]:
        """The video's depth store (None when absent: counted and logged once); DataError when it exists but does not
        fit the clock (`DatasetInfo.check_depth`)."""
        store = self._open_depth(video_id)
        if video_id not in self._depth_checked:
            try:
                if store is not None:
                    self.info.check_depth(video_id, clock, store)
                self._depth_checked[video_id] = None
            except DataError as e:
                self._depth_checked[video_id] = e
            if store is None:
                self.stats["missing_depth_videos"] += 1
                _logger.info("no depth for video '%s' (looked for %s[.npz|.npy|.mkv]): depth marked missing",
                             video_id, self.info.depth_location(video_id))
        if self._depth_checked[video_id] is not None:
            raise self._depth_checked[video_id]
        return store

    # -- index -------------------------------------------------------------------------------------------------------
    def _count_presence(self, store: Optional[DepthStore], dropped: Sequence[str], present: Mapping[str, bool]) -> None:
        """Count one indexed sample's missing depth files, seeded drops and absent modalities into `stats`."""
        if self.use["depth"] and store is None:
            self.stats["missing_depth_samples"] += 1
        for m in dropped:
            self.stats[f"dropped_{m}"] += 1
        for m in MODALITIES:
            if self.use[m] and not present[m]:
                self.stats[f"missing_{m}"] += 1

    def _bad(self, seg: Segment, err: DataError) -> None:
        if self.on_bad_sample == "error":
            raise DataError(f"{err} [segment '{seg.narration_id}' at {seg.where}; data.on_bad_sample=skip drops "
                            f"such segments]") from None
        self.stats["skipped_bad"] += 1
        self._first_bad = self._first_bad or str(err)
        if self.stats["skipped_bad"] <= 5:
            _logger.warning("skipping segment '%s' (%s): %s", seg.narration_id, seg.where, err)

    def _draw_missing(self, key: str, present: Dict[str, bool]) -> List[str]:
        """Apply the seeded `data.missing_rate` draws of sample `key` to `present`; the modalities dropped."""
        dropped = []
        if self.missing_rate["rgb"] > 0 or self.missing_rate["depth"] > 0:
            for m, u in zip(MODALITIES, uniform_draws(self.seed, key, 2)):
                if present[m] and u < self.missing_rate[m]:
                    present[m] = False
                    dropped.append(m)
        return dropped

    def _png_problem(self, store: DepthStore, depth_idx: np.ndarray) -> Optional[str]:
        """The first header problem among the PNG depth frames at `depth_idx` (each file read once), or None."""
        if not isinstance(store, PngDepthStore):
            return None
        for i in np.unique(depth_idx):
            path = store.frame_path(int(i))
            if path not in self._png_problems:
                self._png_problems[path] = png_frame_problem(path)[0]
                self.stats["bad_depth_frames"] += self._png_problems[path] is not None
            if self._png_problems[path] is not None:
                return self._png_problems[path]
        return None

    def _count_nonfinite(self, items: List[IndexItem]) -> None:
        """Count the NaN/inf depth values in the frames the samples use (float npz/npy stores) and log them."""
        used: Dict[str, List[np.ndarray]] = {}
        for it in items:
            if it.present_depth:
                used.setdefault(it.segment.video_id, []).append(it.depth_idx)
        first = None
        for vid, idx in used.items():
            values, frames = self.depth_stores[vid].count_nonfinite(np.concatenate(idx))
            if values:
                self.stats["nonfinite_depth_values"] += values
                self.stats["nonfinite_depth_frames"] += frames
                self.stats["nonfinite_depth_videos"] += 1
                first = first or self.depth_stores[vid].path
        if first is not None:
            _logger.warning("split '%s': %d non-finite depth values (NaN/inf) in %d frames of %d video(s) (e.g. %s) "
                            "are read as 0 = no reading; write 0 for holes if that is not what they mean", self.split,
                            self.stats["nonfinite_depth_values"], self.stats["nonfinite_depth_frames"],
                            self.stats["nonfinite_depth_videos"], first)

    def _build_index(self, segments: List[Segment]) -> List[IndexItem]:
        for key in ("segments", "samples", "skipped_before_start", "skipped_unobservable", "padded", "skipped_bad",
                    "bad_depth_frames", "missing_depth_videos", "missing_depth_samples", "dropped_rgb",
                    "dropped_depth", "missing_rgb", "missing_depth", "nonfinite_depth_values",
                    "nonfinite_depth_frames", "nonfinite_depth_videos"):
            self.stats[key] = 0
        self.stats["segments"] = len(segments)
        items: List[IndexItem] = []
        for seg in segments:
            try:
                clock = self.probe(seg.video_id)
                win = segment_window(seg, clock, self._data_cfg, self._clock_path(seg.video_id, clock))
                store = self.depth_store(seg.video_id, clock) if self.use["depth"] else None
            except DataError as e:
                self._bad(seg, e)
                continue
            if win.status == UNOBSERVABLE:
                self.stats["skipped_unobservable"] += 1
                continue
            if win.status == BEFORE_START:
                self.stats["skipped_before_start"] += 1
                continue
            present = {"rgb": self.use["rgb"], "depth": store is not None}
            dropped = self._draw_missing(seg.narration_id, present)
            depth_idx = None
            if present["depth"]:
                depth_idx = self.info.depth_indices(win.indices, clock, store)
                problem = self._png_problem(store, depth_idx) if self.on_bad_sample == "skip" else None
                if problem is not None:  # an unreadable or 8-bit frame: drop the sample now, not in a worker
                    self._bad(seg, DataError(problem))
                    continue
            if win.status == PADDED:
                self.stats["padded"] += 1
            self._count_presence(store, dropped, present)
            items.append(IndexItem(seg, str(self._clock_path(seg.video_id, clock)), win.indices, depth_idx,
                                   present["rgb"], present["depth"]))
        self.stats["samples"] = len(items)
        self._count_nonfinite(items)
        _logger.info("%s split '%s': %s", self.info.name, self.split, self.stats)
        if not items:
            raise self._no_samples()
        return items

    def _clock_path(self, video_id: str, clock: VideoInfo) -> Path:
        """The file (or folder) whose frames `clock` counts: the RGB video, or the depth store."""
        if clock.stream == "depth" and self.depth_stores.get(video_id) is not None:
            return self.depth_stores[video_id].path
        return self.info.video_path(video_id)

    def _no_samples(self) -> DataError:
        """The DataError of an empty index, saying why the split's segments were dropped."""
        n, bad = self.stats["segments"], self.stats["skipped_bad"]
        if bad == n:
            return DataError(f"split '{self.split}' of {self.info.root} has no usable samples: all {n} segments "
                             f"skipped as bad input, first reason: {self._first_bad}")
        reasons = [f"{bad} skipped as bad input (data.on_bad_sample=skip), first reason: {self._first_bad}"] if bad \
            else []
        reasons += window_notes({UNOBSERVABLE: self.stats["skipped_unobservable"],
                                 BEFORE_START: self.stats["skipped_before_start"]}, self._data_cfg)
        return DataError(f"split '{self.split}' of {self.info.root} has no usable samples: of {n} segments, "
                         f"{'; '.join(reasons)}")

    def _check_depth_range(self) -> None:
        """Sample the depth the model will see (`depth_range.survey_stores`): DataError when (nearly) no reading
        survives depth_scale / depth_min / depth_max, a warning when most are cut."""
        used = {it.segment.video_id for it in self.items if it.present_depth}
        stores = {v: s for v, s in self.depth_stores.items() if v in used and isinstance(s, DepthStore)}
        if not stores:
            return
        survey = survey_stores(stores, self.info.depth_min, self.info.depth_max, DATASET_VIDEOS)
        found = survey.problem(self.info.depth_scale)
        if found is None:
            return
        level, message = found
        if level == "error":
            raise DataError(f"split '{self.split}' of {self.info.root}: {message}")
        _logger.warning("split '%s': %s", self.split, message)

    # -- samples -----------------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Training crops and flips are a function of (seed, epoch, index); call once per epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """The sample dict of docs/architecture.md (rgb (T,3,S,S), depth (T,1,S,S), present, labels, ids)."""
        item = self.items[index]
        seg = item.segment
        rng = np.random.default_rng([self.seed, 1, self.epoch, index]) if self.train else None
        results: Dict[str, Any] = {"rgb": None, "depth": None, "rng": rng}
        try:
            if item.present_rgb:
                results["rgb"] = self.info.read_rgb(seg.video_id, item.frame_idx)
            if item.present_depth:
                results["depth"] = self.depth_stores[seg.video_id].read(item.depth_idx)
        except DataError as e:
            raise DataError(f"{e} [sample {index}: segment '{seg.narration_id}' at {seg.where}]") from None
        results = self.transform(results)
        t, s = len(item.frame_idx), self.img_size
        rgb = results["rgb"] if results["rgb"] is not None else torch.zeros(t, 3, s, s)
        depth = results["depth"] if results["depth"] is not None else torch.zeros(t, 1, s, s)
        return {"rgb": rgb, "depth": depth, **self.sample_fields(index)}

    def sample_fields(self, index: int) -> Dict[str, Any]:
        """Everything of sample `index` but its frames: present, labels, index, frame_idx, ids (shared with
        `r3d.data.features.FeatureDataset`)."""
        item = self.items[index]
        seg = item.segment
        return {
            "present": {"rgb": torch.tensor(item.present_rgb), "depth": torch.tensor(item.present_depth)},
            "verb": torch.tensor(seg.verb, dtype=torch.int64),
            "noun": torch.tensor(seg.noun, dtype=torch.int64),
            "action": torch.tensor(self.info.action_id(seg.verb, seg.noun), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
            "frame_idx": torch.from_numpy(item.frame_idx.astype(np.int64)),
            "narration_id": seg.narration_id,
            "video_id": seg.video_id,
        }


def build_datasets(cfg: Mapping, train: bool = True, dataset_cls: Optional[Type[AnticipationDataset]] = None
                   ) -> Tuple[Optional[AnticipationDataset], AnticipationDataset, DatasetInfo]:
    """(train dataset or None when `train` is False, validation dataset, dataset info) for `data.train_split` /
    `data.val_split` of `data.root`, read by the adapter `data.format`. `dataset_cls`: the dataset class
    (`AnticipationDataset` by default; `LongTermDataset`, `FeatureDataset`, or a plugin's subclass)."""
    cls = dataset_cls or AnticipationDataset
    info = build_info(cfg)
    train_ds = cls(cfg, cfg["data"]["train_split"], True, info) if train else None
    val_ds = cls(cfg, cfg["data"]["val_split"], False, info)
    return train_ds, val_ds, info


def num_classes(info: DatasetInfo) -> Dict[str, int]:
    """Head sizes: {"verb": V, "noun": N, "action": A (the vocabulary size; unseen pairs are ≥ A)}."""
    return {"verb": len(info.verb_classes), "noun": len(info.noun_classes), "action": len(info.actions)}
