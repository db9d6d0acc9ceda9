"""The demo reads native sensor recordings directly: an Azure Kinect-style MKV (MJPEG colour + b16g depth) and a
RealSense-layout .bag, passed as --rgb with no --depth. Every frame's depth reaches the model in metres exactly as
written (mm × 0.001), and colour frame k is the one written at k / fps."""
from __future__ import annotations

import numpy as np
import pytest

from recording_fixtures import color_frame, depth_frame, write_k4a_mkv, write_realsense_bag
from r3d.engine.demo import run_demo
from r3d.engine.stream import StreamingAnticipator
from test_stream import one_thread, tiny_checkpoint  # noqa: F401  (one_thread: autouse, batch-1 frames)

FPS, N = 8, 40  # 5 s: enough for the tiny model's 2 s window


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _frames():
    depth = np.stack([depth_frame(k) for k in range(N)])
    color = np.stack([color_frame(k) for k in range(N)])
    return depth, color


def _write(kind, path):
    depth, color = _frames()
    if kind == "mkv":
        us = [k * 1_000_000 // FPS for k in range(N)]
        write_k4a_mkv(path, depth, us, color, us, fps=FPS)
    else:
        ns = [10**9 + k * 10**9 // FPS for k in range(N)]
        write_realsense_bag(path, depth, ns, color, ns, fps=FPS)
    return depth, color


@pytest.mark.parametrize("kind", ["mkv", "bag"])
def test_demo_streams_a_sensor_recording_with_its_own_depth(kind, ckpt, tmp_path, monkeypatch):
    path = tmp_path / f"rec.{kind}"
    depth, color = _write(kind, path)
    pushed = []
    original = StreamingAnticipator.push

    def record(self, rgb_frame, depth_frame=None, t=None):
        pushed.append((rgb_frame, depth_frame, t))
        return original(self, rgb_frame, depth_frame, t)

    monkeypatch.setattr(StreamingAnticipator, "push", record)
    doc = run_demo(ckpt, path, None, out=tmp_path / "pred.json", video=tmp_path / "overlay.mp4", progress=False)
    assert doc["num_frames"] == N and doc["fps"] == pytest.approx(FPS)
    assert doc["recording"]["kind"] and doc["depth"] == str(path) and doc["depth_settings"]["depth_scale"] == 0.001
    assert doc["steps"] and all(s["missing"] == [] for s in doc["steps"])  # depth paired in every window
    assert len(pushed) == N
    for k, (rgb, d, t) in enumerate(pushed):
        assert t == pytest.approx(k / FPS)
        np.testing.assert_array_equal(d, depth[k].astype(np.float32) * np.float32(0.001))  # bit-exact metres
        assert rgb.shape == color[k].shape
        assert np.abs(rgb.astype(int) - color[k].astype(int)).mean() < 3  # MJPEG / rgb8 colour, frame k itself
    assert (tmp_path / "overlay.mp4").stat().st_size > 1000


def test_depth_only_recording_needs_a_depth_model_and_an_rgb_model_is_told_why(ckpt, tmp_path):
    path = tmp_path / "depth_only.bag"
    depth, _ = _frames()
    write_realsense_bag(path, depth, [10**9 + k * 10**9 // FPS for k in range(N)], None, None, fps=FPS)
    with pytest.raises(Exception, match=r"depth_only.bag: the recording has no colour stream, and this model uses RGB"):
        run_demo(ckpt, path, None, out=None, progress=False)
    depth_ckpt = tiny_checkpoint(tmp_path / "d", "model.modalities=[depth]")
    doc = run_demo(depth_ckpt, path, None, out=None, video=tmp_path / "o.mp4", progress=False)
    assert doc["steps"] and doc["recording"]["has_rgb"] is False
