"""Native sensor recordings as a dataset: ROOT/recordings/<video_id>.mkv (Azure Kinect layout: MJPEG colour + b16g
depth) and .bag (RealSense layout) stand in for videos/ + depth/. Validate -> train (1 epoch) -> test -> demo, and
the depth the dataset reads is the depth that was written, in metres."""
from __future__ import annotations

import csv
import json

import numpy as np

from conftest import TINY_RUN, run_tool
from recording_fixtures import color_frame, depth_frame, write_k4a_mkv, write_realsense_bag
from r3d.config import load_config
from r3d.data.dataset import build_datasets
from r3d.data.validate import validate_root

FPS, N = 8, 64  # 8 s per recording


def _write_root(root):
    depth = np.stack([depth_frame(k) for k in range(N)])
    color = np.stack([color_frame(k) for k in range(N)])
    rec = root / "recordings"
    rec.mkdir(parents=True)
    us = [k * 1_000_000 // FPS for k in range(N)]
    ns = [10**9 + k * 10**9 // FPS for k in range(N)]
    write_k4a_mkv(rec / "k0.mkv", depth, us, color, us, fps=FPS)
    write_k4a_mkv(rec / "k1.mkv", depth, us, color, us, fps=FPS)
    write_realsense_bag(rec / "r0.bag", depth, ns, color, ns, fps=FPS)
    ann = root / "annotations"
    ann.mkdir()
    for name, keys in (("verb_classes", ["take", "put"]), ("noun_classes", ["cup", "box"])):
        (ann / f"{name}.csv").write_text("id,key\n" + "".join(f"{i},{k}\n" for i, k in enumerate(keys)))
    header = ["narration_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"]
    for split, vids in (("train", ["k0", "k1"]), ("val", ["r0"])):
        with open(ann / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for v in vids:
                w.writerow([f"{v}_0", v, "00:00:04.00", "00:00:05.00", 0, 1])
                w.writerow([f"{v}_1", v, "00:00:06.00", "00:00:07.00", 1, 0])
    return depth


def test_recordings_root_validates_trains_tests_and_streams(tmp_path):
    root = tmp_path / "root"
    depth = _write_root(root)
    cfg = load_config(None, [f"data.root={root}", *TINY_RUN])
    report = validate_root(root, cfg)
    assert report.ok, report.table()
    # the dataset reads the written depth exactly: frame k of the constant-rate clock is recording frame k
    train, val, info = build_datasets(cfg)
    assert info.recording("r0").kind and info.probe_rgb("r0").num_frames == N and len(train) == 4 and len(val) == 2
    store = info.open_depth("r0")
    np.testing.assert_array_equal(store.read(np.arange(N)), depth.astype(np.float32) * np.float32(0.001))
    item = val.items[0]
    assert item.depth_idx.tolist() == item.frame_idx.tolist()
    assert info.read_rgb("k0", item.frame_idx).shape == (len(item.frame_idx), 24, 32, 3)
    work = tmp_path / "run"
    run_tool(["tools/train.py", f"data.root={root}", f"work_dir={work}", "train.epochs=1", *TINY_RUN])
    assert json.loads((work / "model.json").read_text())["depth"]["depth_scale"] == 0.001
    run_tool(["tools/test.py", "--checkpoint", str(work), f"data.root={root}"])
    assert json.loads((work / "metrics_test.json").read_text())["num_samples"] == 2
    out = tmp_path / "pred.json"
    r = run_tool(["tools/demo.py", "--checkpoint", str(work), "--rgb", str(root / "recordings" / "r0.bag"),
                  "--out", str(out), "--no-progress"])
    doc = json.loads(out.read_text())
    assert doc["num_frames"] == N and doc["steps"] and doc["recording"]["kind"] and "steps" in r.stdout


def test_a_broken_recording_is_one_validator_finding_naming_it(tmp_path):
    root = tmp_path / "root"
    _write_root(root)
    bad = root / "recordings" / "k1.mkv"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated mid-file
    cfg = load_config(None, [f"data.root={root}", *TINY_RUN])
    report = validate_root(root, cfg)
    errors = [f for f in report.errors if "k1.mkv" in f.message]
    assert not report.ok and errors and all("\n" not in f.message for f in errors)
    assert "truncated" in errors[0].message.lower() or "shorter" in errors[0].message.lower()
    assert not [f for f in report.errors if "k0.mkv" in f.message or "r0.bag" in f.message]  # the others are fine
