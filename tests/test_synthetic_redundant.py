"""The synthetic benchmark's redundant mode: each stream shows the whole cue, each stream's extra cue is invisible in
the other stream, and the mode is deterministic, recorded and kept apart from complementary folders.

The readers here find the cues by hand-made rules, independent of the renderer: in RGB the disc is the saturated
pixels (the background is greyish), the noun the nearest colour direction of those pixels and the verb the nearest
grey level of the pixels at the disc's centre; in depth the silhouette is every pixel nearer than the background, the
noun follows from its bounding box (square 0.48 × 0.48 of the frame, plus 0.66 × 0.66, hbar 0.68 × 0.36 — the disc's
diameter —, vbar 0.36 × 0.68) and the verb from the depth trend of the disc in each half of a segment.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from r3d.benchmark import GridSpec, run_grid
from r3d.config import load_config
from r3d.data.synthetic import (CORE_RADIUS, NOUN_KEYS, NOUN_RGB, OBJECT_RADIUS, ensure_synthetic, generate,
                                plan_video, render_frames, render_recording)
from r3d.data.synthetic import render as render_module

REPO = Path(__file__).resolve().parents[1]
TINY = dict(videos=4, pairs_per_video=3, size=32, val_fraction=0.25, seed=5, progress=False)
BACKGROUND_MM = 3400  # the disc and the body are nearer than this, the background plane is farther
GREYS = (0.05, 0.35, 0.65, 0.95)  # the core's grey of verbs 0..3 of 4: evenly spaced from 0.05 to 0.95
SHAPES = {(0.48, 0.48): 0, (0.66, 0.66): 1, (0.68, 0.36): 2, (0.36, 0.68): 3}  # silhouette (width, height) -> noun


def _render(plan, mode, seed=11, noise=0.0, size=32):
    n = plan[-1].stop_frame + 1
    return render_frames(plan, n, fps=8.0, size=size, depth_noise=noise, rng=np.random.default_rng(seed), mode=mode)


def _read_at(rgb, depth, size):
    """Frames as the loader reads them at `size`: RGB area-averaged, depth nearest-neighbour."""
    if rgb.shape[1] == size:
        return rgb, depth
    small = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in rgb]
    near = [cv2.resize(d, (size, size), interpolation=cv2.INTER_NEAREST_EXACT) for d in depth]
    return np.stack(small), np.stack(near)


@pytest.fixture(scope="module")
def plan():
    return plan_video(np.random.default_rng(3), 24, 4, 4, 8.0)


# -- readers ----------------------------------------------------------------------------------------------------------
def _rgb_cue(rgb):
    """(verb, noun) from RGB frames (T, H, W, 3) of one segment."""
    x = rgb.astype(np.float64) / 255
    size = rgb.shape[1]
    yy, xx = np.mgrid[0:size, 0:size]
    greys, colours = [], []
    for f in x:
        ring = (f.max(-1) - f.min(-1)) > 0.3
        cx, cy = xx[ring].mean(), yy[ring].mean()
        core = np.hypot(xx - cx, yy - cy) < CORE_RADIUS * OBJECT_RADIUS * size - 1
        greys.append(f[core].mean())
        colours.append(f[ring].mean(0))
    verb = int(np.argmin([abs(np.median(greys) - g) for g in GREYS]))
    mean = np.mean(colours, 0)
    refs = np.array([NOUN_RGB[k] for k in NOUN_KEYS[:4]])
    noun = int(np.argmax(refs @ mean / np.linalg.norm(refs, axis=1)))
    return verb, noun


def _shape_of(near):
    """Noun from a silhouette (H, W) bool: the nearest (width, height) of its bounding box in SHAPES."""
    ys, xs = np.nonzero(near)
    size = near.shape[0]
    wh = np.array([(xs.max() - xs.min() + 1) / size, (ys.max() - ys.min() + 1) / size])
    return min(SHAPES.items(), key=lambda kv: np.abs(np.array(kv[0]) - wh).max())[1], wh


def _depth_cue(depth):
    """(verb, noun) from depth frames (T, H, W) uint16 mm of one segment; also every frame's silhouette size."""
    nouns, sizes, z = [], [], []
    for d in depth:
        near = (d > 0) & (d < BACKGROUND_MM)
        noun, wh = _shape_of(near)
        nouns.append(noun)
        sizes.append(wh)
        disc = near & (d <= d[near].min() + 70)  # the disc spans 40 mm; the body is 100 mm behind its rim
        z.append(np.median(d[disc]) / 1000)
    half = len(z) // 2
    first = np.polyfit(np.arange(half), z[:half], 1)[0]
    second = np.polyfit(np.arange(len(z) - half), z[half:], 1)[0]
    verb = {(True, True): 0, (False, False): 1, (False, True): 2, (True, False): 3}[(first > 0, second > 0)]
    assert len(set(nouns)) == 1, sizes  # every frame of the segment shows the same silhouette
    return verb, nouns[0]


# -- what each stream shows -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("render_size,read_size", [(32, 32), (64, 32)])
def test_each_stream_alone_shows_the_whole_cue(plan, render_size, read_size):
    """At the size the main config reads (32 px, rendered at 64 or 32), RGB alone and depth alone give every
    segment's (verb, noun)."""
    plan = plan[:20]
    rgb, depth = _read_at(*_render(plan, "redundant", size=render_size), read_size)
    assert {s.verb for s in plan} == {s.noun for s in plan} == {0, 1, 2, 3}  # the plan mixes the classes
    for s in plan:
        f = slice(s.start_frame, s.stop_frame + 1)
        assert _rgb_cue(rgb[f]) == (s.verb, s.noun), s
        assert _depth_cue(depth[f]) == (s.verb, s.noun), s


def test_modes_differ_only_on_the_core_in_rgb_and_the_body_in_depth(plan):
    """Same plan and generator: the redundant frames are the complementary ones plus the grey core (RGB) and the
    body 100 mm behind the disc's rim, outside the disc (depth)."""
    rgb_c, depth_c = _render(plan, "complementary")
    rgb_r, depth_r = _render(plan, "redundant")
    size, radius = 32, OBJECT_RADIUS * 32
    yy, xx = np.mgrid[0:size, 0:size]
    for t in range(len(rgb_c)):
        disc = depth_c[t] < 3300  # complementary depth: only the disc is nearer than the background
        cx, cy = xx[disc].mean(), yy[disc].mean()
        dist = np.hypot(xx - cx, yy - cy)
        changed = (rgb_r[t] != rgb_c[t]).any(-1)
        assert dist[changed].max() < CORE_RADIUS * radius + 1.5
        assert changed[dist < CORE_RADIUS * radius - 1].all()
        moved = depth_r[t] != depth_c[t]
        assert not (moved & disc).any() and (depth_c[t][moved] > BACKGROUND_MM).all()
        body = depth_r[t][moved].astype(int) - int(depth_c[t][disc].max())
        assert moved.sum() > 10 and body.min() >= 99 and body.max() <= 140, (t, body.min(), body.max())


@pytest.mark.parametrize("swap", ["body", "grey"])
def test_each_streams_extra_cue_is_invisible_in_the_other(plan, monkeypatch, swap):
    """Re-rendering with other nouns' bodies gives the same RGB bytes; with other verbs' greys the same depth bytes
    (with depth noise, whose draws do not depend on the scene)."""
    rgb, depth = _render(plan, "redundant", noise=0.5)
    if swap == "body":
        body = render_module.body_mask
        monkeypatch.setattr(render_module, "body_mask", lambda noun, u, v: body((noun + 1) % 4, u, v))
    else:
        grey = render_module.verb_grey
        monkeypatch.setattr(render_module, "verb_grey", lambda verb, n: grey((verb + 1) % n, n))
    rgb2, depth2 = _render(plan, "redundant", noise=0.5)
    same, other = (rgb, rgb2), (depth, depth2)
    if swap == "grey":
        same, other = other, same
    assert np.array_equal(*same) and not np.array_equal(*other)


# -- writing, determinism and the mode's record -----------------------------------------------------------------------
def _digest(root: Path):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_redundant_output_is_deterministic_recorded_and_shares_the_annotations(tmp_path):
    red = generate(tmp_path / "r1", workers=1, mode="redundant", **TINY)
    generate(tmp_path / "r2", workers=2, mode="redundant", **TINY)
    generate(tmp_path / "c", workers=1, **TINY)
    a, b, c = _digest(tmp_path / "r1"), _digest(tmp_path / "r2"), _digest(tmp_path / "c")
    assert red["reused"] is False and a == b
    for name in ("train.csv", "val.csv", "actions.csv", "verb_classes.csv", "noun_classes.csv"):
        assert a[f"annotations/{name}"] == c[f"annotations/{name}"]  # the plans do not depend on the mode
    assert a["depth/v0000/000000.png"] != c["depth/v0000/000000.png"]
    assert a["videos/v0000.mp4"] != c["videos/v0000.mp4"]
    block_r = yaml.safe_load((tmp_path / "r1" / "dataset.yaml").read_text())["synthetic"]
    block_c = yaml.safe_load((tmp_path / "c" / "dataset.yaml").read_text())["synthetic"]
    assert block_r.pop("mode") == "redundant" and "mode" not in block_c and block_r == block_c
    # a folder in the other mode is regenerated, not reused
    again = generate(tmp_path / "c", workers=1, mode="redundant", **TINY)
    assert again["reused"] is False and _digest(tmp_path / "c") == a
    assert generate(tmp_path / "c", workers=1, mode="redundant", **TINY)["reused"] is True


def test_bad_mode_and_mode_mismatch_are_errors(tmp_path):
    with pytest.raises(ValueError, match="synthetic.mode = 'mixed': must be one of complementary, redundant"):
        generate(tmp_path / "x", workers=1, mode="mixed", **TINY)
    with pytest.raises(ValueError, match="synthetic.mode = 'mixed'"):
        render_recording(tmp_path / "rec", seconds=2.0, seed=0, mode="mixed")
    small = ["synthetic.videos=2", "synthetic.pairs_per_video=1", "synthetic.size=32"]
    assert ensure_synthetic(tmp_path / "s", load_config(None, small)) is True  # complementary, the default
    red = load_config(None, [*small, "synthetic.mode=redundant"])
    with pytest.raises(ValueError, match=f"{tmp_path / 's'}: holds the synthetic benchmark in mode 'complementary', "
                                         f"but synthetic.mode = 'redundant'"):
        ensure_synthetic(tmp_path / "s", red)
    assert ensure_synthetic(tmp_path / "r", red) is True
    assert yaml.safe_load((tmp_path / "r" / "dataset.yaml").read_text())["synthetic"]["mode"] == "redundant"
    assert ensure_synthetic(tmp_path / "r", red) is False


def test_render_recording_in_redundant_mode(tmp_path):
    _, depth_dir, segments = render_recording(tmp_path / "rec", seconds=6.0, seed=2, size=32, mode="redundant")
    depth = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(depth_dir.glob("*.png"))])
    s = segments[0]
    assert _depth_cue(depth[s.start_frame:s.stop_frame + 1])[1] == s.noun


def test_cli_mode(tmp_path):
    tool = str(REPO / "tools/make_synthetic.py")
    r = subprocess.run([sys.executable, tool, "--out", str(tmp_path / "c"), "--videos", "2", "--pairs-per-video", "1",
                        "--size", "32", "--workers", "1", "--quiet", "--mode", "redundant"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["train_segments"] == 1
    assert yaml.safe_load((tmp_path / "c" / "dataset.yaml").read_text())["synthetic"]["mode"] == "redundant"
    r = subprocess.run([sys.executable, tool, "--out", str(tmp_path / "d"), "--mode", "mixed"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice: 'mixed'" in r.stderr


def test_the_grid_renders_its_datasets_in_the_configured_mode(tmp_path):
    seen = []

    class Stop(Exception):
        """Ends the grid at the first dataset it renders."""

    def generate_fn(root, **kw):
        seen.append(kw)
        raise Stop

    spec = GridSpec(variants=["concat"], noise=[0.5], seeds=[0], config=str(REPO / "configs/synthetic.yaml"),
                    overrides=["synthetic.mode=redundant"])
    with pytest.raises(Stop):
        run_grid(spec, tmp_path, progress=False, train_fn=lambda *a, **k: {}, test_fn=lambda *a, **k: {},
                 generate_fn=generate_fn)
    assert seen[0]["mode"] == "redundant" and seen[0]["depth_noise"] == 0.5
