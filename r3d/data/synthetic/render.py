"""Rendering a planned synthetic clip into RGB frames and depth maps.

The scene: a textured low-saturation RGB background and a tilted depth plane (3.4–4.1 m) per clip, one disc of fixed
size that follows a smooth lateral path per clip, and a per-frame brightness flicker. The disc's colour is the
segment's noun; its depth moves along the optical axis as the segment's verb says (`VERB_MOTIONS`), around a centre
depth drawn at random per segment, so one depth frame does not give the verb away. The camera is orthographic: the
disc's size in RGB never changes with its depth. The mode's extra cues (`modes`) are drawn on top.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

from .modes import BODY_GAP, CORE_RADIUS, DEFAULT_MODE, body_mask, get_mode, verb_grey
from .noise import add_depth_noise
from .plan import RenderedSegment
from .rule import NOUN_KEYS, NOUN_RGB, VERB_KEYS

SPEED = (0.3, 0.4)  # m/s along the optical axis (push/pull/tap/toss): ≥ 1 m over a default cue
SHAKE_PERIOD = 1.6  # s
Z_NEAR, Z_FAR = 0.5, 3.2  # m: range of the object's depth
PLANE_Z, PLANE_TILT = (3.65, 3.85), 0.25  # m: background plane depth at the centre, max change across the frame
OBJECT_RADIUS = 0.18  # fraction of the frame size (same for every noun)
OBJECT_BULGE = 0.04  # m: the disc is a spherical cap this much nearer at its centre than at its rim
LATERAL = 0.14  # fraction of the frame size: max lateral excursion of the object centre
FLICKER = 0.05  # std of the per-frame brightness gain
DEPTH_MIN, DEPTH_MAX = 0.2, 4.5  # m: the valid range written to dataset.yaml; other readings become 0


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


def _frames_of(s: RenderedSegment) -> slice:
    return slice(max(s.start_frame, 0), s.stop_frame + 1)


def render_frames(segments: Sequence[RenderedSegment], num_frames: int, *, fps: float, size: int,
                  depth_noise: float, rng: np.random.Generator, mode: str = DEFAULT_MODE,
                  num_verbs: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """Render a planned clip.

    Args:
        segments: segments with frame ranges (`plan_video`); frame k shows the segment whose range holds k.
        num_frames: T. fps: frame rate. size: H = W in pixels. depth_noise: η in [0, 1].
        rng: the clip's generator; the draws depend neither on the segments' classes nor on `mode`.
        mode: a name in `MODES`; "redundant" adds the verb's grey core (RGB) and the noun's body (depth).
        num_verbs: V, which spaces the core's grey levels (redundant mode).
    Returns:
        rgb: (T, H, W, 3) uint8 RGB. depth: (T, H, W) uint16 millimetres (0 = no reading).
    """
    m = get_mode(mode)
    times = np.arange(num_frames) / fps
    bg_rgb, plane = _background(rng, size)
    centre = _lateral_path(rng, times, size)  # (T, 2)
    gain = np.clip(1 + FLICKER * rng.standard_normal(num_frames), 0.85, 1.15).astype(np.float32)
    z_obj = _object_depth(rng, segments, times)  # (T,)
    colour = np.zeros((num_frames, 3), np.float32)
    for s in segments:
        colour[_frames_of(s)] = NOUN_RGB[NOUN_KEYS[s.noun]]

    radius = OBJECT_RADIUS * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx[None] - centre[:, 0, None, None], yy[None] - centre[:, 1, None, None]  # (T, H, W)
    r = np.sqrt(dx ** 2 + dy ** 2)
    alpha = np.clip(radius + 0.5 - r, 0, 1)[..., None]
    cap = np.sqrt(np.clip(1 - (r / radius) ** 2, 0, 1))  # 1 at the centre, 0 at the rim
    shade = (0.72 + 0.28 * cap)[..., None]
    paint = colour[:, None, None, :] * shade  # (T, H, W, 3)
    if m.verb_in_rgb:
        grey = np.zeros(num_frames, np.float32)
        for s in segments:
            grey[_frames_of(s)] = verb_grey(s.verb, num_verbs)
        core = np.clip(CORE_RADIUS * radius + 0.5 - r, 0, 1)[..., None]
        paint = paint * (1 - core) + grey[:, None, None, None] * core
    rgb = (bg_rgb[None] * (1 - alpha) + paint * alpha) * gain[:, None, None, None]
    rgb = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)

    inside = r < radius
    behind = plane[None]
    if m.noun_in_depth:
        body = np.zeros(r.shape, bool)
        for s in segments:
            f = _frames_of(s)
            body[f] = body_mask(s.noun, dx[f] / size, dy[f] / size)
        behind = np.where(body, z_obj[:, None, None] + BODY_GAP, plane[None])
    z = np.where(inside, z_obj[:, None, None] - OBJECT_BULGE * cap, behind)
    if depth_noise > 0:
        z = add_depth_noise(rng, z, depth_noise, size)
    z[(z < DEPTH_MIN) | (z > DEPTH_MAX)] = 0
    depth = np.round(z * 1000).astype(np.uint16)
    return rgb, depth
