"""Joint RGB-D transforms: one geometric decision, applied to both modalities.

Each transform is a callable on a `results` dict (mmaction2 style) and its docstring lists the keys it reads and
writes. The keys:

| key | value |
|---|---|
| ``rgb`` | (T, H, W, 3) uint8 RGB frames, then (T, 3, S, S) float32 tensor; None when RGB is not loaded |
| ``depth`` | (T, h, w) float32 metres (0 = no reading), then (T, 1, S, S) float32 tensor; None when not loaded |
| ``rng`` | `numpy.random.Generator` for the random choices (training), or None (evaluation: centre crop, no flip) |
| ``crop_box`` | (y0, x0, y1, x1) of the crop, relative to the resized frame (0..1) |
| ``flipped`` | whether the frames were flipped horizontally |

RGB and depth may have different resolutions and aspect ratios (Kinect v2: 1920×1080 colour, 512×424 depth). Both
are resized to the same square R×R (R = round(img_size · resize_scale), aspect not kept, as the model input is
square), so one crop box in relative coordinates is the same pixel box in both. RGB is resized with area averaging
(shrinking) or bilinear interpolation (enlarging); depth with nearest neighbour (cv2.INTER_NEAREST_EXACT, the
pixel-centre-aligned variant of INTER_NEAREST), so holes (0) and valid readings are never blended. The random draws
do not depend on which modalities are loaded, so a sample gets the same crop and flip whether or not depth exists.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch

Results = Dict[str, Any]


def _resize(frames: np.ndarray, size: int, interpolation: int) -> np.ndarray:
    """(T, H, W[, C]) -> (T, size, size[, C]) frame by frame (a no-op when the frames already have that size)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=interpolation) for f in frames])


class ResizeCrop:
    """Resize both modalities to R×R (R = round(img_size · resize_scale)), then crop img_size×img_size.

    Random crop position when ``results["rng"]`` is a generator, centre crop when it is None.
    Reads: rgb, depth, rng. Writes: rgb (T, S, S, 3) uint8, depth (T, S, S) float32, crop_box.
    """

    def __init__(self, img_size: int, resize_scale: float = 1.0) -> None:
        if img_size < 1 or resize_scale < 1.0:
            raise ValueError(f"data.img_size must be >= 1 and data.resize_scale >= 1.0 (the crop must fit), got "
                             f"{img_size} and {resize_scale}")
        self.size = int(img_size)
        self.resized = max(self.size, int(round(img_size * resize_scale)))

    def __call__(self, results: Results) -> Results:
        r, s = self.resized, self.size
        rng: Optional[np.random.Generator] = results.get("rng")
        if rng is not None:
            y0, x0 = int(rng.integers(0, r - s + 1)), int(rng.integers(0, r - s + 1))
        else:
            y0 = x0 = (r - s) // 2
        rgb, depth = results.get("rgb"), results.get("depth")
        if rgb is not None:
            shrink = rgb.shape[1] * rgb.shape[2] >= r * r
            rgb = _resize(rgb, r, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            results["rgb"] = np.ascontiguousarray(rgb[:, y0:y0 + s, x0:x0 + s])
        if depth is not None:
            depth = _resize(depth.astype(np.float32, copy=False), r, cv2.INTER_NEAREST_EXACT)
            results["depth"] = np.ascontiguousarray(depth[:, y0:y0 + s, x0:x0 + s])
        results["crop_box"] = (y0 / r, x0 / r, (y0 + s) / r, (x0 + s) / r)
        return results


class HorizontalFlip:
    """Flip both modalities left-right with probability `prob` (one draw per sample; never without an rng).

    Reads: rgb, depth, rng. Writes: rgb, depth, flipped.
    """

    def __init__(self, prob: float) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"data.hflip is a probability in [0, 1], got {prob}")
        self.prob = float(prob)

    def __call__(self, results: Results) -> Results:
        rng = results.get("rng")
        flip = rng is not None and self.prob > 0 and float(rng.random()) < self.prob
        if flip:
            for key in ("rgb", "depth"):
                if results.get(key) is not None:
                    results[key] = np.ascontiguousarray(results[key][:, :, ::-1])
        results["flipped"] = flip
        return results


class NormalizeRGB:
    """uint8 RGB -> float32 tensor ((x / 255 − mean) / std), channels first.

    Reads: rgb (T, H, W, 3) uint8. Writes: rgb (T, 3, H, W) float32 tensor.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"data.rgb_mean / data.rgb_std need 3 values each (std > 0), got {mean} and {std}")
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __call__(self, results: Results) -> Results:
        rgb = results.get("rgb")
        if rgb is not None:
            x = (rgb.astype(np.float32) / np.float32(255.0) - self.mean) / self.std
            results["rgb"] = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return results


class NormalizeDepth:
    """Depth in metres -> [0, 1]: readings outside [depth_min, depth_max], 0 and NaN/inf become 0; then / depth_max.

    Reads: depth (T, H, W) float32 metres. Writes: depth (T, 1, H, W) float32 tensor.
    """

    def __init__(self, depth_min: float, depth_max: float) -> None:
        if not 0 <= depth_min < depth_max:
            raise ValueError(f"need 0 <= depth_min < depth_max (metres), got {depth_min} and {depth_max}")
        self.depth_min, self.depth_max = float(depth_min), float(depth_max)

    def __call__(self, results: Results) -> Results:
        d = results.get("depth")
        if d is not None:
            d = d.astype(np.float32, copy=False)
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(d) & (d > 0) & (d >= self.depth_min) & (d <= self.depth_max)
            out = np.where(valid, d / np.float32(self.depth_max), np.float32(0.0)).astype(np.float32)
            results["depth"] = torch.from_numpy(np.ascontiguousarray(out[:, None]))
        return results


class Compose:
    """Apply transforms in order; each reads and writes the `results` dict."""

    def __init__(self, transforms: Sequence[Callable[[Results], Results]]) -> None:
        self.transforms: List[Callable[[Results], Results]] = list(transforms)

    def __call__(self, results: Results) -> Results:
        for t in self.transforms:
            results = t(results)
        return results

    def __repr__(self) -> str:
        return f"Compose({[type(t).__name__ for t in self.transforms]})"


def build_transforms(data_cfg: Mapping, depth_min: float, depth_max: float, train: bool) -> Compose:
    """The joint pipeline from the `data` config section: ResizeCrop → HorizontalFlip (train) → normalisation.

    Randomness comes from ``results["rng"]``; evaluation passes None (centre crop, no flip).
    """
    ops: List[Callable[[Results], Results]] = [ResizeCrop(data_cfg["img_size"], data_cfg["resize_scale"])]
    if train and data_cfg["hflip"] > 0:
        ops.append(HorizontalFlip(data_cfg["hflip"]))
    ops += [NormalizeRGB(data_cfg["rgb_mean"], data_cfg["rgb_std"]), NormalizeDepth(depth_min, depth_max)]
    return Compose(ops)
