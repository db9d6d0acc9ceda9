"""Interleaved A/B timing on a shared, noisy machine, and the `Figure` record every benchmark returns.

Why interleaved: other jobs change the machine's speed from one second to the next. Timing all of A and then all of
B compares two different machines; running A and B alternately, round after round, and taking the median over rounds
of the *paired* ratio A_r / B_r compares them on the same machine. The order alternates each round (A B, B A, A B, ...)
so that a steady drift in load favours neither side, and warm-up rounds (JIT, allocator, page cache) are discarded.

Clocks: `time.perf_counter` (wall time: what a user waits, including waiting for data loader workers) or
`time.process_time` (CPU seconds of this process, all its threads: for single-process compute such as a train step it
is far less sensitive to other jobs than wall time, which counts the time the scheduler gives to them).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

Clock = Callable[[], float]

__all__ = ["Measured", "Timings", "interleaved", "paired_ratio", "Figure"]


class Measured(float):
    """A measurement a timed function reports itself (e.g. the seconds of one part of what it did); `interleaved`
    records it instead of the clock difference. Any other return value is ignored."""


@dataclass
class Timings:
    """Samples of an `interleaved` run: `samples[name][r]` is round r's measurement of `name` (seconds or any unit)."""

    samples: Dict[str, List[float]]

    def median(self, name: str) -> float:
        """Median over rounds of one measurement."""
        return float(statistics.median(self.samples[name]))

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of the paired ratio samples[a][r] / samples[b][r] (see `paired_ratio`)."""
        return paired_ratio(self.samples[a], self.samples[b])

    def to_dict(self, digits: int = 6) -> Dict[str, List[float]]:
        return {k: [round(v, digits) for v in vs] for k, vs in self.samples.items()}


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of a[r] / b[r] over paired rounds r (NaN when there is no round or a b[r] is 0).

    The ratio of each round compares two measurements taken back to back, under the same machine load; the median
    discards the rounds in which another job woke up between them.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_ratio: {len(a)} samples of A but {len(b)} of B; pair them round by round")
    if not a or any(y == 0 for y in b):
        return math.nan
    return float(statistics.median(x / y for x, y in zip(a, b)))


def interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                clock: Clock = time.perf_counter) -> Timings:
    """Run each function once per round, alternating the order every round, and time each call.

    Args:
        fns: {name: function}; called without arguments. A function that returns a `Measured` reports its own
            measurement, which is recorded instead of the clock difference; any other return value is ignored.
        repeats: timed rounds (≥ 1).
        warmup: untimed rounds run first, in the same alternating order.
        clock: seconds-valued clock (`time.perf_counter` wall time, `time.process_time` CPU time, or a fake in tests).

    Returns:
        Timings with `repeats` samples per name. Round r runs the names in the given order when r is even (counting
        warm-up rounds) and in reverse order when r is odd.
    """
    if repeats < 1:
        raise ValueError(f"interleaved: repeats must be ≥ 1, got {repeats}")
    names = list(fns)
    samples: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            t0 = clock()
            got = fns[n]()
            dt = clock() - t0
            if r >= warmup:
                samples[n].append(float(got) if isinstance(got, Measured) else dt)
    return Timings(samples)


@dataclass
class Figure:
    """One line of the performance table: a measured value against its target.

    `better` is "<=" (value must not exceed target, e.g. a cost ratio) or ">=" (e.g. a rate). `value` None means the
    figure could not be measured here (`note` says why); it then neither passes nor misses.
    """

    id: str
    what: str
    value: Optional[float]
    target: float
    better: str = "<="
    unit: str = "x"
    detail: Dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        if self.better not in ("<=", ">="):
            raise ValueError(f"Figure {self.id}: better must be '<=' or '>=', got '{self.better}'")

    @property
    def passed(self) -> Optional[bool]:
        """True/False against the target; None when not measured (or NaN)."""
        if self.value is None or math.isnan(self.value):
            return None
        return self.value <= self.target if self.better == "<=" else self.value >= self.target

    @property
    def status(self) -> str:
        return {True: "PASS", False: "MISS", None: "N/A"}[self.passed]

    def line(self) -> str:
        """`P1  rtf/bn vs concat train step   1.012x   target <= 1.03x   PASS`."""
        val = "n/a" if self.passed is None else f"{self.value:.3f}{self.unit}"
        target = "n/a" if math.isnan(self.target) else f"{self.target:g}{self.unit}"
        text = f"{self.id:<4} {self.what:<60} {val:>12}   target {self.better} {target}   {self.status}"
        return text + (f"   ({self.note})" if self.note else "")

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able record (NaN value/target as null) with `status` and `passed`."""
        d = asdict(self)
        for k in ("value", "target"):
            if isinstance(d[k], float) and math.isnan(d[k]):
                d[k] = None
        d["status"] = self.status
        d["passed"] = self.passed
        return d
