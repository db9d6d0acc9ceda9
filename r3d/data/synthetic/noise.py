"""Kinect-like depth noise for the synthetic benchmark, scaled by one level η (0 = clean … 1 = heavy).

At level η, on depth z in metres: gaussian noise of std η·NOISE_STD·z², rounding to steps of 1 mm + η·QUANT_STEP·z²
(Kinect's disparity steps at η = 1), and holes (0 = no reading) at random pixels (HOLE_PIXELS·η), at pixels next to a
depth step larger than EDGE_JUMP (HOLE_EDGES·η) and in Poisson(HOLE_BLOBS·η) elliptic blobs per frame.
"""
from __future__ import annotations

import numpy as np

NOISE_STD = 0.006  # m⁻¹: gaussian std = η·NOISE_STD·z²
QUANT_STEP = 0.00285  # m⁻¹: quantisation step = 1 mm + η·QUANT_STEP·z²
HOLE_PIXELS, HOLE_EDGES, HOLE_BLOBS = 0.01, 0.6, 1.5  # at η = 1: pixel rate, edge rate, blobs per frame
EDGE_JUMP = 0.15  # m: a depth step larger than this between neighbours is an edge


def add_depth_noise(rng: np.random.Generator, z: np.ndarray, noise: float, size: int) -> np.ndarray:
    """Kinect-like noise of level `noise` on depth.

    Args:
        rng: generator; the number of draws depends only on the shape, `noise` and the edges of `z`.
        z: (T, H, W) depth in metres (H = W = size).
    Returns:
        (T, H, W) noisy depth in metres, 0 at holes.
    """
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
