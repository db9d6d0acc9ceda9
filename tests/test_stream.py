"""Streaming anticipation (r3d/engine/stream.py, r3d/engine/demo.py, r3d/data/clip.py): the ring-buffer cache against from-scratch forward passes, the
pred.json schema, the overlay video, and depth that is misaligned, partly missing or absent."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import pytest
import torch

from conftest import TINY_MODEL
from r3d.config import load_config
from r3d.data.depth_writers import write_depth_ffv1
from r3d.data.io import PngDepthStore, read_rgb_frames
from r3d.data.synthetic import NOUN_KEYS, VERB_KEYS, render_recording
from r3d.data.transforms import build_transforms
from r3d.engine.checkpoint import config_from_meta, export_model, load_meta, load_model_weights
from r3d.data.clip import RGBDClip, open_depth_path
from r3d.engine.demo import ClipTooShort, run_demo
from r3d.engine.stream import FrameRing, StreamingAnticipator
from r3d.metrics.collapse import effective_rank
from r3d.models.anticipator import Anticipator
from r3d.viz.overlay import OverlayLayout, depth_colormap, render_overlay

FPS = 8.0  # render_recording's default; T = 8 frames every 0.25 s -> first full window at frame 14, stride 2
NUM_CLASSES = {"verb": 4, "noun": 4, "action": 16}
ACTIONS = [[v, n] for v in range(4) for n in range(4)]


def tiny_checkpoint(out: Path, *overrides: str, seed: int = 0) -> Path:
    """Random weights of a tiny model exported like tools/train.py does (model.safetensors + model.json)."""
    cfg = load_config(None, [*TINY_MODEL, *overrides])
    torch.manual_seed(seed)
    model = Anticipator(cfg, NUM_CLASSES, actions=ACTIONS)
    meta = {"config": cfg.to_dict(), "num_classes": NUM_CLASSES, "verb_classes": list(VERB_KEYS[:4]),
            "noun_classes": list(NOUN_KEYS[:4]), "actions": ACTIONS}
    export_model(model, meta, out)
    return out


def render_clip(out: Path, seconds: float = 6.0, seed: int = 1):
    """(rgb.mp4, depth PNG folder, (T, H, W) uint16 mm) of a rendered recording, 32x32 at 8 fps."""
    rgb, depth_dir, _ = render_recording(out, seconds=seconds, seed=seed, size=32)
    store = PngDepthStore(depth_dir, 0.001)
    mm = np.round(store.read(np.arange(store.num_frames)) * 1000).astype(np.uint16)
    return rgb, depth_dir, mm


@pytest.fixture(autouse=True)
def one_thread():
    """Batch-1 frames on a shared 2-core machine: one intra-op thread is ~50x faster than two under load."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def ckpt_ebr(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt_ebr"), "model.ebr.enabled=true", "model.ebr.dim=16",
                           "model.ebr.hidden=32", seed=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return render_clip(tmp_path_factory.mktemp("clip"))


def reference_model(checkpoint: Path) -> Anticipator:
    """An independent copy of the checkpoint's model for from-scratch forward passes."""
    meta = load_meta(checkpoint)
    model = Anticipator(config_from_meta(meta), meta["num_classes"], actions=meta["actions"])
    load_model_weights(model, checkpoint)
    model.cfg = config_from_meta(meta)
    return model.eval()


def scratch_forward(model: Anticipator, rgb_path: Path, depth_m: Optional[np.ndarray], window, depth_ok: bool):
    """`model(batch)` on the window's frames, read and transformed the way the dataset does it."""
    tf = build_transforms(model.cfg.data, 0.2, 4.5, train=False)
    res = tf({"rgb": read_rgb_frames(rgb_path, window), "depth": None if depth_m is None else depth_m[window],
              "rng": None})
    t, s = len(window), res["rgb"].shape[-1]
    depth = res["depth"] if res["depth"] is not None and depth_ok else torch.zeros(t, 1, s, s)
    batch = {"rgb": res["rgb"][None], "depth": depth[None],
             "present": {"rgb": torch.tensor([True]), "depth": torch.tensor([depth_ok])}}
    with torch.inference_mode():
        return model(batch)


def stream_and_compare(checkpoint: Path, rgb: Path, depth, depth_m_for_scratch, **clip_kw):
    """Stream the clip; at every step compare logits and eranks with a from-scratch pass. Returns (engine, preds)."""
    ref = reference_model(checkpoint)
    clip = RGBDClip(rgb, depth, **clip_kw)
    engine = StreamingAnticipator.from_checkpoint(checkpoint, clip.fps)
    first, stride = engine.first_ready_frame(), engine.default_stride()
    preds = []
    for k, t, frame, dframe in clip.frames():
        engine.push(frame, dframe, t)
        if k >= first and (k - first) % stride == 0:
            p = engine.predict()
            window = np.asarray(p["window"])
            depth_ok = depth is not None and bool((clip.depth_index[window] >= 0).all())
            ref_out = scratch_forward(ref, rgb, depth_m_for_scratch, window, depth_ok)
            for key in ("verb", "noun", "action"):
                torch.testing.assert_close(p["logits"][key], ref_out["logits"][key][0].float(), rtol=1e-4,
                                           atol=1e-5)
            assert p["erank"]["rgb"] == pytest.approx(float(effective_rank(ref_out["tokens_pre"]["rgb"][0])),
                                                      rel=1e-4)
            assert p["erank"]["fused"] == pytest.approx(float(effective_rank(ref_out["fused"][0])), rel=1e-4)
            assert (p["missing"] == []) == depth_ok
            preds.append(p)
    return engine, clip, preds


# -- the cache is right ------------------------------------------------------------------------------------------------
def test_streaming_equals_from_scratch_forward(ckpt, clip):
    rgb, depth_dir, mm = clip
    engine, c, preds = stream_and_compare(ckpt, rgb, depth_dir, mm.astype(np.float32) / 1000)
    n = c.num_frames
    assert n == 48 and engine.first_ready_frame() == 14 and engine.default_stride() == 2
    assert [p["frame"] for p in preds] == list(range(14, 48, 2))
    # windows follow the training protocol: T = 8 frames, 0.25 s (2 frames) apart, ending at the current frame
    assert preds[0]["window"] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert all(p["window"][-1] == p["frame"] for p in preds)
    # every frame went through each backbone exactly once: the history was never re-encoded
    assert engine.backbone_passes == {"rgb": n, "depth": n}
    assert engine.backbone_mode == {"rgb": "cached", "depth": "cached"}
    assert engine.capacity == 16  # ceil(7 * 0.25 s * 8 fps) + 2


def test_missing_depth_frames_with_ebr_equal_from_scratch_substitution(ckpt_ebr, clip, tmp_path):
    rgb, depth_dir, mm = clip
    holes = tmp_path / "depth"
    shutil.copytree(depth_dir, holes)
    for k in (20, 21, 33):  # dropped frames: gaps in the PNG numbering
        (holes / f"{k:06d}.png").unlink()
    engine, c, preds = stream_and_compare(ckpt_ebr, rgb, holes, mm.astype(np.float32) / 1000)
    assert c.alignment.rgb_frames_without_depth == 3
    for p in preds:
        lo, hi = p["window"][0], p["window"][-1]
        gap_in_window = sorted({k for k in (20, 21, 33) if k in p["window"]})
        assert p["depth_missing_frames"] == gap_in_window
        assert (p["missing"] == ["depth"]) == bool(gap_in_window), (lo, hi)
        assert p["substituted"] == (["depth"] if gap_in_window else [])
        assert (p["erank"]["depth"] is None) == bool(gap_in_window)
    # frames 20 and 21 sit at even (sampled) and odd (never sampled) positions: only 20, 33 fall into windows
    assert sum(1 for p in preds if p["missing"]) == sum(1 for p in preds if {20} & set(p["window"])) + \
        sum(1 for p in preds if {33} & set(p["window"]))
    assert engine.backbone_passes == {"rgb": 48, "depth": 45}


def test_inflated3d_is_recomputed_over_the_window_and_matches(tmp_path, clip):
    ck = tiny_checkpoint(tmp_path / "ck3d", "model.rgb_backbone.kind=inflated3d")
    rgb, depth_dir, mm = clip
    engine, _, preds = stream_and_compare(ck, rgb, depth_dir, mm.astype(np.float32) / 1000)
    assert engine.backbone_mode == {"rgb": "recompute", "depth": "cached"}
    assert engine.backbone_passes == {"rgb": 8 * len(preds), "depth": 48}


def test_ring_buffer_evicts_and_refuses_stale_frames():
    ring = FrameRing(4, ["rgb", "depth"])
    for k in range(10):
        ring.put(k, {"rgb": torch.full((3,), float(k)), "depth": None if k % 3 == 0 else torch.full((2,), -k)})
    out, present = ring.get([6, 7, 9])
    assert out["rgb"][:, 0].tolist() == [6.0, 7.0, 9.0]
    assert present["depth"].tolist() == [False, True, False]
    with pytest.raises(KeyError, match="not in the ring buffer"):
        ring.get([5, 9])


# -- pred.json and the overlay ---------------------------------------------------------------------------------------
def check_schema(doc: dict, topk: int) -> None:
    assert set(doc) >= {"checkpoint", "rgb", "depth", "modalities", "fps", "num_frames", "window", "stride", "topk",
                        "backbone_mode", "missing_depth", "alignment", "warnings", "steps", "summary"}
    assert isinstance(doc["warnings"], list) and all(isinstance(w, str) for w in doc["warnings"])
    assert set(doc["summary"]) >= {"frames", "steps", "seconds", "frames_per_second", "out", "video"}
    assert doc["summary"]["steps"] == len(doc["steps"])
    for i, s in enumerate(doc["steps"]):
        assert set(s) == {"step", "frame", "time", "window_start", "window", "missing", "depth_missing_frames",
                          "substituted", "topk", "erank"}
        assert s["step"] == i and isinstance(s["frame"], int) and isinstance(s["time"], float)
        assert s["time"] == pytest.approx(s["frame"] / doc["fps"], abs=1e-4)
        assert s["window_start"] == pytest.approx(s["window"][0] / doc["fps"], abs=1e-4)
        assert len(s["window"]) == doc["window"]["num_frames"] and s["window"][-1] == s["frame"]
        assert all(isinstance(x, int) for x in s["window"] + s["depth_missing_frames"])
        assert set(s["missing"]) <= {"rgb", "depth"} and set(s["substituted"]) <= set(s["missing"])
        assert len(s["topk"]) == topk
        probs = [a["prob"] for a in s["topk"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
        for a in s["topk"]:
            assert set(a) == {"action", "verb_id", "noun_id", "verb", "noun", "prob"}
            assert a["verb"] == VERB_KEYS[a["verb_id"]] and a["noun"] == NOUN_KEYS[a["noun_id"]]
            assert ACTIONS[a["action"]] == [a["verb_id"], a["noun_id"]]
        assert set(s["erank"]) == {"rgb", "depth", "fused"}
        for m, v in s["erank"].items():
            assert v is None or (isinstance(v, float) and 1.0 <= v <= doc["window"]["num_frames"]), (m, v)


def test_pred_json_schema_and_overlay_video(ckpt, clip, tmp_path):
    import json

    rgb, depth_dir, _ = clip
    out, video = tmp_path / "pred.json", tmp_path / "overlay.mp4"
    doc = run_demo(ckpt, rgb, depth_dir, out=out, video=video, topk=3, progress=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    check_schema(doc, topk=3)
    assert [s["frame"] for s in doc["steps"]] == list(range(14, 48, 2))
    assert doc["warnings"] == [] and doc["alignment"]["matched_by"] == "index"
    assert all(s["missing"] == [] and s["erank"]["depth"] is not None for s in doc["steps"])

    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    layout = OverlayLayout((32, 32), topk=3)
    assert len(frames) == 48 == doc["num_frames"]
    assert frames[0].shape == (layout.height, 640, 3) and layout.width == 640
    # the RGB panel shows the frame: its mean colour matches the (upscaled) input frame
    src = read_rgb_frames(rgb, [30])[0].astype(np.float32)
    panel = cv2.cvtColor(frames[30][40:layout.panel_h, :320], cv2.COLOR_BGR2RGB).astype(np.float32)
    assert np.abs(panel.reshape(-1, 3).mean(0) - src[4:].reshape(-1, 3).mean(0)).max() < 12


# -- input handling ----------------------------------------------------------------------------------------------------
def test_depth_at_another_frame_rate_is_matched_by_timestamp(ckpt, clip, tmp_path):
    rgb, _, mm = clip
    half = tmp_path / "depth.npz"
    np.savez(half, depth=mm[::2])  # the depth camera ran at 4 fps: 24 frames for 48 RGB frames
    c = RGBDClip(rgb, half, depth_settings={"depth_fps": 4.0})
    a = c.alignment
    assert (a.matched_by, a.depth_frames, a.depth_fps, a.rgb_frames_without_depth) == ("timestamp", 24, 4.0, 0)
    assert c.depth_index.tolist() == [k // 2 for k in range(48)]
    assert any("4 fps" in m and "8 fps" in m for m in a.mismatch)
    for k, _, _, d in c.frames():  # RGB frame k carries depth frame k // 2 (the last one at or before its time)
        np.testing.assert_allclose(d, mm[k - k % 2].astype(np.float32) / 1000, rtol=0, atol=1e-6)
    doc = run_demo(ckpt, rgb, half, out=None, depth_fps=4.0, progress=False)
    assert doc["alignment"]["matched_by"] == "timestamp" and all(s["missing"] == [] for s in doc["steps"])
    assert any("matched by timestamp" in w for w in doc["warnings"])
    # an FFV1 .mkv knows its own rate (no --depth-fps needed) and is decoded forward-only, once per frame
    mkv = write_depth_ffv1(tmp_path / "depth.mkv", mm[:20:2], fps=4.0)  # ... and stops after 2.5 s
    doc = run_demo(ckpt, rgb, mkv, out=None, progress=False)
    a = doc["alignment"]
    assert (a["matched_by"], a["depth_fps"], a["depth_frames"], a["rgb_frames_without_depth"]) == \
        ("timestamp", 4.0, 10, 28)
    assert any("depth covers 2.50 s (10 frames), RGB 6.00 s (48 frames)" in w for w in doc["warnings"])
    assert [s["frame"] for s in doc["steps"] if not s["missing"]] == [14, 16, 18]


def test_fewer_depth_frames_and_empty_frames_are_missing_and_counted(ckpt, clip, tmp_path):
    rgb, _, mm = clip
    short = mm[:40].copy()
    short[24] = 0  # a depth frame without any valid reading
    path = tmp_path / "short.npz"
    np.savez_compressed(path, depth=short)
    doc = run_demo(ckpt, rgb, path, out=None, progress=False)
    a = doc["alignment"]
    assert (a["matched_by"], a["depth_frames"], a["rgb_frames_without_depth"], a["empty_depth_frames"]) == \
        ("index", 40, 8, 1)
    assert any("40 depth frames for 48 RGB frames" in w for w in doc["warnings"])
    assert any("8 of 48 RGB frames have no depth" in w for w in doc["warnings"])
    assert any("1 depth frames have no valid reading" in w for w in doc["warnings"])
    missing = {24, *range(40, 48)}
    for s in doc["steps"]:
        expect = sorted(missing & set(s["window"]))
        assert s["depth_missing_frames"] == expect
        assert s["missing"] == (["depth"] if expect else [])
        assert s["substituted"] == []  # no EBR in this checkpoint: zeros + mask
    assert doc["missing_depth"] == "zeros"
    assert doc["summary"]["steps_with_missing_depth"] == sum(1 for s in doc["steps"] if s["missing"])
    assert doc["summary"]["backbone_passes"] == {"rgb": 48, "depth": 39}


def test_no_depth_is_rgb_only_with_a_warning(ckpt_ebr, clip):
    rgb, _, _ = clip
    seen = []
    doc = run_demo(ckpt_ebr, rgb, None, out=None, progress=False, warn=seen.append)
    assert any("no --depth given: RGB-only inference" in w and "EBR" in w for w in seen)
    assert seen == doc["warnings"]
    assert len(doc["steps"]) == 17
    assert all(s["missing"] == ["depth"] and s["substituted"] == ["depth"] and s["erank"]["depth"] is None
               for s in doc["steps"])
    assert doc["alignment"]["rgb_frames_without_depth"] == 48 and doc["alignment"]["depth_path"] is None


def test_clip_shorter_than_one_window_is_a_clear_error(ckpt, tmp_path):
    rgb, depth_dir, _ = render_clip(tmp_path / "short", seconds=1.5)  # 12 frames; the first window ends at frame 14
    with pytest.raises(ClipTooShort, match=r"1\.50 s \(12 frames at 8 fps\), shorter than one observation window.*"
                                           r"at least 1\.88 s"):
        run_demo(ckpt, rgb, depth_dir, out=None, progress=False)


def test_open_depth_path_kinds(clip, tmp_path):
    _, depth_dir, mm = clip
    np.save(tmp_path / "d.npy", mm)
    for p in (depth_dir, tmp_path / "d.npy"):
        store = open_depth_path(p, 0.001)
        np.testing.assert_allclose(store.read([3])[0], mm[3] * 0.001, atol=1e-6)
    with pytest.raises(Exception, match="unknown depth file type"):
        open_depth_path(Path(__file__), 0.001)


def test_overlay_depth_holes_black_and_missing_depth_panel():
    d = np.full((8, 8), 2.0, np.float32)
    d[0, 0], d[1, 1], d[2, 2] = 0.0, np.nan, 9.0  # no reading, non-finite, beyond depth_max: all holes
    img = depth_colormap(d, 0.2, 4.5)
    holes = np.zeros((8, 8), bool)
    holes[0, 0] = holes[1, 1] = holes[2, 2] = True
    assert (img[holes] == 0).all() and (img[~holes].max(-1) > 0).all()
    layout = OverlayLayout((32, 32), topk=2)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red
    pred = {"frame": 20, "time": 2.5, "window_start": 0.75, "missing": ["depth"], "substituted": ["depth"],
            "topk": [{"action": 1, "verb": "push", "noun": "green", "prob": 0.75},
                     {"action": 2, "verb": "pull", "noun": "blue", "prob": 0.25}]}
    out = render_overlay(layout, rgb, None, pred, [(2.5, 1, True)], t=2.5, frame_index=20, duration=5.0,
                         depth_range=(0.2, 4.5), topk=2, window_seconds=2.0)
    assert out.shape == (layout.height, 640, 3)
    lower = slice(40, layout.panel_h)
    assert (out[lower, 330:630] == 45).all()  # the depth panel is flat grey when depth is missing
    assert (out[lower, 10:310] == (0, 0, 200)).all()  # BGR of the red frame
