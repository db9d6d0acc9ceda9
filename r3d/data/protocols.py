"""Anticipation protocols: which frames a sample may observe.

Next-action (EPIC-KITCHENS-100 style): a segment starting at t_start is anticipated from an observed window that ends
at t_end = t_start − τa and lasts τo. T frames are sampled uniformly over (t_end − τo, t_end]:
``t_i = t_end − (T−1−i)·τo/T`` for i = 0..T−1, so the last sample is exactly t_end, and each time maps to the last
frame at or before it, ``floor(t·fps)``. A frame whose time ``index / fps`` is after t_end is never returned: the
floor gets an ε = 1e-9 so that a time on a frame boundary that floating point puts just below it still lands on that
frame, and every index is then capped by the last frame whose time (computed in floating point) is ≤ t_end.

Windows that reach before the video (a sampled time before 0 s): ``drop_style="skip"`` drops the sample,
``drop_style="pad"`` repeats frame 0. A segment with t_end < 0 has nothing observable and is dropped under both
styles. `next_action_window` reports which of these happened, so the dataset can count them.

Long-term (FUTR style: observe the first α of a video, predict the next β): `long_term_window` samples the observed
first α at a fixed rate and never returns a frame at or after int(α·L); `future_span` gives the predicted frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

EPS = 1e-9  # in frames: how far below a frame boundary floating-point error may put a time that is on it

OK, PADDED, BEFORE_START, UNOBSERVABLE = "ok", "padded", "before_start", "unobservable"
DROP_STYLES = ("pad", "skip")


def frame_at(t: float, fps: float) -> int:
    """Index of the last frame whose time ``k / fps`` (in floating point) is at or before `t` (may be negative)."""
    k = math.floor(t * fps + EPS)
    while k / fps > t:
        k -= 1
    return k


@dataclass(frozen=True)
class Window:
    """A sampled observation window: `indices` (T,) int64 frame indices, or None when the sample is dropped.

    status: "ok"; "padded" (frames before the video replaced by frame 0); "before_start" (dropped by
    drop_style=skip); "unobservable" (t_start − τa < 0, dropped under both styles).
    """

    indices: Optional[np.ndarray]
    status: str


# -- next-action protocol --------------------------------------------------------------------------------------------
def next_action_window(t_start: float, fps: float, num_frames: int, tau_a: float, tau_o: float,
                       num_video_frames: Optional[int] = None, drop_style: str = "pad") -> Window:
    """The next-action observation window of a segment starting at `t_start` seconds (see module docstring).

    Args:
        t_start: segment start (s). fps: RGB frame rate. num_frames: T. tau_a: anticipation gap (s).
        tau_o: observed window length (s). num_video_frames: frames in the video; indices past its end are capped
            at its last frame (which is still before t_end). drop_style: "pad" or "skip".
    Returns: `Window` with indices (T,) int64, non-decreasing, or None (dropped).
    """
    if drop_style not in DROP_STYLES:
        raise ValueError(f"data.drop_style must be one of {DROP_STYLES}, got '{drop_style}'")
    if not fps > 0 or num_frames < 1 or tau_o < 0 or tau_a < 0:
        raise ValueError(f"next_action_window needs fps > 0, num_frames >= 1, tau_o >= 0, tau_a >= 0; got fps={fps}, "
                         f"num_frames={num_frames}, tau_o={tau_o}, tau_a={tau_a}")
    t_end = t_start - tau_a
    if t_end < 0:
        return Window(None, UNOBSERVABLE)
    last = frame_at(t_end, fps)
    step = tau_o / num_frames
    times = np.array([t_end - (num_frames - 1 - i) * step for i in range(num_frames)], dtype=np.float64)
    idx = np.minimum(np.floor(times * fps + EPS).astype(np.int64), last)
    status = OK
    if idx[0] < 0:
        if drop_style == "skip":
            return Window(None, BEFORE_START)
        idx = np.maximum(idx, 0)
        status = PADDED
    if num_video_frames is not None:
        idx = np.minimum(idx, max(int(num_video_frames) - 1, 0))
    return Window(idx, status)


def next_action_indices(t_start: float, fps: float, num_frames: int, tau_a: float, tau_o: float,
                        num_video_frames: Optional[int] = None, drop_style: str = "pad") -> Optional[np.ndarray]:
    """(T,) int64 RGB frame indices of the next-action window, or None when dropped (`next_action_window`)."""
    return next_action_window(t_start, fps, num_frames, tau_a, tau_o, num_video_frames, drop_style).indices


# -- depth matching --------------------------------------------------------------------------------------------------
def match_depth_indices(rgb_indices: Sequence[int], rgb_fps: float, depth_fps: Optional[float],
                        num_depth_frames: int) -> np.ndarray:
    """Depth frame for each RGB frame: (T,) -> (T,) int64.

    Without `depth_fps`, depth frame i belongs to RGB frame i (the caller checks that the lengths agree). With it,
    each RGB frame time ``i / rgb_fps`` maps to the last depth frame at or before it (never a later one), capped to
    the depth stream's frames.
    """
    rgb = np.asarray(rgb_indices, dtype=np.int64).reshape(-1)
    if depth_fps is None:
        return rgb.copy()
    if not depth_fps > 0 or not rgb_fps > 0:
        raise ValueError(f"match_depth_indices needs positive frame rates, got rgb_fps={rgb_fps}, "
                         f"depth_fps={depth_fps}")
    out = np.array([frame_at(int(i) / rgb_fps, depth_fps) for i in rgb], dtype=np.int64)
    return np.clip(out, 0, max(int(num_depth_frames) - 1, 0))


# -- long-term protocol (FUTR: observe α of the video, predict the next β) ---------------------------------------------
# Frame counts follow FUTR's `predict.py` / R3D's `predict_nturgbd.py` integer arithmetic exactly, so that the frames
# a sample observes, the frames its targets cover and the frames `r3d.metrics.anticipation.moc_at_betas` evaluates are
# the same: observed = frames [0, int(α·L)), future of horizon h = frames [int(α·L), min(L, int((α+h)·L))).
def observed_length(alpha: float, num_video_frames: int) -> int:
    """Frames observed at fraction α of an L-frame video: ``int(α·L)`` (FUTR's ``observed_len``)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"an observed fraction α must be in (0, 1], got {alpha} (data.long_term.*_alphas)")
    return int(alpha * int(num_video_frames))


def future_span(alpha: float, horizon: float, num_video_frames: int) -> Tuple[int, int]:
    """(start, end) frame indices of the future of horizon h after α: [int(α·L), min(L, int((α+h)·L))).

    β (and h) are fractions of the whole video, as in FUTR; near the end the span is cut at the last frame.
    """
    length = int(num_video_frames)
    start = observed_length(alpha, length)
    return start, max(start, min(length, int((alpha + horizon) * length)))


def long_term_window(num_video_frames: int, fps: float, alpha: float, sample_fps: Optional[float],
                     max_frames: int = 0) -> Window:
    """The observed frames of the long-term protocol: the first α of the video, sampled at `sample_fps`.

    Sample times are ``j / sample_fps`` for j = 0, 1, ... (anchored at the video start, as FUTR's
    ``features[:observed_len][::sample_rate]``), each mapped to the last frame at or before it (`frame_at`); only
    frames with index < int(α·L) are kept, so no frame of the unobserved part is ever returned. `sample_fps` None
    (or ≥ fps) takes every observed frame (R3D on NTU RGB+D / UTKinect: sample_rate 1). With `max_frames` > 0 and
    more samples than that, `max_frames` of them are kept, evenly spaced, first and last included.

    Returns: `Window` with (T,) strictly increasing int64 indices, or (None, "unobservable") when int(α·L) = 0.
    """
    if not fps > 0:
        raise ValueError(f"long_term_window needs fps > 0, got {fps}")
    if sample_fps is not None and not sample_fps > 0:
        raise ValueError(f"data.long_term.sample_fps must be > 0 or null (every frame), got {sample_fps}")
    observed = observed_length(alpha, num_video_frames)
    if observed < 1:
        return Window(None, UNOBSERVABLE)
    if sample_fps is None or sample_fps >= fps:
        idx = np.arange(observed, dtype=np.int64)
    else:
        count = int(math.ceil(observed / fps * sample_fps)) + 1  # enough sample times to pass the last frame
        idx = np.array([frame_at(j / sample_fps, fps) for j in range(count)], dtype=np.int64)
        idx = np.unique(idx[(idx >= 0) & (idx < observed)])
    if max_frames and len(idx) > max_frames:
        idx = idx[np.round(np.linspace(0, len(idx) - 1, int(max_frames))).astype(np.int64)]
    return Window(idx, OK)
