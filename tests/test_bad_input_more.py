"""Bad input found when the dataset index is built, not later in a DataLoader worker (issue 8, continued).

- A video whose frame count and fps disagree with its container or its frame timestamps stops training with the very
  line `tools/validate_data.py` prints (`file_checks.video_timing_problem`), or is skipped and counted.
- Under `data.on_bad_sample=skip`, depth PNGs that are 8-bit or unreadable are found from their headers at index
  time (no decoding): the samples that would read them are dropped and counted, the others train.
- NaN/inf in float depth are read as "no reading" and counted in the dataset's stats, which go into metrics JSON.

Each test damages a private copy of the tiny synthetic ROOT (conftest.py); expected counts come from the windows of an
undamaged build (frame indices printed by the dataset itself, not recomputed here).
"""
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TINY_RUN
from r3d.data.depth_range import survey_indices
from r3d.data.errors import DataError
from r3d.data.io import NpzDepthStore, read_png16
from test_bad_input import VIDEO, build, depth_frames, errors_of, one_line, reencode

SKIP = "data.on_bad_sample=skip"


@pytest.fixture(scope="module")
def windows(tiny_root):
    """{narration_id: depth frame indices (T,)} of the undamaged tiny ROOT's training samples."""
    train, _ = build(tiny_root)
    return {it.segment.narration_id: it.depth_idx for it in train.items}


def _vfr(video):
    """Re-encode with a frame rate that drops to a third half-way (decord: same count, wrong times)."""
    from r3d.data.io import probe_video

    n = probe_video(video).num_frames
    reencode(video, pts=[k if k < n // 2 else n // 2 + 3 * (k - n // 2) for k in range(n)])


def _truncate_faststart(video):
    """Index up front, then the file cut at 70 %: it opens, decord finds fewer frames than the header declares."""
    reencode(video, faststart=True)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 7 // 10])


@pytest.mark.parametrize("damage,expected", [
    (_vfr, "variable frame rate or a wrong frame count"),
    (_truncate_faststart, "the container header declares 93 frames but decord finds"),
])
def test_video_timing_problem_stops_training_with_the_validators_line(tiny_copy, damage, expected):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    damage(video)
    [validator_line] = errors_of(tiny_copy, "frame timing")
    assert expected in validator_line
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    msg = one_line(e)
    assert msg == (f"{validator_line} [segment '{VIDEO}_0' at {tiny_copy / 'annotations' / 'train.csv'}:2; "
                   f"data.on_bad_sample=skip drops such segments]")


def test_video_timing_problem_is_skipped_and_counted(tiny_copy, caplog):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    _vfr(video)
    with caplog.at_level(logging.WARNING, logger="r3d.data.dataset"):
        train, val = build(tiny_copy, SKIP)
    assert train.stats["skipped_bad"] == 2 and val.stats["skipped_bad"] == 0  # v0000 has 2 training segments
    assert len(train) == train.stats["samples"] == train.stats["segments"] - 2 == 6
    assert VIDEO not in {it.segment.video_id for it in train.items}
    [validator_line] = errors_of(tiny_copy, "frame timing")
    logged = [r.getMessage() for r in caplog.records if "skipping segment" in r.getMessage()]
    assert len(logged) == 2 and all(m.endswith(validator_line) for m in logged)


def test_8bit_depth_png_skips_only_the_samples_that_read_it(tiny_copy, windows, monkeypatch, caplog):
    """One 8-bit frame inside v0000_0's window (not in v0000_1's): that segment is dropped at index time, counted,
    logged with the validator's message; no pixel is decoded while indexing but the few frames of the depth range
    survey; every kept sample loads."""
    w0, w1 = set(windows[f"{VIDEO}_0"].tolist()), set(windows[f"{VIDEO}_1"].tolist())
    k = sorted(w0 - w1)[3]
    frame = depth_frames(tiny_copy)[k]
    cv2.imwrite(str(frame), (read_png16(frame) // 256).astype(np.uint8))
    decoded, imread = [], cv2.imread
    with monkeypatch.context() as mp:  # indexing reads headers only (and the survey's frames)
        mp.setattr(cv2, "imread", lambda path, *a: decoded.append(Path(path)) or imread(path, *a))
        with caplog.at_level(logging.WARNING, logger="r3d.data.dataset"):
            train, val = build(tiny_copy, SKIP)
    surveyed = {s.frame_path(int(i)) for ds in (train, val) for s in ds.depth_stores.values()
                for i in survey_indices(s)}
    assert decoded and set(decoded) <= surveyed
    assert train.stats["skipped_bad"] == 1 and train.stats["bad_depth_frames"] == 1
    assert [it.segment.narration_id for it in train.items if it.segment.video_id == VIDEO] == [f"{VIDEO}_1"]
    assert len(train) == 7
    [logged] = [r.getMessage() for r in caplog.records if "skipping segment" in r.getMessage()]
    [validator_line] = [m for m in errors_of(tiny_copy, "depth values") if str(frame) in m]
    assert logged.endswith(validator_line)
    assert f"{frame}: 8-bit grey PNG where a 16-bit single-channel depth PNG is expected" in logged
    for i in range(len(train)):
        assert train[i]["depth"].shape == (8, 1, 32, 32)
    # error mode keeps indexing pixel-free; the frame fails when a sample reads it (tests/test_bad_input.py)
    assert len(build(tiny_copy)[0]) == 8


def test_unreadable_depth_pngs_are_skipped_and_counted(tiny_copy, windows, caplog):
    """A 0-byte frame in v0000_0's window and a GIF named .png in v0000_1's: both segments drop, 2 bad frames."""
    frames = depth_frames(tiny_copy)
    empty, gif = frames[int(windows[f"{VIDEO}_0"][2])], frames[int(windows[f"{VIDEO}_1"][5])]
    empty.write_bytes(b"")
    gif.write_bytes(b"GIF89a" + bytes(40))
    with caplog.at_level(logging.WARNING, logger="r3d.data.dataset"):
        train, _ = build(tiny_copy, SKIP)
    assert train.stats["skipped_bad"] == 2 and train.stats["bad_depth_frames"] == 2 and len(train) == 6
    logged = [r.getMessage() for r in caplog.records if "skipping segment" in r.getMessage()]
    for path in (empty, gif):
        line = f"{path}: not a PNG file (bad signature or header); re-write it as a 16-bit PNG"
        assert sum(line in m for m in logged) == 1
        assert any(m.startswith(line) for m in errors_of(tiny_copy, "depth values"))


def _nan_npz(root, lo=10, hi=20):
    """v0000's depth as float metres in an npz, NaN at pixel (3, 4) and +inf at (5, 6) of frames lo..hi-1."""
    frames = depth_frames(root)
    metres = np.stack([read_png16(p) for p in frames]).astype(np.float32) * 0.001
    metres[lo:hi, 3, 4], metres[lo:hi, 5, 6] = np.nan, np.inf
    shutil.rmtree(root / "depth" / VIDEO)
    np.savez(root / "depth" / f"{VIDEO}.npz", depth=metres)
    return root / "depth" / f"{VIDEO}.npz", set(range(lo, hi))


def test_nonfinite_depth_is_counted_in_the_dataset_stats_and_logged(tiny_copy, windows, caplog):
    npz, bad = _nan_npz(tiny_copy)
    used = set(windows[f"{VIDEO}_0"].tolist()) | set(windows[f"{VIDEO}_1"].tolist())
    n_frames = len(used & bad)
    assert 0 < n_frames < len(used)  # some used frames have NaN/inf, some do not
    with caplog.at_level(logging.WARNING, logger="r3d.data.dataset"):
        train, val = build(tiny_copy)
    assert train.stats["nonfinite_depth_values"] == 2 * n_frames
    assert train.stats["nonfinite_depth_frames"] == n_frames and train.stats["nonfinite_depth_videos"] == 1
    assert val.stats["nonfinite_depth_values"] == 0  # v0000 is a training video
    [msg] = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert msg == (f"split 'train': {2 * n_frames} non-finite depth values (NaN/inf) in {n_frames} frames of 1 "
                   f"video(s) (e.g. {npz}) are read as 0 = no reading; write 0 for holes if that is not what they mean")
    assert train.depth_stores[VIDEO].nonfinite == 0  # counting converts nothing; reading still zeroes them
    i, item = next((i, it) for i, it in enumerate(train.items) if it.segment.narration_id == f"{VIDEO}_0")
    at_nan = train[i]["depth"][:, 0, 3, 4]  # (T,) the NaN pixel in each sampled frame
    assert [float(v) == 0.0 for v in at_nan] == [int(k) in bad for k in item.depth_idx]


def test_count_nonfinite_reads_a_compressed_npz_once(tmp_path, monkeypatch):
    """A compressed npz member is decompressed whole on every read, so the scan reads it in one go."""
    depth = np.ones((600, 4, 4), np.float32)
    depth[[3, 300, 599], 0, 0] = np.nan
    np.savez_compressed(tmp_path / "d.npz", depth=depth)
    store = NpzDepthStore(tmp_path / "d.npz", 0.001)
    calls = []
    orig = store._read_raw
    monkeypatch.setattr(store, "_read_raw", lambda uniq: calls.append(len(uniq)) or orig(uniq))
    assert store.count_nonfinite(np.arange(600)) == (3, 3)
    assert calls == [600]
    assert store.count_nonfinite([299, 300, 300, 301]) == (1, 1)  # duplicates count once


def test_nonfinite_counts_reach_the_metrics_json(tiny_copy, tmp_path):
    """tools/test.py's metrics JSON carries the evaluated split's stats under "data" (training's metrics.json
    carries both splits' the same way)."""
    from accelerate.state import AcceleratorState

    from r3d.config import load_config
    from r3d.engine.builder import build_data, build_model, model_meta
    from r3d.engine.checkpoint import export_model
    from r3d.engine.tester import test

    val_video = "v0001"  # a validation video (segments at rows 2 and 3 of val.csv)
    frames = sorted((tiny_copy / "depth" / val_video).glob("*.png"))
    metres = np.stack([read_png16(p) for p in frames]).astype(np.float32) * 0.001
    metres[:, 0, 0] = np.nan  # every frame: one NaN each
    shutil.rmtree(tiny_copy / "depth" / val_video)
    np.savez(tiny_copy / "depth" / f"{val_video}.npz", depth=metres)
    cfg = load_config(None, [f"data.root={tiny_copy}", *TINY_RUN, f"work_dir={tmp_path / 'run'}"])
    AcceleratorState._reset_state(True)
    try:
        data = build_data(cfg, train=False)
        used = {int(i) for it in data.val.items if it.segment.video_id == val_video for i in it.depth_idx}
        model = build_model(cfg, data.info)
        export_model(model, model_meta(cfg, data.info, model), tmp_path / "run")
        test(cfg, str(tmp_path / "run"), out=str(tmp_path / "m.json"), collapse=False)
    finally:
        AcceleratorState._reset_state(True)
    saved = json.loads((tmp_path / "m.json").read_text())["data"]
    assert len(used) == 16  # two disjoint 8-frame windows
    assert saved["nonfinite_depth_values"] == saved["nonfinite_depth_frames"] == len(used)
    assert saved["nonfinite_depth_videos"] == 1
