"""The embedded synthetic RGB-D anticipation benchmark: a dataset that no single modality can solve.

Each video is a sequence of (cue, response) pairs. A cue is a random (verb, noun), uniform over all V×N pairs; the
response that follows is ``rule(cue)``, a bijection on pairs (`response_of`). Only responses are annotated, so a
response at t_s is anticipated from the window ``[t_s − τa − τo, t_s − τa]``, which lies inside its cue (cues last
τa + τo + 0.5 … τa + τo + 1.5 s, responses 1.5 … 2.5 s). A cue shows its noun only in RGB and its verb only in depth:

- noun: the colour of one object (a disc of the same size and shading for every noun, `NOUN_KEYS` / `NOUN_RGB`);
- verb: the object's motion along the optical axis (`VERB_KEYS`: push = away, pull = toward, tap = toward then away,
  toss = away then toward, shake = back and forth, hold = still). The camera is orthographic, so the RGB disc never
  changes size with depth; its depth centre is random per segment, so one frame does not give the verb away.

Everything else is random and independent of the classes: a textured low-saturation RGB background and a tilted depth
plane (3.4–4.1 m) per video, a smooth lateral path of the object per video, a per-frame brightness flicker. The random
draws never depend on the classes, so re-rendering a plan with other nouns gives the same depth bytes and with other
verbs the same RGB bytes (tests/test_synthetic.py checks both).

Rule (`RULE`): verb' = (verb + noun) mod V, noun' = (noun + 2·verb) mod N. Since it is a bijection, a stream that
sees only the cue noun (RGB) is left with V equally likely responses, and one that sees only the cue verb (depth)
with N: action top-1 is capped at 1/V and 1/N (25 % for the 4×4 default), while RGB + depth determine the response.
For V = N = 4 the per-stream caps of the parts are: RGB-only verb 1/4, noun 1/2; depth-only verb 1/4, noun 1/4.
`check_rule` raises for V/N combinations where the rule is not a bijection (e.g. V = 2, N = 3).

Depth noise (`depth_noise` η, 0 = clean … 1 = heavy), Kinect-like: gaussian with std η·0.006·z² m, quantisation to
steps of 1 mm + η·0.00285·z² m (Kinect disparity steps at η = 1), holes (0 = no reading): random pixels (1 %·η),
pixels at depth discontinuities (60 %·η), Poisson(1.5·η) blobs per frame, and readings outside the valid range.
At η = 0 the depth is exact to the millimetre and has no holes.

Output (DATA-FORMAT.md): ``videos/<id>.mp4`` (mp4v), ``depth/<id>/%06d.png`` (uint16 mm), ``annotations/{train,val,
verb_classes,noun_classes,actions}.csv`` and ``dataset.yaml`` (depth facts, fps and a ``synthetic:`` block with every
generator parameter). Output is a function of the parameters only: video i (id ``v%04d``) is
``plan_video`` + ``render_frames`` with its own generator ``np.random.default_rng([seed, i])``, so the worker count
does not matter, and the CSVs, PNGs and mp4s are byte-identical across runs. The val videos are a seeded choice.
"""
from __future__ import annotations

import csv
import math
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from .depth_writers import write_depth_png16
from .protocols import frame_at

PathLike = Union[str, os.PathLike]

GENERATOR = "r3d.data.synthetic"
GENERATOR_VERSION = 1  # bump when the rendering changes, so that older outputs are regenerated rather than reused

# -- classes and the rule --------------------------------------------------------------------------------------------
VERB_KEYS: Tuple[str, ...] = ("push", "pull", "tap", "toss", "shake", "hold")
VERB_MOTIONS: Dict[str, str] = {
    "push": "moves away from the camera",
    "pull": "moves toward the camera",
    "tap": "moves toward the camera, then away",
    "toss": "moves away from the camera, then toward",
    "shake": "moves back and forth along the optical axis",
    "hold": "stays at one depth",
}
NOUN_KEYS: Tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple")
NOUN_RGB: Dict[str, Tuple[float, float, float]] = {  # object colour, RGB in [0, 1]
    "red": (0.86, 0.14, 0.12), "green": (0.14, 0.72, 0.20), "blue": (0.15, 0.30, 0.92),
    "yellow": (0.93, 0.83, 0.10), "magenta": (0.86, 0.16, 0.80), "cyan": (0.10, 0.80, 0.86),
    "orange": (0.96, 0.52, 0.08), "purple": (0.50, 0.18, 0.82),
}
RULE = "verb' = (verb + noun) mod V; noun' = (noun + 2*verb) mod N"

# -- timing and geometry ---------------------------------------------------------------------------------------------
CUE_MARGIN = (0.5, 1.5)  # s: a cue lasts tau_a + tau_o + U(CUE_MARGIN), so it covers the whole observed window
RESPONSE_SECONDS = (1.5, 2.5)  # s: duration of a response
SPEED = (0.3, 0.4)  # m/s along the optical axis (push/pull/tap/toss): ≥ 1 m over a default cue
SHAKE_PERIOD = 1.6  # s
Z_NEAR, Z_FAR = 0.5, 3.2  # m: range of the object's depth
PLANE_Z, PLANE_TILT = (3.65, 3.85), 0.25  # m: background plane depth at the centre, max change across the frame
OBJECT_RADIUS = 0.18  # fraction of the frame size (same for every noun)
OBJECT_BULGE = 0.04  # m: the disc is a spherical cap this much nearer at its centre than at its rim
LATERAL = 0.14  # fraction of the frame size: max lateral excursion of the object centre
FLICKER = 0.05  # std of the per-frame brightness gain
DEPTH_MIN, DEPTH_MAX = 0.2, 4.5  # m: the valid range written to dataset.yaml; other readings become 0
NOISE_STD = 0.006  # m⁻¹: gaussian std = η·NOISE_STD·z²
QUANT_STEP = 0.00285  # m⁻¹: quantisation step = 1 mm + η·QUANT_STEP·z²
HOLE_PIXELS, HOLE_EDGES, HOLE_BLOBS = 0.01, 0.6, 1.5  # at η = 1: pixel rate, edge rate, blobs per frame
EDGE_JUMP = 0.15  # m: a depth step larger than this between neighbours is an edge

ANNOTATION_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                      "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                      "noun_class", "all_nouns", "all_noun_classes")


def response_of(verb: int, noun: int, num_verbs: int, num_nouns: int) -> Tuple[int, int]:
    """The response (verb', noun') that follows a cue (verb, noun): see `RULE`."""
    return (verb + noun) % num_verbs, (noun + 2 * verb) % num_nouns


def check_rule(num_verbs: int, num_nouns: int) -> None:
    """Raise ValueError unless the class counts are supported and `response_of` is a bijection on the V×N pairs."""
    if not 1 <= num_verbs <= len(VERB_KEYS):
        raise ValueError(f"synthetic.num_verbs = {num_verbs}: must be 1..{len(VERB_KEYS)} ({', '.join(VERB_KEYS)})")
    if not 1 <= num_nouns <= len(NOUN_KEYS):
        raise ValueError(f"synthetic.num_nouns = {num_nouns}: must be 1..{len(NOUN_KEYS)} ({', '.join(NOUN_KEYS)})")
    images = {response_of(v, n, num_verbs, num_nouns) for v in range(num_verbs) for n in range(num_nouns)}
    if len(images) != num_verbs * num_nouns:
        raise ValueError(f"the response rule ({RULE}) is not a bijection for num_verbs={num_verbs}, "
                         f"num_nouns={num_nouns} ({len(images)} distinct responses for {num_verbs * num_nouns} cues); "
                         f"use equal counts (e.g. 4 and 4) or another combination")


# -- planning --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedSegment:
    """One rendered segment: a random cue or the rule's response to the cue before it.

    start_cs / stop_cs: times in centiseconds (exact in the CSVs' HH:MM:SS.ss). start_frame / stop_frame: the first
    and last RGB frame showing the segment (frame index = floor(t · fps), DATA-FORMAT.md).
    """

    kind: str  # "cue" or "response"
    verb: int
    noun: int
    start_cs: int
    stop_cs: int
    start_frame: int = 0
    stop_frame: int = -1

    @property
    def start(self) -> float:
        return self.start_cs / 100.0

    @property
    def stop(self) -> float:
        return self.stop_cs / 100.0


def _centiseconds(rng: np.random.Generator, low: float, high: float) -> int:
    return int(round(rng.uniform(low, high) * 100))


def plan_video(rng: np.random.Generator, pairs: int, num_verbs: int, num_nouns: int, fps: float,
               tau_a: float = 1.0, tau_o: float = 2.0) -> List[RenderedSegment]:
    """Draw `pairs` (cue, response) pairs starting at 0 s; cues uniform over the V×N pairs.

    Returns: 2·pairs segments in time order, with their frame ranges at `fps` filled in.
    """
    out: List[RenderedSegment] = []
    t = 0
    cue_low, cue_high = tau_a + tau_o + CUE_MARGIN[0], tau_a + tau_o + CUE_MARGIN[1]
    for _ in range(pairs):
        verb, noun = int(rng.integers(num_verbs)), int(rng.integers(num_nouns))
        cue_cs = max(_centiseconds(rng, cue_low, cue_high), int(math.ceil(cue_low * 100 - 1e-6)))
        resp_cs = _centiseconds(rng, *RESPONSE_SECONDS)
        out.append(RenderedSegment("cue", verb, noun, t, t + cue_cs))
        out.append(RenderedSegment("response", *response_of(verb, noun, num_verbs, num_nouns), t + cue_cs,
                                   t + cue_cs + resp_cs))
        t += cue_cs + resp_cs
    return _with_frames(out, fps)


def _with_frames(segments: Sequence[RenderedSegment], fps: float) -> List[RenderedSegment]:
    """Frame ranges: a segment starts at frame floor(start · fps) and ends just before the next one starts."""
    starts = [frame_at(s.start, fps) for s in segments]
    stops = starts[1:] + [num_frames_of(segments[-1].stop, fps)]
    return [replace(s, start_frame=a, stop_frame=b - 1) for s, a, b in zip(segments, starts, stops)]


def num_frames_of(seconds: float, fps: float) -> int:
    """Frames of a video lasting `seconds`: those with time k / fps < seconds."""
    n = frame_at(seconds, fps) + 1
    return n - 1 if (n - 1) / fps >= seconds else n


# -- rendering -------------------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 RGB texture in [0, 1] (low saturation) and (H, W) float64 depth plane in metres."""
    grey = rng.uniform(0.3, 0.55)
    tint = rng.uniform(-0.05, 0.05, 3)
    blotch = cv2.resize(rng.random((5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    hue = cv2.resize(rng.random((4, 4, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    theta, period, phase = rng.uniform(0, np.pi), rng.uniform(size / 12, size / 5), rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + phase)
    lum = grey + 0.18 * (blotch - 0.5) + 0.06 * stripes
    rgb = np.clip(lum[..., None] + tint + 0.06 * (hue - 0.5), 0, 1).astype(np.float32)
    z0, gx, gy = rng.uniform(*PLANE_Z), rng.uniform(-PLANE_TILT, PLANE_TILT), rng.uniform(-PLANE_TILT, PLANE_TILT)
    plane = z0 + gx * (x / (size - 1) - 0.5) + gy * (y / (size - 1) - 0.5)
    return rgb, plane.astype(np.float64)


def _lateral_path(rng: np.random.Generator, times: np.ndarray, size: int) -> np.ndarray:
    """(T, 2) object centre (x, y) in pixels: two slow sinusoids per axis, independent of the classes."""
    amp = rng.dirichlet([2, 2, 2], size=2)[:, :2] * LATERAL  # (axis, component), summing to < LATERAL
    freq = rng.uniform(0.04, 0.25, (2, 2))
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    wave = np.sin(2 * np.pi * freq[None] * times[:, None, None] + phase[None])  # (T, axis, component)
    return (size - 1) / 2 + size * (amp[None] * wave).sum(-1)


def _depth_offset(verb: int, u: np.ndarray, duration: float, speed: float) -> np.ndarray:
    """Object depth minus the segment's centre depth (m) at times `u` (s) from the segment's middle."""
    key = VERB_KEYS[verb]
    if key == "push":
        return speed * u
    if key == "pull":
        return -speed * u
    if key == "tap":
        return speed * (np.abs(u) - duration / 4)
    if key == "toss":
        return -speed * (np.abs(u) - duration / 4)
    if key == "shake":
        return speed * 0.8 * np.sin(2 * np.pi * u / SHAKE_PERIOD)
    return np.zeros_like(u)


def _object_depth(rng: np.random.Generator, segments: Sequence[RenderedSegment], times: np.ndarray) -> np.ndarray:
    """(T,) depth in metres of the object's rim at each frame time (frames outside every segment keep the last)."""
    z = np.full(len(times), (Z_NEAR + Z_FAR) / 2)
    for s in segments:
        duration = s.stop - s.start
        # drawn for every segment in the same order whatever its verb, so depth never depends on anything but verbs
        speed, where = rng.uniform(*SPEED), rng.random()
        speed = min(speed, 0.9 * (Z_FAR - Z_NEAR) / duration)
        amp = speed * max(duration / 2, 0.8)  # bound of |_depth_offset| for every verb
        centre = Z_NEAR + amp + where * (Z_FAR - Z_NEAR - 2 * amp)
        idx = np.arange(max(s.start_frame, 0), min(s.stop_frame + 1, len(times)))
        z[idx] = centre + _depth_offset(s.verb, times[idx] - (s.start + s.stop) / 2, duration, speed)
    return z


def _add_depth_noise(rng: np.random.Generator, z: np.ndarray, noise: float, size: int) -> np.ndarray:
    """Kinect-like noise on (T, H, W) metres: gaussian, depth-dependent quantisation and holes (0). Returns metres."""
    clean = z
    z = z + rng.standard_normal(z.shape) * (noise * NOISE_STD * clean ** 2)
    step = 0.001 + noise * QUANT_STEP * clean ** 2
    z = np.round(z / step) * step
    holes = rng.random(z.shape) < noise * HOLE_PIXELS
    jump_x = np.abs(np.diff(clean, axis=2)) > EDGE_JUMP
    jump_y = np.abs(np.diff(clean, axis=1)) > EDGE_JUMP
    edge = np.zeros(z.shape, bool)
    edge[:, :, 1:] |= jump_x
    edge[:, :, :-1] |= jump_x
    edge[:, 1:, :] |= jump_y
    edge[:, :-1, :] |= jump_y
    holes |= edge & (rng.random(z.shape) < noise * HOLE_EDGES)
    counts = rng.poisson(noise * HOLE_BLOBS, len(z))
    yy, xx = np.mgrid[0:size, 0:size]
    for t in np.flatnonzero(counts):
        for cx, cy, ry, rx in rng.random((counts[t], 4)):
            ry, rx = size * (0.02 + 0.06 * ry), size * (0.02 + 0.06 * rx)
            holes[t] |= ((xx - cx * size) / rx) ** 2 + ((yy - cy * size) / ry) ** 2 <= 1
    z[holes] = 0
    return z


def render_frames(segments: Sequence[RenderedSegment], num_frames: int, *, fps: float, size: int,
                  depth_noise: float, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Render a planned clip.

    Args:
        segments: segments with frame ranges (`plan_video`); frame k shows the segment whose range holds k.
        num_frames: T. fps: frame rate. size: H = W in pixels. depth_noise: η in [0, 1].
        rng: the clip's generator; the draws do not depend on the segments' classes.
    Returns:
        rgb: (T, H, W, 3) uint8 RGB. depth: (T, H, W) uint16 millimetres (0 = no reading).
    """
    times = np.arange(num_frames) / fps
    bg_rgb, plane = _background(rng, size)
    centre = _lateral_path(rng, times, size)  # (T, 2)
    gain = np.clip(1 + FLICKER * rng.standard_normal(num_frames), 0.85, 1.15).astype(np.float32)
    z_obj = _object_depth(rng, segments, times)  # (T,)
    colour = np.zeros((num_frames, 3), np.float32)
    for s in segments:
        colour[max(s.start_frame, 0):s.stop_frame + 1] = NOUN_RGB[NOUN_KEYS[s.noun]]

    radius = OBJECT_RADIUS * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt((xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2)  # (T,H,W)
    alpha = np.clip(radius + 0.5 - r, 0, 1)[..., None]
    cap = np.sqrt(np.clip(1 - (r / radius) ** 2, 0, 1))  # 1 at the centre, 0 at the rim
    shade = (0.72 + 0.28 * cap)[..., None]
    rgb = (bg_rgb[None] * (1 - alpha) + colour[:, None, None, :] * shade * alpha) * gain[:, None, None, None]
    rgb = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)

    inside = r < radius
    z = np.where(inside, z_obj[:, None, None] - OBJECT_BULGE * cap, plane[None])
    if depth_noise > 0:
        z = _add_depth_noise(rng, z, depth_noise, size)
    z[(z < DEPTH_MIN) | (z > DEPTH_MAX)] = 0
    depth = np.round(z * 1000).astype(np.uint16)
    return rgb, depth


# -- writing ---------------------------------------------------------------------------------------------------------
def _write_clip(root: Path, video_id: str, rgb: np.ndarray, depth: np.ndarray, fps: float) -> None:
    """videos/<id>.mp4 (mp4v) and depth/<id>/%06d.png from (T, H, W, 3) uint8 and (T, H, W) uint16."""
    video = root / "videos" / f"{video_id}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    size = (rgb.shape[2], rgb.shape[1])
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise OSError(f"{video}: cv2.VideoWriter could not open it for mp4v; check the folder is writable")
    for frame in rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    folder = root / "depth" / video_id
    folder.mkdir(parents=True, exist_ok=True)
    for k, d in enumerate(depth):
        write_depth_png16(folder / f"{k:06d}.png", d)


def _timestamp(cs: int) -> str:
    """Centiseconds -> ``HH:MM:SS.ss``."""
    return f"{cs // 360000:02d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _video_job(job: Tuple[int, Dict[str, Any], str]) -> Tuple[int, int, List[RenderedSegment]]:
    """Plan, render and write video `index`; returns (index, frames, segments)."""
    index, p, root = job
    cv2.setNumThreads(1)
    rng = np.random.default_rng([p["seed"], index])
    segments = plan_video(rng, p["pairs_per_video"], p["num_verbs"], p["num_nouns"], p["fps"], p["tau_a"], p["tau_o"])
    n = segments[-1].stop_frame + 1
    rgb, depth = render_frames(segments, n, fps=p["fps"], size=p["size"], depth_noise=p["depth_noise"], rng=rng)
    _write_clip(Path(root), _video_id(index), rgb, depth, p["fps"])
    return index, n, segments


def _video_id(index: int) -> str:
    return f"v{index:04d}"


def _annotation_rows(index: int, segments: Sequence[RenderedSegment]) -> List[List[Any]]:
    rows = []
    responses = [s for s in segments if s.kind == "response"]
    for i, s in enumerate(responses):
        verb, noun = VERB_KEYS[s.verb], NOUN_KEYS[s.noun]
        start = _timestamp(s.start_cs)
        rows.append([f"{_video_id(index)}_{i}", f"P{index % 8 + 1:02d}", _video_id(index), start, start,
                     _timestamp(s.stop_cs), s.start_frame, s.stop_frame, f"{verb} {noun}", verb, s.verb, noun, s.noun,
                     f"['{noun}']", f"[{s.noun}]"])
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _check_params(p: Mapping[str, Any]) -> None:
    check_rule(p["num_verbs"], p["num_nouns"])
    checks = [
        ("videos", p["videos"] >= 1, "at least 1"),
        ("val_fraction", 0 <= p["val_fraction"] < 1, "in [0, 1)"),
        ("pairs_per_video", p["pairs_per_video"] >= 1, "at least 1"),
        ("fps", p["fps"] > 0, "positive"),
        ("size", p["size"] >= 16 and p["size"] % 2 == 0, "an even number of pixels >= 16"),
        ("depth_noise", 0 <= p["depth_noise"] <= 1, "in [0, 1]"),
        ("tau_a", p["tau_a"] >= 0, "non-negative"),
        ("tau_o", p["tau_o"] >= 0, "non-negative"),
        ("seed", p["seed"] >= 0, "a non-negative integer"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ValueError(f"synthetic {key} = {p[key]!r} must be {what}")


def _params(**kw: Any) -> Dict[str, Any]:
    """The generator parameters as written to dataset.yaml (plain types, fixed order)."""
    ints = ("videos", "pairs_per_video", "num_verbs", "num_nouns", "size", "seed")
    p: Dict[str, Any] = {"generator": GENERATOR, "version": GENERATOR_VERSION}
    for key, value in kw.items():
        p[key] = int(value) if key in ints else float(value)
    _check_params(p)
    p.update(rule=RULE, cue_seconds=[p["tau_a"] + p["tau_o"] + m for m in CUE_MARGIN],
             response_seconds=list(RESPONSE_SECONDS))
    return p


def read_synthetic_params(root: PathLike) -> Optional[Dict[str, Any]]:
    """The ``synthetic:`` block of ROOT/dataset.yaml when ROOT was written by this generator, else None."""
    p = Path(root) / "dataset.yaml"
    if not p.is_file():
        return None
    try:
        meta = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        return None
    block = meta.get("synthetic") if isinstance(meta, Mapping) else None
    if isinstance(block, Mapping) and block.get("generator") == GENERATOR:
        return dict(block)
    return None


def _complete(root: Path) -> bool:
    return all((root / "annotations" / f).is_file() for f in ("train.csv", "val.csv", "actions.csv"))


def _summary_of(root: Path, seconds: float, reused: bool) -> Dict[str, Any]:
    """Counts read back from a written ROOT."""
    def rows(name: str) -> List[Dict[str, str]]:
        with open(root / "annotations" / name, newline="") as f:
            return list(csv.DictReader(f))

    train, val = rows("train.csv"), rows("val.csv")
    videos = sorted(p.stem for p in (root / "videos").glob("*.mp4"))
    frames = sum(len(os.listdir(root / "depth" / v)) for v in videos)
    return {"root": str(root), "videos": len(videos), "train_videos": len({r["video_id"] for r in train}),
            "val_videos": len({r["video_id"] for r in val}), "frames": frames, "train_segments": len(train),
            "val_segments": len(val), "seconds": round(seconds, 2), "reused": reused}


def generate(root: PathLike, *, videos: int = 160, val_fraction: float = 0.25, pairs_per_video: int = 6,
             num_verbs: int = 4, num_nouns: int = 4, fps: float = 8.0, size: int = 64, depth_noise: float = 0.0,
             seed: int = 0, tau_a: float = 1.0, tau_o: float = 2.0, workers: int = 2,
             progress: bool = True) -> Dict[str, Any]:
    """Render the synthetic benchmark into `root` (layout of DATA-FORMAT.md; design in the module docstring).

    Defaults are those of ``synthetic.*`` in r3d/defaults.yaml. A `root` that already holds this generator's complete
    output with the same parameters is reused; one with other parameters is regenerated (only videos/, depth/,
    annotations/ and dataset.yaml are removed). Any other non-empty `root` is refused.

    Args:
        root: output folder. videos: number of videos. val_fraction: fraction of the videos (seeded choice) in val.
        pairs_per_video: (cue, response) pairs per video. num_verbs / num_nouns: V and N. fps: frame rate.
        size: frame width = height. depth_noise: 0 (clean) … 1 (heavy). seed: generator seed.
        tau_a / tau_o: anticipation gap and observed window (s) that every cue must cover.
        workers: processes rendering videos (the output does not depend on it). progress: show a tqdm bar.
    Returns:
        dict with root, videos, train_videos, val_videos, frames, train_segments, val_segments, seconds, reused.
    Raises:
        FileExistsError: `root` is not empty and not a previous synthetic output.
        ValueError: a parameter is out of range, or the rule is not a bijection for num_verbs / num_nouns.
    """
    began = time.perf_counter()
    root = Path(root)
    params = _params(seed=seed, videos=videos, val_fraction=val_fraction, pairs_per_video=pairs_per_video,
                     num_verbs=num_verbs, num_nouns=num_nouns, fps=fps, size=size, depth_noise=depth_noise,
                     tau_a=tau_a, tau_o=tau_o)
    if root.exists() and any(root.iterdir()):
        previous = read_synthetic_params(root)
        if previous is None:
            raise FileExistsError(f"{root}: not empty and not a synthetic r3d dataset (no dataset.yaml with a "
                                  f"'synthetic' block from {GENERATOR}); pick an empty or new folder, or remove it")
        if previous == params and _complete(root):
            return _summary_of(root, time.perf_counter() - began, reused=True)
        for sub in ("videos", "depth", "annotations"):
            shutil.rmtree(root / sub, ignore_errors=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    meta = {"name": "r3d-synthetic", "depth_scale": 0.001, "depth_min": DEPTH_MIN, "depth_max": DEPTH_MAX,
            "fps": params["fps"], "synthetic": params}
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))  # first: marks the folder as ours

    jobs = [(i, params, str(root)) for i in range(videos)]
    results: List[Tuple[int, int, List[RenderedSegment]]] = []
    bar = tqdm(total=videos, desc="synthetic videos", unit="video", disable=not progress)
    if workers > 1 and videos > 1:
        with mp.get_context("spawn").Pool(min(workers, videos)) as pool:
            for res in pool.imap_unordered(_video_job, jobs):
                results.append(res)
                bar.update()
    else:
        for job in jobs:
            results.append(_video_job(job))
            bar.update()
    bar.close()
    results.sort(key=lambda r: r[0])

    num_val = int(round(videos * val_fraction))
    if val_fraction > 0 and videos >= 2:
        num_val = min(max(num_val, 1), videos - 1)
    val_ids = set(np.random.default_rng([int(seed), videos]).permutation(videos)[:num_val].tolist())
    ann = root / "annotations"
    for split, chosen in (("train", False), ("val", True)):
        rows = [row for i, _, segs in results if (i in val_ids) == chosen for row in _annotation_rows(i, segs)]
        _write_csv(ann / f"{split}.csv", ANNOTATION_COLUMNS, rows)
    _write_csv(ann / "verb_classes.csv", ("id", "key"), list(enumerate(VERB_KEYS[:num_verbs])))
    _write_csv(ann / "noun_classes.csv", ("id", "key"), list(enumerate(NOUN_KEYS[:num_nouns])))
    pairs = [(v, n) for v in range(num_verbs) for n in range(num_nouns)]
    _write_csv(ann / "actions.csv", ("id", "verb", "noun"), [(a, v, n) for a, (v, n) in enumerate(pairs)])  # last
    return _summary_of(root, time.perf_counter() - began, reused=False)


def ensure_synthetic(root: PathLike, cfg: Mapping) -> bool:
    """Generate the benchmark into `root` from an r3d Config (``synthetic.*``, ``data.tau_a/tau_o``) unless
    ``root/annotations/train.csv`` exists. Returns True when it generated."""
    if (Path(root) / "annotations" / "train.csv").is_file():
        return False
    s, d = cfg["synthetic"], cfg["data"]
    generate(root, videos=s["videos"], val_fraction=s["val_fraction"], pairs_per_video=s["pairs_per_video"],
             num_verbs=s["num_verbs"], num_nouns=s["num_nouns"], fps=s["fps"], size=s["size"],
             depth_noise=s["depth_noise"], seed=s["seed"], tau_a=d["tau_a"], tau_o=d["tau_o"])
    return True


def render_recording(out_dir: PathLike, *, seconds: float, seed: int, depth_noise: float = 0.0, num_verbs: int = 4,
                     num_nouns: int = 4, fps: float = 8.0, size: int = 64, tau_a: float = 1.0, tau_o: float = 2.0,
                     name: str = "recording") -> Tuple[Path, Path, List[RenderedSegment]]:
    """Render one unannotated clip of `seconds` (e.g. for the demo) with the benchmark's renderer.

    Writes ``out_dir/videos/<name>.mp4`` and ``out_dir/depth/<name>/%06d.png`` (a DATA-FORMAT layout without
    annotations). The clip is (cue, response) pairs cut at `seconds`.

    Returns:
        (rgb_path, depth_dir, segments): the mp4, the PNG folder, and every segment (cues and responses) that starts
        before `seconds`, the last one cut there.
    """
    check_rule(num_verbs, num_nouns)
    if not seconds > 0:
        raise ValueError(f"render_recording: seconds = {seconds} must be positive")
    rng = np.random.default_rng([int(seed)])
    pair_seconds = tau_a + tau_o + CUE_MARGIN[0] + RESPONSE_SECONDS[0]
    plan = plan_video(rng, int(math.ceil(seconds / pair_seconds)), num_verbs, num_nouns, fps, tau_a, tau_o)
    end = int(round(seconds * 100))
    cut = [replace(s, stop_cs=min(s.stop_cs, end)) for s in plan if s.start_cs < end]
    segments = _with_frames(cut, fps)
    n = segments[-1].stop_frame + 1
    rgb, depth = render_frames(segments, n, fps=fps, size=size, depth_noise=depth_noise, rng=rng)
    out = Path(out_dir)
    _write_clip(out, name, rgb, depth, fps)
    return out / "videos" / f"{name}.mp4", out / "depth" / name, segments
