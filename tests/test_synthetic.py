"""The synthetic RGB-D benchmark: the rule, the written format, what each modality shows, determinism and noise.

Most checks read the data back by an independent route: object pixels are found from depth (< 3.3 m), the noun from
their mean colour and the verb from the sign of the depth trend in each half of a segment, and the annotations must
agree with what those readings give through the rule.
"""
import csv
import hashlib
import math
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from r3d.config import load_config
from r3d.data.io import probe_video, read_rgb_frames  # decord, with PyAV where decord2 cannot read a width
from r3d.data import synthetic as syn
from r3d.data.synthetic import (ANNOTATION_COLUMNS, NOUN_KEYS, NOUN_RGB, VERB_KEYS, check_rule, ensure_synthetic,
                                generate, num_frames_of, plan_video, render_frames, render_recording, response_of)

REPO = Path(__file__).resolve().parents[1]
TINY = dict(videos=4, pairs_per_video=3, size=32, val_fraction=0.25, seed=5, progress=False)
OBJECT_MM = 3300  # every object pixel is nearer than this, every background pixel farther (Z_FAR + margin)
TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d\d$")


def _seconds(ts: str) -> float:
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _rows(path: Path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _object_mask(depth_mm: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: object pixels (valid and nearer than OBJECT_MM), eroded by one pixel (no rim pixels)."""
    mask = (depth_mm > 0) & (depth_mm < OBJECT_MM)
    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.erode(m.astype(np.uint8), kernel).astype(bool) for m in mask.reshape(-1, *mask.shape[-2:])]
                    ).reshape(mask.shape)


def _noun_of(rgb: np.ndarray, mask: np.ndarray) -> int:
    """Noun whose colour direction is nearest the mean colour of the object pixels; rgb (T, H, W, 3), mask (T, H, W)."""
    mean = rgb[mask].astype(np.float64).mean(0)
    refs = np.array([NOUN_RGB[k] for k in NOUN_KEYS])
    cos = refs @ mean / (np.linalg.norm(refs, axis=1) * np.linalg.norm(mean))
    return int(np.argmax(cos))


def _object_depth(depth_mm: np.ndarray) -> np.ndarray:
    """(T,) median depth (m) of the object pixels of each frame."""
    mask = _object_mask(depth_mm)
    return np.array([np.median(d[m]) for d, m in zip(depth_mm, mask)]) / 1000.0


def _verb_of(z: np.ndarray) -> int:
    """push/pull/tap/toss from the signs of the depth slope in each half of a segment."""
    half = len(z) // 2
    first = np.polyfit(np.arange(half), z[:half], 1)[0]
    second = np.polyfit(np.arange(len(z) - half), z[half:], 1)[0]
    return {(True, True): 0, (False, False): 1, (False, True): 2, (True, False): 3}[(first > 0, second > 0)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate(root, workers=1, **TINY)
    assert summary["reused"] is False
    return root


# -- the rule -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("v,n", [(4, 4), (3, 3), (5, 5), (6, 6), (4, 2), (1, 4)])
def test_rule_is_a_bijection_that_needs_both_streams(v, n):
    check_rule(v, n)
    table = {(a, b): response_of(a, b, v, n) for a in range(v) for b in range(n)}
    assert sorted(table.values()) == sorted(table)  # a permutation of the V×N pairs
    for b in range(n):  # fixed cue noun (what RGB sees): V distinct responses, each with probability 1/V
        assert len({table[a, b] for a in range(v)}) == v
    for a in range(v):  # fixed cue verb (what depth sees): N distinct responses
        assert len({table[a, b] for b in range(n)}) == n


def test_rule_by_hand_and_stream_caps():
    assert response_of(0, 0, 4, 4) == (0, 0)
    assert response_of(1, 0, 4, 4) == (1, 2)
    assert response_of(3, 2, 4, 4) == (1, 0)  # (3+2) % 4, (2+6) % 4
    # Bayes-optimal action top-1 of a stream: mean over what it sees of the largest share of one response.
    cap_rgb = np.mean([max(Counter(response_of(a, b, 4, 4) for a in range(4)).values()) / 4 for b in range(4)])
    cap_depth = np.mean([max(Counter(response_of(a, b, 4, 4) for b in range(4)).values()) / 4 for a in range(4)])
    # its noun part: RGB sees the cue noun b, and noun' = (b + 2a) % 4 takes 2 values; depth sees a, 4 values
    noun_rgb = np.mean([max(Counter(response_of(a, b, 4, 4)[1] for a in range(4)).values()) / 4 for b in range(4)])
    assert noun_rgb == 0.5
    assert cap_rgb == 0.25 and cap_depth == 0.25


def test_rule_not_a_bijection_and_bad_counts_are_errors():
    with pytest.raises(ValueError, match="not a bijection for num_verbs=2, num_nouns=3"):
        check_rule(2, 3)
    with pytest.raises(ValueError, match="num_verbs = 7"):
        check_rule(7, 4)
    with pytest.raises(ValueError, match="not a bijection"):
        generate("/nonexistent/never/written", videos=1, num_verbs=2, num_nouns=3, progress=False)


# -- the written format ---------------------------------------------------------------------------------------------
def test_annotations_match_the_format(root):
    fps, p = 8.0, TINY["pairs_per_video"]
    ann = root / "annotations"
    _, verbs = _rows(ann / "verb_classes.csv")
    _, nouns = _rows(ann / "noun_classes.csv")
    assert [(r["id"], r["key"]) for r in verbs] == [(str(i), k) for i, k in enumerate(VERB_KEYS[:4])]
    assert [(r["id"], r["key"]) for r in nouns] == [(str(i), k) for i, k in enumerate(NOUN_KEYS[:4])]
    _, actions = _rows(ann / "actions.csv")
    assert [(int(r["id"]), int(r["verb"]), int(r["noun"])) for r in actions] == \
        [(4 * v + n, v, n) for v in range(4) for n in range(4)]
    videos = {}
    for split in ("train", "val"):
        header, rows = _rows(ann / f"{split}.csv")
        assert tuple(header) == ANNOTATION_COLUMNS
        for r in rows:
            for col in ("narration_timestamp", "start_timestamp", "stop_timestamp"):
                assert TIMESTAMP.match(r[col]), (col, r[col])
            v, n = int(r["verb_class"]), int(r["noun_class"])
            assert 0 <= v < 4 and 0 <= n < 4
            verb, noun = VERB_KEYS[v], NOUN_KEYS[n]
            assert (r["verb"], r["noun"], r["narration"]) == (verb, noun, f"{verb} {noun}")
            assert (r["all_nouns"], r["all_noun_classes"]) == (f"['{NOUN_KEYS[n]}']", f"[{n}]")
            start, stop = _seconds(r["start_timestamp"]), _seconds(r["stop_timestamp"])
            assert 1.5 - 0.005 <= stop - start <= 2.5 + 0.005
            assert int(r["start_frame"]) == math.floor(start * fps + 1e-9)
            assert r["narration_id"].startswith(r["video_id"] + "_")
            videos.setdefault(r["video_id"], set()).add(split)
    # every video in exactly one split, pairs_per_video annotated responses each, 1 of 4 videos in val
    assert all(len(s) == 1 for s in videos.values()) and len(videos) == TINY["videos"]
    assert len(_rows(ann / "train.csv")[1]) == 3 * p and len(_rows(ann / "val.csv")[1]) == p
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    assert meta["depth_scale"] == 0.001 and meta["fps"] == 8.0 and meta["depth_min"] < 0.5 and meta["depth_max"] >= 4.2
    assert meta["synthetic"]["seed"] == 5 and meta["synthetic"]["rule"] == syn.RULE
    assert meta["synthetic"]["depth_noise"] == 0.0


def test_videos_and_depth_frames(root):
    _, rows = _rows(root / "annotations" / "train.csv")
    _, val = _rows(root / "annotations" / "val.csv")
    for vid in sorted({r["video_id"] for r in rows + val}):
        info = probe_video(root / "videos" / f"{vid}.mp4")
        pngs = sorted((root / "depth" / vid).glob("*.png"))
        last_stop = max(int(r["stop_frame"]) for r in rows + val if r["video_id"] == vid)
        assert info.num_frames == len(pngs) == last_stop + 1  # a video ends with its last response
        assert info.fps == pytest.approx(8.0)
        assert [p.name for p in pngs] == [f"{k:06d}.png" for k in range(len(pngs))]
        d = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
        assert d is not None and d.dtype == np.uint16 and d.shape == (32, 32)
        assert (info.height, info.width) == (32, 32)
        assert read_rgb_frames(root / "videos" / f"{vid}.mp4", [0]).shape == (1, 32, 32, 3)


def test_files_hold_the_rendered_arrays(root):
    """Video i is plan_video + render_frames with default_rng([seed, i]): PNGs round-trip exactly, mp4 closely."""
    index, vid = 1, "v0001"
    rng = np.random.default_rng([TINY["seed"], index])
    segments = plan_video(rng, TINY["pairs_per_video"], 4, 4, 8.0)
    n = segments[-1].stop_frame + 1
    rgb, depth = render_frames(segments, n, fps=8.0, size=32, depth_noise=0.0, rng=rng)
    read = np.stack([cv2.imread(str(root / "depth" / vid / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED) for k in range(n)])
    assert read.dtype == np.uint16 and np.array_equal(read, depth)
    decoded = read_rgb_frames(root / "videos" / f"{vid}.mp4", range(n))
    assert np.abs(decoded.astype(int) - rgb).mean() < 6  # mp4v at 32×32: a few grey levels


def test_responses_follow_cues_that_cover_the_window(root):
    """From the pixels alone: the window [t_s-3, t_s-1] shows only the cue, and the label is rule(cue)."""
    fps, tau = 8.0, 3.0
    for split in ("train", "val"):
        _, rows = _rows(root / "annotations" / f"{split}.csv")
        by_video = {}
        for r in rows:
            by_video.setdefault(r["video_id"], []).append(r)
        for vid, segs in by_video.items():
            n = probe_video(root / "videos" / f"{vid}.mp4").num_frames
            rgb = read_rgb_frames(root / "videos" / f"{vid}.mp4", range(n))
            depth = np.stack([cv2.imread(str(root / "depth" / vid / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
                              for k in range(n)])
            mask = _object_mask(depth)
            segs.sort(key=lambda r: _seconds(r["start_timestamp"]))
            prev_stop_t, prev_stop_f = 0.0, -1
            for r in segs:
                t_s, f_s = _seconds(r["start_timestamp"]), int(r["start_frame"])
                assert t_s - prev_stop_t >= tau + 0.5 - 1e-6  # the unannotated cue lasts τa + τo + margin
                cue = slice(prev_stop_f + 1, f_s)
                window = slice(math.floor((t_s - tau) * fps), math.floor((t_s - 1.0) * fps) + 1)
                assert window.start > prev_stop_f  # the window starts after the previous response ended
                noun = _noun_of(rgb[cue], mask[cue])
                assert all(_noun_of(rgb[k:k + 1], mask[k:k + 1]) == noun for k in range(window.start, window.stop))
                verb = _verb_of(_object_depth(depth[cue]))
                assert (int(r["verb_class"]), int(r["noun_class"])) == response_of(verb, noun, 4, 4)
                resp = slice(f_s, int(r["stop_frame"]) + 1)
                assert _noun_of(rgb[resp], mask[resp]) == int(r["noun_class"])
                prev_stop_t, prev_stop_f = _seconds(r["stop_timestamp"]), int(r["stop_frame"])


# -- what each modality shows ---------------------------------------------------------------------------------------
def _render(segments, seed=11, noise=0.0, size=32):
    n = segments[-1].stop_frame + 1
    return render_frames(segments, n, fps=8.0, size=size, depth_noise=noise, rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def long_plan():
    return plan_video(np.random.default_rng(3), 24, 4, 4, 8.0)


def test_rgb_ignores_verbs_and_depth_ignores_nouns_exactly(long_plan):
    rgb, depth = _render(long_plan)
    other_nouns = [replace(s, noun=(s.noun + 1) % 4) for s in long_plan]
    other_verbs = [replace(s, verb=(s.verb + 1) % 4) for s in long_plan]
    rgb_n, depth_n = _render(other_nouns)
    rgb_v, depth_v = _render(other_verbs)
    assert np.array_equal(depth_n, depth) and not np.array_equal(rgb_n, rgb)
    assert np.array_equal(rgb_v, rgb) and not np.array_equal(depth_v, depth)


def test_noun_in_rgb_colour_verb_in_depth_trend(long_plan):
    rgb, depth = _render(long_plan)
    mask = _object_mask(depth)
    assert {(s.verb, s.noun) for s in long_plan if s.kind == "cue"} >= {(0, 0), (1, 1)}  # the plan mixes classes
    colours, verbs_ok = {}, []
    for s in long_plan:
        f = slice(s.start_frame, s.stop_frame + 1)
        mean = rgb[f][mask[f]].astype(np.float64).mean(0) / 255
        colours.setdefault(s.noun, {}).setdefault(s.verb, []).append(mean)
        assert _noun_of(rgb[f], mask[f]) == s.noun
        verbs_ok.append(_verb_of(_object_depth(depth[f])) == s.verb)
    assert all(verbs_ok) and len(verbs_ok) == 48
    # mean object colour: nouns far apart, the same noun under different verbs nearly the same
    per_noun = {n: np.mean([c for cs in by_verb.values() for c in cs], 0) for n, by_verb in colours.items()}
    between = min(np.linalg.norm(per_noun[a] - per_noun[b]) for a in per_noun for b in per_noun if a < b)
    within = max(np.linalg.norm(np.mean(cs, 0) - per_noun[n])
                 for n, by_verb in colours.items() for cs in by_verb.values())
    assert between > 0.4 and within < 0.03


def test_rgb_object_size_is_constant_and_depth_change_is_large(long_plan):
    rgb, depth = _render(long_plan)
    x = rgb.astype(np.float64) / 255
    area = ((x.max(-1) - x.min(-1)) > 0.3).sum((1, 2))  # saturated pixels = the object (background is greyish)
    z = _object_depth(depth)
    expected = math.pi * (syn.OBJECT_RADIUS * 32) ** 2
    assert abs(area.mean() - expected) / expected < 0.1
    assert (area.max() - area.min()) / area.mean() < 0.2
    assert abs(np.corrcoef(area, z)[0, 1]) < 0.2
    near, far = area[z < 1.4].mean(), area[z > 2.4].mean()
    assert (z < 1.4).sum() > 50 and (z > 2.4).sum() > 50 and abs(near - far) / area.mean() < 0.03
    for s in long_plan:
        if s.kind == "cue" and s.verb in (0, 1):  # push / pull: ≥ 1 m over a cue, 0.6 m over the 2 s window
            zs = z[s.start_frame:s.stop_frame + 1]
            assert abs(zs[-1] - zs[0]) >= 1.0


def test_one_depth_frame_does_not_give_the_verb_away():
    """The centre depth is random per segment: at the middle of the observed window, one frame's object depth
    separates push from pull little better than chance (the trend over the window separates them always)."""
    plan = plan_video(np.random.default_rng(4), 200, 4, 4, 8.0)
    _, depth = _render(plan, size=16)
    z = _object_depth(depth)
    mid = {v: np.array([z[math.floor((r.start - 2.0) * 8)] for c, r in zip(plan[::2], plan[1::2]) if c.verb == v])
           for v in (0, 1)}
    assert min(len(m) for m in mid.values()) > 30
    best = max(max(((mid[0] < t).mean() + (mid[1] >= t).mean()) / 2, ((mid[0] >= t).mean() + (mid[1] < t).mean()) / 2)
               for t in np.linspace(0.5, 3.2, 271))
    assert best < 0.65


# -- determinism ----------------------------------------------------------------------------------------------------
def _digest(root: Path):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_any_worker_count_other_seed_differs(root, tmp_path):
    again = tmp_path / "again"
    generate(again, workers=2, **TINY)
    a, b = _digest(root), _digest(again)
    assert a == b and sum(k.endswith(".png") for k in a) > 300 and sum(k.endswith(".mp4") for k in a) == 4
    other = tmp_path / "other"
    generate(other, workers=1, **{**TINY, "seed": 6})
    c = _digest(other)
    assert c["annotations/train.csv"] != a["annotations/train.csv"]
    assert c["depth/v0000/000000.png"] != a["depth/v0000/000000.png"]


def test_complementary_frames_are_the_ones_rendered_before_modes_existed():
    """SHA-1 of the rgb + depth arrays of one clip (video 1 of seed 5, 32 px) at η = 0 and 0.5, computed with the
    single-module generator that preceded `synthetic.mode`: complementary folders written since stay valid."""
    digests = []
    for noise in (0.0, 0.5):
        rng = np.random.default_rng([5, 1])
        plan = plan_video(rng, 3, 4, 4, 8.0)
        rgb, depth = render_frames(plan, plan[-1].stop_frame + 1, fps=8.0, size=32, depth_noise=noise, rng=rng)
        digests.append(hashlib.sha1(rgb.tobytes() + depth.tobytes()).hexdigest())
    assert digests == ["9937ed553cd5d1456f95f1707e6c588b1ac5dfe4", "ad62fed5869260bf4568473cb70f081a5744ac0f"]


def test_reuse_regenerate_and_refuse(tmp_path):
    small = dict(TINY, videos=2, pairs_per_video=1)
    first = generate(tmp_path / "d", workers=1, **small)
    assert first["reused"] is False and first["train_segments"] + first["val_segments"] == 2
    mtime = (tmp_path / "d" / "annotations" / "train.csv").stat().st_mtime_ns
    again = generate(tmp_path / "d", workers=1, **small)
    assert again["reused"] is True and again["frames"] == first["frames"]
    assert (tmp_path / "d" / "annotations" / "train.csv").stat().st_mtime_ns == mtime
    noisy = generate(tmp_path / "d", workers=1, **dict(small, depth_noise=0.5))
    assert noisy["reused"] is False
    assert yaml.safe_load((tmp_path / "d" / "dataset.yaml").read_text())["synthetic"]["depth_noise"] == 0.5
    pngs = sorted((tmp_path / "d" / "depth" / "v0000").glob("*.png"))
    assert sum(int((cv2.imread(str(p), cv2.IMREAD_UNCHANGED) == 0).sum()) for p in pngs) > 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(str(foreign))):
        generate(foreign, workers=1, **small)
    assert (foreign / "notes.txt").read_text() == "mine" and not (foreign / "videos").exists()


def test_ensure_synthetic_generates_once(tmp_path):
    cfg = load_config(None, ["synthetic.videos=2", "synthetic.pairs_per_video=1", "synthetic.size=32"])
    assert ensure_synthetic(tmp_path / "s", cfg) is True
    meta = yaml.safe_load((tmp_path / "s" / "dataset.yaml").read_text())["synthetic"]
    assert (meta["videos"], meta["size"], meta["tau_a"], meta["tau_o"]) == (2, 32, cfg.data.tau_a, cfg.data.tau_o)
    assert ensure_synthetic(tmp_path / "s", cfg) is False


# -- depth noise ----------------------------------------------------------------------------------------------------
def test_depth_noise_holes_at_edges_and_noise_growing_with_depth(long_plan):
    plan = long_plan[:8]
    _, clean = _render(plan, noise=0.0, size=64)
    _, noisy = _render(plan, noise=0.6, size=64)
    assert (clean == 0).sum() == 0  # η = 0: a reading at every pixel
    assert clean.min() >= 1000 * (syn.Z_NEAR - syn.OBJECT_BULGE) - 1 and clean.max() <= 4100
    holes = noisy == 0
    assert 0.003 < holes.mean() < 0.2
    c = clean.astype(np.float64) / 1000
    edge = np.zeros(c.shape, bool)
    jump = np.abs(np.diff(c, axis=2)) > 0.15
    edge[:, :, 1:] |= jump
    edge[:, :, :-1] |= jump
    assert holes[edge].mean() > 5 * holes[~edge].mean()
    err = noisy.astype(np.float64) / 1000 - c
    for lo, hi in ((3.5, 4.2), (1.0, 2.0)):  # background plane, object
        sel = ~holes & ~edge & (c > lo) & (c < hi)
        zc = c[sel].mean()
        sigma = 0.6 * syn.NOISE_STD * zc ** 2
        step = 0.001 + 0.6 * syn.QUANT_STEP * zc ** 2
        expected = math.sqrt(sigma ** 2 + step ** 2 / 12)  # gaussian + uniform rounding error
        assert 0.75 * expected < err[sel].std() < 1.3 * expected, (lo, hi, err[sel].std(), expected)


def test_render_recording(tmp_path):
    rgb_path, depth_dir, segments = render_recording(tmp_path / "rec", seconds=10.0, seed=2, depth_noise=0.2)
    n = num_frames_of(10.0, 8.0)
    assert n == 80 and probe_video(rgb_path).num_frames == n and len(list(depth_dir.glob("*.png"))) == n
    assert segments[0].start == 0 and segments[-1].stop == 10.0 and segments[-1].stop_frame == n - 1
    assert [s.kind for s in segments] == ["cue", "response"] * (len(segments) // 2) + ["cue"] * (len(segments) % 2)
    for cue, resp in zip(segments[::2], segments[1::2]):
        assert (resp.verb, resp.noun) == response_of(cue.verb, cue.noun, 4, 4) and cue.stop_cs == resp.start_cs


# -- interfaces -----------------------------------------------------------------------------------------------------
def test_r3d_folder_loader_reads_the_output(root):
    from r3d.data.adapters.folder import folder

    info = folder(root)
    assert info.num_actions == 16 and info.verb_classes == list(VERB_KEYS[:4])
    assert len(info.segments("train")) == 9 and len(info.segments("val")) == 3
    assert info.depth_scale == 0.001


def test_cli_help_and_run(tmp_path):
    tool = str(REPO / "tools/make_synthetic.py")
    r = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("--out", "--videos", "--seed", "--depth-noise", "--size", "--fps", "--pairs-per-video", "--workers"):
        assert flag in r.stdout
    r = subprocess.run([sys.executable, tool, "--out", str(tmp_path / "c"), "--videos", "2", "--pairs-per-video", "1",
                        "--size", "32", "--workers", "1", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"train_segments": 1' in r.stdout and '"val_segments": 1' in r.stdout
