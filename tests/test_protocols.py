"""Next-action sampling: never a frame after t_start − τa (exhaustive sweep), hand-computed windows, drop styles,
and timestamp matching of depth frames."""
import itertools
import math

import numpy as np
import pytest

from r3d.data.protocols import (BEFORE_START, OK, PADDED, UNOBSERVABLE, frame_at, match_depth_indices,
                                next_action_indices, next_action_window)

FPS = [1.0, 4.0, 7.5, 10.0, 12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 59.94, 60.0, 30000 / 1001]


def _starts(fps, tau_a, rng):
    """Start times whose t_end = start − τa falls exactly on frame boundaries (k / fps), on decimal times that are not
    exact in binary (k / 10), and at random."""
    on_frames = [k / fps + tau_a for k in range(0, 40)]
    decimals = [k / 10 + tau_a for k in range(0, 40)] + [k / 100 for k in range(0, 400, 7)]
    return on_frames + decimals + list(rng.uniform(0, 12, 30))


def test_window_never_after_t_end_sweep():
    rng = np.random.default_rng(0)
    checked = 0
    for fps, tau_a, tau_o, t in itertools.product(FPS, [0.0, 0.5, 1.0, 1.1], [0.5, 2.5], [1, 8, 10]):
        for j, t_start in enumerate(_starts(fps, tau_a, rng)):
            for style in ("pad", "skip")[j % 2:j % 2 + 1]:  # alternate the two styles
                win = next_action_window(t_start, fps, t, tau_a, tau_o, None, style)
                t_end = t_start - tau_a
                if t_end < 0:
                    assert win.indices is None and win.status == UNOBSERVABLE
                    continue
                if win.indices is None:
                    assert style == "skip" and win.status == BEFORE_START
                    continue
                idx = win.indices
                assert idx.shape == (t,) and idx.dtype == np.int64
                assert np.all(idx / fps <= t_end), (fps, tau_a, tau_o, t, t_start, idx)
                assert np.all(np.diff(idx) >= 0) and idx.min() >= 0
                # the last sample is the last frame at or before t_end (not one earlier)
                assert (idx[-1] + 1) / fps > t_end
                checked += 1
    assert checked > 30000


def test_frames_on_boundaries_are_included():
    # t_end exactly on frame k: frame k itself is sampled, although k/fps may not be exact in binary
    for fps in (10.0, 29.97, 30.0, 25.0, 7.5):
        for k in range(0, 200):
            assert next_action_indices(k / fps + 1.0, fps, 1, 1.0, 2.0)[0] in (k, k - 1)
            assert frame_at(k / fps, fps) == k
    # decimal times that binary floating point puts just below the boundary: 1.7 − 1.0 = 0.69999999999999996
    assert next_action_indices(1.7, 10.0, 1, 1.0, 2.0).tolist() == [7]
    assert next_action_indices(0.3, 10.0, 1, 0.0, 2.0).tolist() == [3]


def test_hand_computed_windows():
    # t_end = 2.0 s, step 0.2 s: times 0.6, 0.8, ..., 2.0 at 10 fps (0.6 = 2.0 − 7·0.2 is 0.5999999999999999 in binary)
    assert next_action_indices(3.0, 10.0, 8, 1.0, 1.6).tolist() == [6, 8, 10, 12, 14, 16, 18, 20]
    # 29.97 fps, t_end = 1.0: times 0.25, 0.5, 0.75, 1.0 -> floor(7.4925, 14.985, 22.4775, 29.97)
    assert next_action_indices(2.0, 29.97, 4, 1.0, 1.0).tolist() == [7, 14, 22, 29]
    # EK100-like: τo = 2.5 s at 4 fps of a 30 fps video, segment at 12.34 s -> t_end = 11.34
    expected = [math.floor((11.34 - (9 - i) * 0.25) * 30) for i in range(10)]
    assert next_action_indices(12.34, 30.0, 10, 1.0, 2.5).tolist() == expected == [
        272, 280, 287, 295, 302, 310, 317, 325, 332, 340]


def test_drop_styles_and_counts():
    # t_end = 0.5 s, times −1.0, −0.5, 0.0, 0.5 at 10 fps
    win = next_action_window(1.5, 10.0, 4, 1.0, 2.0, drop_style="pad")
    assert win.status == PADDED and win.indices.tolist() == [0, 0, 0, 5]
    win = next_action_window(1.5, 10.0, 4, 1.0, 2.0, drop_style="skip")
    assert win.status == BEFORE_START and win.indices is None
    # nothing observable (t_end < 0): dropped under both styles
    for style in ("pad", "skip"):
        win = next_action_window(0.5, 10.0, 4, 1.0, 2.0, drop_style=style)
        assert win.status == UNOBSERVABLE and win.indices is None
    # a window that starts before 0 s (t_end = 1.0, τo = 1.5) whose samples (0.25 s, 1.0 s) are all >= 0 s: not padded
    win = next_action_window(1.5, 10.0, 2, 0.5, 1.5, drop_style="skip")
    assert win.status == OK and win.indices.tolist() == [2, 10]
    # t_end exactly 0: every sample before 0 s is padded, frame 0 itself is observable
    assert next_action_window(1.0, 10.0, 3, 1.0, 1.5).indices.tolist() == [0, 0, 0]
    # count over a batch of segment starts, as the dataset does
    starts = [0.2, 0.9, 1.2, 1.6, 2.4, 3.5]  # t_end = −0.8, −0.1, 0.2, 0.6, 1.4, 2.5 with τa = 1, τo = 2
    statuses = [next_action_window(s, 10.0, 4, 1.0, 2.0, drop_style="pad").status for s in starts]
    assert statuses == [UNOBSERVABLE, UNOBSERVABLE, PADDED, PADDED, PADDED, OK]
    with pytest.raises(ValueError, match="drop_style"):
        next_action_window(2.0, 10.0, 4, 1.0, 2.0, drop_style="zero")


def test_window_capped_at_video_end():
    # a video that reports fewer frames than its duration suggests: indices stay inside it (and in the past)
    idx = next_action_indices(5.0, 10.0, 4, 1.0, 1.0, num_video_frames=35)
    assert idx.tolist() == [32, 34, 34, 34]


def test_match_depth_indices():
    rgb = [0, 1, 2, 3, 29, 30, 59]
    # 30 fps RGB, 15 fps depth: times 0, 1/30, 2/30, 3/30, 29/30, 1.0, 59/30 -> depth frames 0, 0, 1, 1, 14, 15, 29
    assert match_depth_indices(rgb, 30.0, 15.0, 100).tolist() == [0, 0, 1, 1, 14, 15, 29]
    assert match_depth_indices(rgb, 30.0, 15.0, 20).tolist() == [0, 0, 1, 1, 14, 15, 19]  # capped to the stream
    assert match_depth_indices(rgb, 30.0, None, 100).tolist() == rgb
    # never a depth frame after its RGB frame, for awkward rate pairs
    for rgb_fps, depth_fps in [(29.97, 30.0), (30.0, 29.97), (30.0, 5.0), (15.0, 30.0), (25.0, 23.976)]:
        idx = np.arange(0, 600)
        d = match_depth_indices(idx, rgb_fps, depth_fps, 10 ** 6)
        assert np.all(d / depth_fps <= idx / rgb_fps)
        assert np.all((d + 1) / depth_fps > idx / rgb_fps)
