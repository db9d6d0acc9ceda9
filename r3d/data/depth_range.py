"""Does the depth the model would see survive `depth_scale` / `depth_min` / `depth_max`?

`NormalizeDepth` zeroes every reading outside [depth_min, depth_max] metres, so a wrong unit (``depth_scale=0.01`` on
millimetres reads 1.8 m as 18 m) or a range that misses the scene (``depth_max=2.0`` on a room at 1.8–4 m) feeds the
model zeros without any error. `DepthSurvey` reads a few frames per video (`survey_indices`), counts the readings
(finite, non-zero values: 0 means no reading) that fall below, inside and above the range, and keeps a subsample of
them for the measured span (1st–99th percentile). `problem` judges the share that survives: an error when fewer than
`ERROR_SHARE` do (the model would see (nearly) no depth), a warning when fewer than `WARN_SHARE` do.

The validator reports the survey of every video (check "depth range"); the dataset runs it on up to
`DATASET_VIDEOS` videos of its split at index time and refuses an error-level result, so training stops before its
first epoch with the same line.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Tuple

import numpy as np

from .errors import DataError
from .io import DepthStore

ERROR_SHARE = 0.05          # fewer readings than this share inside [depth_min, depth_max]: error
WARN_SHARE = 0.5            # fewer than this: warning
FRAMES_PER_VIDEO = 3        # frames `survey_indices` picks per depth store
SEQUENTIAL_SPAN = 90        # stores decoded from the start (MKV) are sampled within their first frames only
DATASET_VIDEOS = 32         # videos the dataset surveys at index time (evenly spread over its videos)
KEEP_PER_FRAME = 4096       # readings kept per frame for the percentiles


def survey_indices(store: DepthStore, count: int = FRAMES_PER_VIDEO) -> np.ndarray:
    """`count` evenly spaced frame indices (K,) int64 of `store` (first and last included); within the first
    `SEQUENTIAL_SPAN` frames for a store without random access, whose read cost grows with the index."""
    n = store.num_frames if store.random_access else min(store.num_frames, SEQUENTIAL_SPAN)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(np.int64))


class DepthSurvey:
    """Counts of depth readings against one [depth_min, depth_max] range, and a subsample of their values.

    Attributes: readings (finite non-zero values seen), below / above (outside the range), frames, videos.
    """

    def __init__(self, depth_min: float, depth_max: float) -> None:
        self.depth_min, self.depth_max = float(depth_min), float(depth_max)
        self.readings = self.below = self.above = self.frames = self.videos = 0
        self._kept: List[np.ndarray] = []

    @property
    def inside(self) -> int:
        return self.readings - self.below - self.above

    def add(self, metres: np.ndarray) -> None:
        """Count the readings of (K, H, W) float metres (0 and non-finite values are holes, not readings)."""
        for frame in np.asarray(metres, dtype=np.float32).reshape(len(metres), -1):
            r = frame[np.isfinite(frame) & (frame > 0)]
            self.readings += r.size
            self.below += int((r < self.depth_min).sum())
            self.above += int((r > self.depth_max).sum())
            self.frames += 1
            if r.size:
                self._kept.append(r[:: max(1, r.size // KEEP_PER_FRAME)])

    def add_store(self, store: DepthStore) -> None:
        """Read `survey_indices(store)` and count them; frames that cannot be read are left out (the validator and
        the dataset report those on their own)."""
        seen = False
        for i in survey_indices(store):
            try:
                self.add(store.read([int(i)], count=False))
                seen = True
            except DataError:
                continue
        self.videos += seen

    def span(self) -> Tuple[float, float]:
        """(1st, 99th) percentile of the readings in metres (NaN when there are none)."""
        if not self._kept:
            return float("nan"), float("nan")
        lo, hi = np.percentile(np.concatenate(self._kept), [1, 99])
        return float(lo), float(hi)

    def describe(self) -> str:
        """One line: what was read and how much of it the range keeps."""
        lo, hi = self.span()
        return (f"depth readings of {self.frames} frame(s) of {self.videos} video(s) span {lo:.2f}–{hi:.2f} m "
                f"(1st–99th percentile); {100.0 * self.inside / max(self.readings, 1):.0f} % lie inside "
                f"depth_min..depth_max = {self.depth_min:g}..{self.depth_max:g} m")

    def problem(self, depth_scale: float) -> Optional[Tuple[str, str]]:
        """("error" | "warning", one-line message) when too few readings survive the range, else None. The message
        names the measured span, the bound(s) that cut and by how much, and the keys to fix."""
        if self.frames == 0:
            return None
        if self.readings == 0:
            return "warning", (f"the {self.frames} sampled depth frame(s) of {self.videos} video(s) hold no reading "
                               f"(every value is 0 or NaN): the model would see no depth; check the depth files")
        share = self.inside / self.readings
        if share >= WARN_SHARE:
            return None
        lo, hi = self.span()
        cuts = []
        if self.above:
            cuts.append(f"depth_max={self.depth_max:g} m drops {100.0 * self.above / self.readings:.0f} %")
        if self.below:
            cuts.append(f"depth_min={self.depth_min:g} m drops {100.0 * self.below / self.readings:.0f} %")
        level = "error" if share < ERROR_SHARE else "warning"
        consequence = "the model would see (nearly) no depth" if level == "error" else "most depth is discarded"
        return level, (f"depth readings span {lo:.2f}–{hi:.2f} m (1st–99th percentile of {self.frames} frame(s) of "
                       f"{self.videos} video(s), depth_scale={depth_scale:g} m per unit); {' and '.join(cuts)}: "
                       f"{consequence}; fix depth_scale (0.001 = millimetres) or depth_min / depth_max in "
                       f"dataset.yaml or data.depth_*")


def survey_stores(stores: Mapping[str, DepthStore], depth_min: float, depth_max: float,
                  max_videos: Optional[int] = None) -> DepthSurvey:
    """The survey of `stores` ({video_id: store}); with `max_videos`, of that many evenly spread over them (in
    video-id order)."""
    survey = DepthSurvey(depth_min, depth_max)
    ids = sorted(stores)
    if max_videos is not None and len(ids) > max_videos:
        ids = [ids[int(i)] for i in np.round(np.linspace(0, len(ids) - 1, max_videos))]
    for vid in ids:
        survey.add_store(stores[vid])
    return survey
