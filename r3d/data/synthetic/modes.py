"""What each stream of the synthetic benchmark shows: the modes and the cues that only the redundant mode draws.

Both modes draw the same scene: a disc whose colour is the segment's noun (RGB) and whose motion along the optical
axis is its verb (depth). The redundant mode adds one cue per stream so that each stream sees the whole (verb, noun):

- RGB: the disc's core (the inner `CORE_RADIUS` of its radius) is painted a flat grey whose level is the verb
  (`verb_grey`: evenly spaced from near black to near white), drawn in luminance, which the video codec keeps at full
  resolution.
- depth: a flat body `BODY_GAP` behind the disc, centred on it and larger than it, whose silhouette is the noun's
  shape (`NOUN_SHAPES`). It is painted like the background, so it adds nothing to the RGB frames.

Neither cue takes random draws, so a plan rendered in either mode with the same generator gives the same random scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np


@dataclass(frozen=True)
class Mode:
    """A benchmark mode: which cue each stream shows beyond the disc's colour (RGB, noun) and motion (depth, verb)."""

    name: str
    verb_in_rgb: bool  # the disc's core shows the verb as a grey level
    noun_in_depth: bool  # a body invisible in RGB shows the noun as its depth silhouette
    summary: str


MODES: Dict[str, Mode] = {
    "complementary": Mode("complementary", False, False,
                          "noun only in RGB (disc colour), verb only in depth (motion along the optical axis)"),
    "redundant": Mode("redundant", True, True,
                      "RGB: disc colour = noun, core grey = verb; depth: motion = verb, body silhouette = noun"),
}
DEFAULT_MODE = "complementary"

CORE_RADIUS = 0.5  # fraction of the disc radius painted with the verb's grey (redundant mode)
GREY_RANGE = (0.05, 0.95)  # grey levels of the first and the last verb
BODY_GAP = 0.1  # m: the body lies this far behind the disc's rim (redundant mode)


def get_mode(name: str) -> Mode:
    """The mode called `name`; ValueError naming the known modes otherwise."""
    if name not in MODES:
        raise ValueError(f"synthetic.mode = {name!r}: must be one of {', '.join(MODES)}")
    return MODES[name]


def verb_grey(verb: int, num_verbs: int) -> float:
    """Grey level in [0, 1] of the disc's core for `verb` of `num_verbs` (evenly spaced over `GREY_RANGE`)."""
    lo, hi = GREY_RANGE
    return lo + (hi - lo) * verb / max(num_verbs - 1, 1)


# Body silhouettes: (u, v) = pixel offset from the disc's centre as a fraction of the frame size (v grows downward).
# Every shape reaches beyond the disc (radius 0.18 of the frame), so its outline shows around it.
def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.24


def _plus(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.minimum(np.abs(u), np.abs(v)) <= 0.07) & (np.maximum(np.abs(u), np.abs(v)) <= 0.33)


def _hbar(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 0.34) & (np.abs(v) <= 0.11)


def _vbar(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _hbar(v, u)


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) + np.abs(v) <= 0.34


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _plus((u + v) / np.sqrt(2), (u - v) / np.sqrt(2))


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:  # apex up
    return (v <= 0.22) & (np.abs(u) <= 0.3 * (v + 0.32) / 0.54)


def _triangle_down(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _triangle(u, -v)


NOUN_SHAPES: Tuple[str, ...] = ("square", "plus", "hbar", "vbar", "diamond", "cross", "triangle", "triangle_down")
SHAPE_MASKS: Dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "square": _square, "plus": _plus, "hbar": _hbar, "vbar": _vbar, "diamond": _diamond, "cross": _cross,
    "triangle": _triangle, "triangle_down": _triangle_down,
}


def body_mask(noun: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels covered by the body of noun `noun` (shape ``NOUN_SHAPES[noun]``).

    Args:
        u, v: (...) horizontal and vertical offsets from the disc's centre as fractions of the frame size.
    Returns:
        (...) bool.
    """
    return SHAPE_MASKS[NOUN_SHAPES[noun]](u, v)
