"""tools/demo.py end to end (a subprocess, as a user runs it): the bundled sample clip, the summary line, pred.json and
the overlay video; RGB-only with a warning; exit code 2 and a clear message for a clip shorter than one window."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from conftest import REPO, run_tool
from r3d.data.io import NpzDepthStore, probe_video
from r3d.data.clip import sample_clip
from r3d.viz.overlay import OverlayLayout
from test_stream import check_schema, render_clip, tiny_checkpoint

DEMO = REPO / "tools" / "demo.py"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("demo_ckpt"))


def test_help_explains_the_tool():
    r = run_tool([DEMO, "--help"])
    for word in ("--checkpoint", "--rgb", "--depth", "--out", "--video", "--stride", "--topk", "--depth-scale",
                 "--depth-fps", "--sample", "ring buffer", "inflated3d", "timestamp", "EBR", "Exit codes"):
        assert word in r.stdout, word


def test_sample_clip_is_small_and_consistent():
    rgb, depth = sample_clip()
    size = sum(p.stat().st_size for p in rgb.parent.iterdir())
    assert size < 300 * 1024
    info = probe_video(rgb)
    store = NpzDepthStore(depth, 0.001)
    assert (info.num_frames, info.fps, info.height, info.width) == (96, 8.0, 64, 64)
    assert store.num_frames == 96 and store.read([0]).shape == (1, 64, 64)


@pytest.mark.slow
def test_demo_on_the_bundled_sample_writes_json_video_and_summary(ckpt, tmp_path):
    out, video = tmp_path / "pred.json", tmp_path / "overlay.mp4"
    r = run_tool([DEMO, "--checkpoint", ckpt, "--sample", "--out", out, "--video", video, "--topk", "3"])
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("96 frames, 41 steps, ") and "frames/s" in line  # steps at frames 14, 16, ..., 94
    assert line.endswith(f"wrote {out}, {video}")
    doc = json.loads(out.read_text())
    check_schema(doc, topk=3)
    assert [s["frame"] for s in doc["steps"]] == list(range(14, 96, 2))
    assert doc["warnings"] == [] and doc["alignment"]["depth_kind"] == "npz"
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and n == 96 and frame.shape == (OverlayLayout((64, 64), topk=3).height, 640, 3)


@pytest.mark.slow
def test_demo_rgb_only_warns_and_too_short_clip_exits_2(ckpt, tmp_path):
    rgb, _, _ = render_clip(tmp_path / "clip", seconds=3.0)
    out = tmp_path / "pred.json"
    r = run_tool([DEMO, "--checkpoint", ckpt, "--rgb", rgb, "--out", out, "--no-progress"])
    assert "warning: no --depth given: RGB-only inference" in r.stderr
    doc = json.loads(out.read_text())
    assert len(doc["steps"]) == 5 and all(s["missing"] == ["depth"] for s in doc["steps"])  # frames 14..22

    short, depth, _ = render_clip(tmp_path / "short", seconds=1.0)
    r = run_tool([DEMO, "--checkpoint", ckpt, "--rgb", short, "--depth", depth, "--out", tmp_path / "no.json"],
                 check=False)
    assert r.returncode == 2
    assert "shorter than one observation window" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "no.json").exists()


def test_missing_checkpoint_exits_2(tmp_path):
    r = run_tool([DEMO, "--checkpoint", tmp_path / "nope", "--sample", "--out", tmp_path / "p.json"], check=False)
    assert r.returncode == 2 and "checkpoint not found" in r.stderr
