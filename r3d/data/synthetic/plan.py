"""Planning a synthetic video: the time line of (random cue, rule-determined response) segments and their frames."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Sequence

import numpy as np

from ..protocols import frame_at
from .rule import response_of

CUE_MARGIN = (0.5, 1.5)  # s: a cue lasts tau_a + tau_o + U(CUE_MARGIN), so it covers the whole observed window
RESPONSE_SECONDS = (1.5, 2.5)  # s: duration of a response


@dataclass(frozen=True)
class RenderedSegment:
    """One rendered segment: a random cue or the rule's response to the cue before it.

    start_cs / stop_cs: times in centiseconds (exact in the CSVs' HH:MM:SS.ss). start_frame / stop_frame: the first
    and last RGB frame showing the segment (frame index = floor(t · fps)).
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
    return with_frames(out, fps)


def with_frames(segments: Sequence[RenderedSegment], fps: float) -> List[RenderedSegment]:
    """Frame ranges: a segment starts at frame floor(start · fps) and ends just before the next one starts."""
    starts = [frame_at(s.start, fps) for s in segments]
    stops = starts[1:] + [num_frames_of(segments[-1].stop, fps)]
    return [replace(s, start_frame=a, stop_frame=b - 1) for s, a, b in zip(segments, starts, stops)]


def num_frames_of(seconds: float, fps: float) -> int:
    """Frames of a video lasting `seconds`: those with time k / fps < seconds."""
    n = frame_at(seconds, fps) + 1
    return n - 1 if (n - 1) / fps >= seconds else n
