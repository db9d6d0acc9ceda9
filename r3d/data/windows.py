"""A segment's observed window on its video, as the dataset samples it and the validator counts it.

`check_segment_start` refuses a segment that starts after its video ends (an annotation or video mix-up);
`segment_window` then gives the next-action window (`r3d.data.protocols.next_action_window` with the `data.*` keys)
on the video's clock (`VideoInfo`: the RGB frames, or the depth frames of a video without RGB). `window_notes` says in
one line each why windows were dropped or padded, for the validator's report and the dataset's error when nothing is
left.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Mapping

from .annotations import Segment
from .errors import DataError
from .io import VideoInfo
from .protocols import BEFORE_START, PADDED, UNOBSERVABLE, Window, next_action_window


def check_segment_start(seg: Segment, clock: VideoInfo, video: Path) -> None:
    """DataError naming the annotation row when `seg` starts after the end of its `video` (read on `clock`)."""
    duration = clock.num_frames / clock.fps
    kind = "" if clock.stream == "rgb" else f"{clock.stream} "
    if seg.start > duration + 1e-6:
        raise DataError(f"{seg.where}: segment '{seg.narration_id}' starts at {seg.start:.3f} s, after the end of "
                        f"{video} ({clock.num_frames} {kind}frames at {clock.fps:g} fps = {duration:.3f} s); fix "
                        f"start_timestamp or the video")


def segment_window(seg: Segment, clock: VideoInfo, data_cfg: Mapping, video: Path) -> Window:
    """The next-action window of `seg` on `clock` (`check_segment_start` first): indices (T,) int64 of the clock's
    frames, or None with the reason in `Window.status`. `data_cfg`: tau_a, tau_o, num_frames, drop_style."""
    check_segment_start(seg, clock, video)
    return next_action_window(seg.start, clock.fps, int(data_cfg["num_frames"]), float(data_cfg["tau_a"]),
                              float(data_cfg["tau_o"]), clock.num_frames, data_cfg["drop_style"])


def window_notes(counts: Mapping[str, int], data_cfg: Mapping) -> List[str]:
    """One line per window status in `counts` ({UNOBSERVABLE | BEFORE_START | PADDED: n}) that happened."""
    notes = []
    if counts.get(UNOBSERVABLE):
        notes.append(f"{counts[UNOBSERVABLE]} segment(s) start less than data.tau_a={data_cfg['tau_a']} s into "
                     f"their video: nothing is observable, dropped")
    if counts.get(BEFORE_START):
        notes.append(f"{counts[BEFORE_START]} window(s) reach before the video start and are dropped "
                     f"(data.drop_style=skip; data.tau_o={data_cfg['tau_o']} s)")
    if counts.get(PADDED):
        notes.append(f"{counts[PADDED]} window(s) reach before the video start and are padded with the first frame "
                     f"(data.drop_style=pad)")
    return notes
