"""The validator's per-video checks: the clock stream, RGB decoding and timing, the depth store, its frames, values and
range — each through the `DatasetInfo` methods the dataset uses, so both agree on what a video needs.

A video is timed by its RGB when the model uses RGB or the RGB exists, else by its depth
(`DatasetInfo.timing_stream`). Depth is checked whenever the model uses it, also when the RGB is broken, so one bad
file does not hide another.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ..depth_range import DepthSurvey
from ..errors import DataError
from ..file_checks import check_png_frames
from ..info import DatasetInfo
from ..io import DepthStore, PngDepthStore, VideoInfo, read_png16
from .report import ERROR, INFO, WARNING, Checker, where_of


@dataclass
class Clock:
    """A checked video's clock (`VideoInfo`, stream "rgb" or "depth") and the file whose frames it counts."""

    video: VideoInfo
    path: Path


def check_videos(ck: Checker, info: DatasetInfo, videos: Sequence[str], modalities: Sequence[str]) -> Dict[str, Clock]:
    """videos, frame timing, depth store, depth frames, depth values and depth range of every video; returns the
    clocks of the videos whose segments can be checked."""
    clocks: Dict[str, Clock] = {}
    stores: Dict[str, DepthStore] = {}
    for vid in videos:
        ck.count("videos")
        timed_by = info.timing_stream(vid, modalities)
        clock = _rgb_clock(ck, info, vid) if timed_by == "rgb" else None
        store = None
        if "depth" in modalities:
            store = _depth_store(ck, info, vid, warn_absent=timed_by == "rgb")
            if store is not None:  # its range is surveyed even when the video is unusable for another reason
                stores[vid] = store
        if timed_by == "depth":
            clock = ck.guard("videos", info.probe_depth, vid, store)
        if clock is None:
            continue
        clocks[vid] = Clock(clock, store.path if timed_by == "depth" else info.video_path(vid))
        if store is not None and timed_by == "rgb":
            ck.count("depth frames")
            try:
                info.check_depth(vid, clock, store)
            except DataError as e:
                ck.add("depth frames", ERROR, where_of(e), str(e))
    if "depth" in modalities:
        _depth_range(ck, info, stores)
    return clocks


def _rgb_clock(ck: Checker, info: DatasetInfo, vid: str) -> Optional[VideoInfo]:
    """Probe the RGB, decode its last frame, check its timing; the probe, or None after recording the problem."""
    probe = ck.guard("videos", info.probe_rgb, vid)
    if probe is None or ck.guard("videos", info.read_rgb, vid, [probe.num_frames - 1]) is None:
        return None
    ck.count("frame timing")
    problem = info.rgb_timing_problem(vid, probe)
    if problem:
        ck.add("frame timing", ERROR, info.video_path(vid), problem)
        return None
    return probe


def _depth_store(ck: Checker, info: DatasetInfo, vid: str, warn_absent: bool) -> Optional[DepthStore]:
    """Open the depth of `vid` and check its values; None when absent (a warning when RGB carries on) or broken."""
    ck.count("depth store")
    try:
        store = info.open_depth(vid)
    except DataError as e:
        ck.add("depth store", ERROR, where_of(e), str(e))
        return None
    if store is None:
        if warn_absent:
            loc = info.depth_location(vid)
            ck.add("depth store", WARNING, loc,
                   f"{loc}: no depth for video '{vid}' (no folder, .npz, .npy or .mkv); its samples train with depth "
                   f"marked missing: add the depth, or ignore this if it is intended")
        return None
    ck.count("depth values")
    _depth_values(ck, store)
    return store


def _depth_values(ck: Checker, store: DepthStore) -> None:
    """Every PNG header (full) and the first/last frames; float arrays are read whole (full) to count NaN/inf."""
    if isinstance(store, PngDepthStore):
        bad = check_png_frames(store) if ck.full else []
        for p, msg in bad:
            ck.add("depth values", ERROR, p, msg)
        if not bad:
            for i in sorted({0, store.num_frames - 1}):
                if ck.guard("depth values", read_png16, store.frame_path(i)) is None:
                    break
        return
    n = store.num_frames
    chunks = [np.arange(s, min(s + 64, n)) for s in range(0, n, 64)] if ck.full else [np.array(sorted({0, n - 1}))]
    for idx in chunks:
        if ck.guard("depth values", store.read, idx) is None:
            return
    if store.nonfinite:
        ck.add("depth values", WARNING, store.path,
               f"{store.path}: {store.nonfinite} non-finite depth values (NaN/inf) are read as 0 = no reading; "
               f"write 0 for holes if that is not what they mean")


def _depth_range(ck: Checker, info: DatasetInfo, stores: Mapping[str, DepthStore]) -> None:
    """The share of sampled depth readings that survive depth_scale / depth_min / depth_max (`DepthSurvey`)."""
    if not stores:
        return
    survey = DepthSurvey(info.depth_min, info.depth_max)
    for vid in sorted(stores):
        ck.count("depth range")
        survey.add_store(stores[vid])
    found = survey.problem(info.depth_scale)
    if found is None:
        if survey.readings:
            ck.add("depth range", INFO, "depth range", survey.describe())
        return
    level, message = found
    ck.add("depth range", level, f"{info.root / 'depth'}", message)
