"""`LongTermDataset`: the long-term anticipation protocol (FUTR style; what R3D reports on NTU RGB+D / UTKinect).

Follows FUTR (Gong, Lee, Kim, Cho, "Future Transformer for Long-term Action Anticipation", CVPR 2022; github
gongda0e/FUTR, ``data/basedataset.py``) and R3D's copy of it (github olivesgatech/R3D,
``data/basedataset_nturgbd.py``): every video of a split is one sample per observed fraction α; the sample observes
the first α of the video and its targets are the frame labels of what follows.

Frame labels (per RGB frame of the video, at its own frame rate) come from the segments of the split
(`frame_labels`): a segment covers frames [floor(start·fps), floor(stop·fps)) (frame index =
floor(t·fps); at least its first frame), a later row overwrites an earlier one where they overlap, and frames
outside every segment get the background class ("undefined" in UTKinect, the cues of the synthetic benchmark).
Class ids: 0..A−1 the action vocabulary (`DatasetInfo.actions`), A = background, A+1 = NONE (the end-of-sequence
class of the query decoder, never a frame label). A segment whose (verb, noun) pair is not in the vocabulary (seen
only outside the training split) cannot be predicted: its frames get `IGNORE` (-100) and count in neither loss nor
MoC (``stats["unseen_pair_frames"]``).

One sample: the `AnticipationDataset` sample (`rgb`, `depth`, `present`, `frame_idx`, `index`, `video_id`; its
verb/noun/action/narration_id are removed) over the T observed frames (`protocols.long_term_window`: only frames
< int(α·L)), plus:

- `obs_labels` int64 (T,): frame label of each observed sample (the segmentation target).
- `last_label` int64 (): label of the last observed frame int(α·L)−1 (R3D's "t+n" label of the change weight).
- `future_classes` int64 (Q,): FUTR's transcript of the future span, one class per run of equal labels, then NONE,
  then IGNORE padding (cut at Q = `model.long_term.queries`).
- `future_durations` float32 (Q,): each run's share of the span (FUTR ``seq2transcript``), 0 elsewhere;
  `future_duration_mask` bool (Q,): True on the run slots (NONE and padding excluded, as FUTR).
- `future_labels` int64 (F,): labels of the future span [int(α·L), min(L, int((α+h)·L))), h = `data.long_term.horizon`.
- `beta_lengths` int64 (nβ,): the leading frames of the span each evaluated β covers, min(L, int((α+β)·L)) − int(α·L)
  (the frames `r3d.metrics.anticipation.moc_at_betas` evaluates).
- `alpha` float64 (), `alpha_index` int64 () (position in the dataset's α list), `video_length` L and
  `observed_length` int(α·L), int64 ().

Samples are ordered α-major (all videos at the first α, then the next α, ...), so that consecutive samples, e.g. an
evaluation batch, have similar lengths. Samples have different T and F: `collate_long_term` pads a batch (frames by
repeating the last observed frame, labels with IGNORE) and adds `token_mask` (B, T) bool, True on real frames, and
`future_length` (B,). The padded frames still go through the backbones and the fuser (whose BatchNorm statistics see
them); the head masks them out (`r3d.models.heads.futr`).

Deviation from FUTR, stated: FUTR computes the transcript on the future subsampled at its feature rate; here it is
computed on every frame of the future span (the durations are the exact shares).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import default_collate

from .annotations import Segment
from .dataset import AnticipationDataset, IndexItem, build_datasets
from .errors import DataError
from .info import DatasetInfo
from .protocols import UNOBSERVABLE, frame_at, future_span, long_term_window, observed_length
from .windows import check_segment_start

_logger = logging.getLogger(__name__)

IGNORE = -100  # label of frames / query slots that count in no loss and no metric


def frame_labels(segments: Sequence[Segment], num_frames: int, fps: float, label_of: Callable[[Segment], int],
                 background: int) -> np.ndarray:
    """Per-frame class labels (L,) int64 of one video from its segments (see the module docstring for the rules)."""
    labels = np.full(int(num_frames), int(background), dtype=np.int64)
    for seg in segments:
        a = max(0, frame_at(seg.start, fps))
        b = min(int(num_frames), frame_at(seg.stop, fps))
        if a >= num_frames:
            continue
        labels[a:max(b, a + 1)] = label_of(seg)
    return labels


def transcript(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """FUTR's ``seq2transcript``: (F,) frame labels -> (classes (K,) int64, durations (K,) float64).

    One entry per run of equal labels, its duration the run's share of the F frames (they sum to 1). Empty input gives
    two empty arrays.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1])
    lengths = np.diff(np.concatenate([starts, [labels.size]]))
    return labels[starts], lengths / labels.size


def query_targets(classes: np.ndarray, durations: np.ndarray, queries: int, none_id: int
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoder targets of one sample, padded as FUTR's dataset does.

    classes + [NONE] padded with IGNORE to Q slots, durations padded with 0 and a mask that is True on the segment
    slots only; with more than Q−1 segments the first Q are kept and there is no NONE slot.

    Returns: (target (Q,) int64, durations (Q,) float32, mask (Q,) bool).
    """
    k = min(len(classes), queries)
    target = np.full(queries, IGNORE, dtype=np.int64)
    target[:k] = classes[:k]
    if k < queries:
        target[k] = none_id
    dur = np.zeros(queries, dtype=np.float32)
    dur[:k] = durations[:k]
    mask = np.zeros(queries, dtype=bool)
    mask[:k] = True
    return target, dur, mask


@dataclass
class _Target:
    """What one long-term sample predicts (the frame labels are shared by the samples of a video)."""

    labels: np.ndarray      # (L,) int64 frame labels of the whole video
    alpha: float
    alpha_index: int
    observed: int           # int(α·L)
    start: int              # future span [start, end)
    end: int
    beta_lengths: np.ndarray  # (nβ,) int64


class LongTermDataset(AnticipationDataset):
    """Long-term samples of one split: one per (video, α) (see the module docstring for the sample).

    Shares the video probing, depth checks, missing-modality handling, decoding and transforms of
    `AnticipationDataset`; replaces its index and adds the long-term targets to its sample.

    Args:
        cfg: the run config (`data.*` incl. `data.long_term.*`, `model.modalities`, `model.long_term.queries`).
        split: annotation split name; it needs labels (the targets are frame labels).
        train: random crop/flip and `data.long_term.train_alphas`; else centre crop and `test_alphas`.
        info: the dataset description (built from the config when None).
        alphas: the observed fractions (default: train_alphas or test_alphas, by `train`).
    """

    protocol = "long_term"

    def __init__(self, cfg: Mapping, split: str, train: bool, info: Optional[DatasetInfo] = None,
                 alphas: Optional[Sequence[float]] = None) -> None:
        lt = cfg["data"]["long_term"]
        self.alphas = [float(a) for a in (alphas if alphas is not None else
                                          lt["train_alphas" if train else "test_alphas"])]
        self.betas = [float(b) for b in lt["betas"]]
        self.horizon = float(lt["horizon"])
        self.sample_fps = None if lt["sample_fps"] is None else float(lt["sample_fps"])
        self.max_frames = int(lt["max_frames"])
        self.queries = int(cfg["model"]["long_term"]["queries"])
        key = "train_alphas" if train else "test_alphas"
        if not self.alphas or any(not 0.0 < a < 1.0 for a in self.alphas):
            raise DataError(f"config key 'data.long_term.{key}' is {self.alphas}; give observed fractions in (0, 1)")
        if not 0.0 < self.horizon <= 1.0:
            raise DataError(f"config key 'data.long_term.horizon' is {self.horizon}; it is a fraction in (0, 1]")
        bad = [b for b in self.betas if not 0.0 < b <= self.horizon]
        if bad:
            raise DataError(f"config key 'data.long_term.betas' has {bad}, outside (0, horizon = {self.horizon}]; "
                            f"the model predicts only `horizon` of the video: raise data.long_term.horizon")
        if self.queries < 1:
            raise DataError(f"config key 'model.long_term.queries' is {self.queries}; it must be >= 1")
        self.targets: List[_Target] = []
        super().__init__(cfg, split, train, info)

    # -- class ids ---------------------------------------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return self.info.num_actions

    @property
    def background(self) -> int:
        """Class id of frames outside every segment (A)."""
        return self.info.num_actions

    @property
    def none_id(self) -> int:
        """The query decoder's NONE / end class (A + 1)."""
        return self.info.num_actions + 1

    def _label_of(self, seg: Segment) -> int:
        a = self.info.action_id(seg.verb, seg.noun)
        return a if 0 <= a < self.num_actions else IGNORE

    # -- index -------------------------------------------------------------------------------------------------------
    def _build_index(self, _segments: List[Segment]) -> List[IndexItem]:
        """One item per (α, video), α-major; the segments are re-read with labels required (targets are labels)."""
        segments = self.info.segments(self.split, require_labels=True)
        for key in ("segments", "videos", "samples", "skipped_unobservable", "skipped_bad", "unseen_pair_frames",
                    "missing_depth_videos", "missing_depth_samples", "dropped_rgb", "dropped_depth", "missing_rgb",
                    "missing_depth"):
            self.stats[key] = 0
        self.stats["segments"] = len(segments)
        by_video: Dict[str, List[Segment]] = {}
        for seg in segments:
            by_video.setdefault(seg.video_id, []).append(seg)
        self.stats["videos"] = len(by_video)
        videos = []
        for video_id, segs in by_video.items():
            try:
                video = self.probe(video_id)
                for seg in segs:
                    check_segment_start(seg, video, self._clock_path(video_id, video))
                store = self.depth_store(video_id, video) if self.use["depth"] else None
            except DataError as e:
                self._bad(segs[0], e)
                continue
            labels = frame_labels(segs, video.num_frames, video.fps, self._label_of, self.background)
            self.stats["unseen_pair_frames"] += int((labels == IGNORE).sum())
            present = {"rgb": self.use["rgb"], "depth": store is not None}
            dropped = self._draw_missing(video_id, present)  # one draw per video, shared by all α
            videos.append((video_id, segs[0], video, store, labels, present, dropped))
        # α-major order: consecutive samples (an evaluation batch) have similar lengths, so little padding
        items: List[IndexItem] = []
        for ai, alpha in enumerate(self.alphas):
            for video_id, first, video, store, labels, present, dropped in videos:
                win = long_term_window(video.num_frames, video.fps, alpha, self.sample_fps, self.max_frames)
                if win.status == UNOBSERVABLE:
                    self.stats["skipped_unobservable"] += 1
                    continue
                self._count_presence(store, dropped, present)
                observed = observed_length(alpha, video.num_frames)
                start, end = future_span(alpha, self.horizon, video.num_frames)
                beta_lengths = np.array([future_span(alpha, b, video.num_frames)[1] - start for b in self.betas],
                                        dtype=np.int64)
                pseudo = Segment(f"{video_id}@alpha={alpha:g}", video_id, 0.0, video.num_frames / video.fps,
                                 row=first.row, source=first.source)
                depth_idx = self.info.depth_indices(win.indices, video, store) if present["depth"] else None
                items.append(IndexItem(pseudo, str(self._clock_path(video_id, video)), win.indices, depth_idx,
                                       present["rgb"], present["depth"]))
                self.targets.append(_Target(labels, alpha, ai, observed, start, end, beta_lengths))
        self.stats["samples"] = len(items)
        _logger.info("%s split '%s' (long-term, α %s): %s", self.info.name, self.split, self.alphas, self.stats)
        if not items:
            reasons = [f"{self.stats['skipped_unobservable']} (video, α) pair(s) observe no frame (int(α·L) = 0: "
                       f"raise data.long_term.*_alphas)"] if self.stats["skipped_unobservable"] else []
            if self.stats["skipped_bad"]:
                reasons.insert(0, f"{self.stats['skipped_bad']} of {self.stats['videos']} video(s) skipped as bad "
                                  f"input (data.on_bad_sample=skip), first reason: {self._first_bad}")
            raise DataError(f"split '{self.split}' of {self.info.root} has no usable long-term samples: "
                            f"{'; '.join(reasons)}")
        return items

    # -- samples -----------------------------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Dict[str, Any]:
        """The long-term sample dict (module docstring): frames of the first α, observed labels, future targets."""
        sample = super().__getitem__(index)
        for key in ("verb", "noun", "action", "narration_id"):
            sample.pop(key, None)
        t = self.targets[index]
        frame_idx = self.items[index].frame_idx
        future = t.labels[t.start:t.end]
        classes, durations = transcript(future)
        target, dur, mask = query_targets(classes, durations, self.queries, self.none_id)
        sample.update({
            "obs_labels": torch.from_numpy(t.labels[frame_idx].copy()),
            "last_label": torch.tensor(int(t.labels[t.observed - 1]), dtype=torch.int64),
            "future_classes": torch.from_numpy(target),
            "future_durations": torch.from_numpy(dur),
            "future_duration_mask": torch.from_numpy(mask),
            "future_labels": torch.from_numpy(future.copy()),
            "beta_lengths": torch.from_numpy(t.beta_lengths.copy()),
            "alpha": torch.tensor(t.alpha, dtype=torch.float64),
            "alpha_index": torch.tensor(t.alpha_index, dtype=torch.int64),
            "video_length": torch.tensor(len(t.labels), dtype=torch.int64),
            "observed_length": torch.tensor(t.observed, dtype=torch.int64),
        })
        return sample

    @staticmethod
    def collate_fn(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
        """`collate_long_term` (the DataLoader of a long-term split uses it)."""
        return collate_long_term(samples)


def _pad_time(x: torch.Tensor, length: int, value: Optional[int] = None) -> torch.Tensor:
    """Pad (T, ...) to (length, ...): with `value`, or (None) by repeating the last entry."""
    n = x.shape[0]
    if n == length:
        return x
    if value is None:
        fill = x[-1:].expand(length - n, *x.shape[1:])
    else:
        fill = torch.full((length - n, *x.shape[1:]), value, dtype=x.dtype)
    return torch.cat([x, fill], 0)


def collate_long_term(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Batch long-term samples of different lengths.

    Observed frames (`rgb`, `depth`, `frame_idx`) are padded to the longest T of the batch by repeating the sample's
    last observed frame (never a later one), `obs_labels` with IGNORE; `future_labels` to the longest F with IGNORE.
    Adds `token_mask` (B, T) bool (True = real frame) and `future_length` (B,) int64. Everything else is stacked by
    `torch.utils.data.default_collate`.
    """
    t_max = max(s["frame_idx"].shape[0] for s in samples)
    f_max = max(s["future_labels"].shape[0] for s in samples)
    padded: Dict[str, List[torch.Tensor]] = {k: [] for k in ("rgb", "depth", "frame_idx", "obs_labels",
                                                                "future_labels", "token_mask", "future_length")}
    rest = []
    for s in samples:
        t = s["frame_idx"].shape[0]
        for key in ("rgb", "depth", "frame_idx"):
            padded[key].append(_pad_time(s[key], t_max))
        padded["obs_labels"].append(_pad_time(s["obs_labels"], t_max, IGNORE))
        padded["future_labels"].append(_pad_time(s["future_labels"], f_max, IGNORE))
        padded["token_mask"].append(torch.arange(t_max) < t)
        padded["future_length"].append(torch.tensor(s["future_labels"].shape[0], dtype=torch.int64))
        rest.append({k: v for k, v in s.items() if k not in padded})
    out = default_collate(rest)
    out.update({k: torch.stack(v) for k, v in padded.items()})
    return out


def build_long_term_datasets(cfg: Mapping, train: bool = True) -> Tuple[Optional[LongTermDataset], LongTermDataset,
                                                                          DatasetInfo]:
    """`build_datasets(cfg, train, LongTermDataset)`: (train dataset with the train α or None, validation dataset with
    the test α, info). Kept for r3d.engine until it calls `build_datasets` itself."""
    return build_datasets(cfg, train, LongTermDataset)
