"""Statistics over seeds and the verdicts the benchmark states, all computed from runs.csv rows.

Differences are paired by seed (same seed, same noise level, same data): d = mean over seeds of (variant − other),
s = std over seeds of those differences (sample std, 0 for one seed). A variant *wins* when d > s, *loses* when
d < −s, and *ties* when |d| ≤ s — a margin within one std over seeds is not counted as a win.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .records import COLUMNS, num, num_list, row_key, noise_tag
from .variants import ERANK_REFERENCES, VARIANTS, is_baseline


@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof = 1; 0 for one value) over seeds, and the number of values."""

    mean: Optional[float]
    std: Optional[float]
    n: int


def mean_std(values: Iterable[Optional[float]]) -> Stat:
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return Stat(None, None, 0)
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return Stat(m, sd, len(xs))


def aggregate(rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]] = None
              ) -> Dict[Tuple[str, str], Dict[str, Stat]]:
    """{(variant, noise tag): {column: Stat over that cell's seeds}} for the numeric columns."""
    columns = list(columns) if columns is not None else [c for c in COLUMNS if c not in
                                                          ("variant", "noise", "seed", "fuser", "modalities",
                                                           "obs_fractions", "obs_fused", "obs_H", "val_top1_by_epoch",
                                                           "run_dir")]
    cells: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for r in rows:
        v, n, _ = row_key(r)
        cells.setdefault((v, n), []).append(r)
    return {cell: {c: mean_std(num(r.get(c)) for r in rs) for c in columns} for cell, rs in cells.items()}


def mean_curve(rows: Sequence[Mapping[str, Any]], column: str) -> Tuple[List[float], List[Optional[float]]]:
    """Element-wise mean over rows of a list-valued column (e.g. obs_H), with the rows' obs_fractions."""
    curves = [(num_list(r.get("obs_fractions")), num_list(r.get(column))) for r in rows]
    curves = [(f, c) for f, c in curves if f and len(c) == len(f)]
    if not curves:
        return [], []
    fractions = [x for x in curves[0][0] if x is not None]
    means = [mean_std(c[i] for _, c in curves if i < len(c)).mean for i in range(len(fractions))]
    return fractions, means


@dataclass(frozen=True)
class Comparison:
    """variant − other on `metric` at one noise level: mean and std over seeds of the paired differences."""

    variant: str
    other: str
    noise: str
    metric: str
    diff: float
    std: float
    n: int
    paired: bool

    @property
    def verdict(self) -> str:
        """win (d > s), loss (d < −s) or tie (|d| ≤ s), s = std over seeds of the difference."""
        if self.diff > self.std:
            return "win"
        if self.diff < -self.std:
            return "loss"
        return "tie"

    def text(self, digits: int = 2) -> str:
        """"+d ± s"; just "+d" for a single seed (no spread to report)."""
        if self.n < 2 and self.paired:
            return f"{self.diff:+.{digits}f}"
        return f"{self.diff:+.{digits}f} ± {self.std:.{digits}f}"


def _by_seed(rows: Sequence[Mapping[str, Any]], variant: str, noise: str, metric: str) -> Dict[str, float]:
    out = {}
    for r in rows:
        v, n, s = row_key(r)
        x = num(r.get(metric))
        if v == variant and n == noise and x is not None:
            out[s] = x
    return out


def compare(rows: Sequence[Mapping[str, Any]], variant: str, other: str, noise: Union[str, float],
            metric: str = "action_top1") -> Optional[Comparison]:
    """`variant` − `other` on `metric` at `noise`, paired by seed (over the seeds both have); without a common seed,
    the difference of the means with std √(s_a² + s_b²). None when either has no value."""
    noise = noise_tag(float(noise))
    a, b = _by_seed(rows, variant, noise, metric), _by_seed(rows, other, noise, metric)
    if not a or not b:
        return None
    common = sorted(set(a) & set(b), key=int)
    if common:
        st = mean_std(a[s] - b[s] for s in common)
        return Comparison(variant, other, noise, metric, st.mean, st.std, st.n, True)
    sa, sb = mean_std(a.values()), mean_std(b.values())
    return Comparison(variant, other, noise, metric, sa.mean - sb.mean, math.hypot(sa.std, sb.std),
                      min(sa.n, sb.n), False)


@dataclass(frozen=True)
class Verdict:
    """How one RTF variant did against every baseline at one noise level."""

    variant: str
    noise: str
    metric: str
    comparisons: Tuple[Comparison, ...]

    @property
    def beat_all(self) -> bool:
        return bool(self.comparisons) and all(c.verdict == "win" for c in self.comparisons)

    @property
    def closest(self) -> Optional[Comparison]:
        """The comparison with the smallest margin (the strongest baseline)."""
        return min(self.comparisons, key=lambda c: c.diff) if self.comparisons else None

    def text(self) -> str:
        eta = f"η = {self.noise}"
        if not self.comparisons:
            return f"**{self.variant}**, {eta}: no baseline to compare with."
        c = self.closest
        unit = " points" if self.metric.endswith(("top1", "top5", "mt5r")) else ""
        seeds = f"{self.metric}{unit}, {c.n} seed{'s' if c.n != 1 else ''}" + ("" if c.paired else ", unpaired")
        if self.beat_all:
            return (f"**{self.variant}**, {eta}: **yes** — it beat every baseline ({len(self.comparisons)}); "
                    f"closest: {c.other}, {c.text()} ({seeds}).")
        groups = {k: [x for x in self.comparisons if x.verdict == k] for k in ("loss", "tie", "win")}
        parts = []
        for k, word in (("loss", "lost to"), ("tie", "tied with (within one std)"), ("win", "beat")):
            if groups[k]:
                parts.append(f"{word} " + ", ".join(f"{x.other} ({x.text()})" for x in groups[k]))
        return f"**{self.variant}**, {eta}: **no** — {'; '.join(parts)} ({seeds})."


def variants_in(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Variants present in the rows, in VARIANTS order, then any others in order of appearance."""
    seen = list(dict.fromkeys(str(r["variant"]) for r in rows))
    return [v for v in VARIANTS if v in seen] + [v for v in seen if v not in VARIANTS]


def noises_in(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    return sorted({row_key(r)[1] for r in rows}, key=float)


def rtf_verdict(rows: Sequence[Mapping[str, Any]], variant: str, noise: Union[str, float],
                metric: str = "action_top1") -> Verdict:
    """`variant` (an RTF variant) against every baseline present at `noise` (see `is_baseline`)."""
    noise = noise_tag(float(noise))
    comps = [c for b in variants_in(rows) if is_baseline(b)
             if (c := compare(rows, variant, b, noise, metric)) is not None]
    return Verdict(variant, noise, metric, tuple(comps))


def erank_verdict(rows: Sequence[Mapping[str, Any]], variant: str, noise: Union[str, float],
                  references: Sequence[str] = ERANK_REFERENCES) -> List[str]:
    """Sentences: did `variant` raise the fused effective rank (per-sample fused tokens, and pooled (N, C)) vs each
    reference at `noise`."""
    noise = noise_tag(float(noise))
    out = []
    for ref in references:
        parts = []
        for metric, label in (("erank_fused", "fused-token erank"), ("pooled_erank", "pooled erank")):
            c = compare(rows, variant, ref, noise, metric)
            if c is None:
                continue
            word = {"win": "raised", "loss": "lowered", "tie": "did not change (within one std)"}[c.verdict]
            parts.append(f"{word} the {label} ({c.text()}, {c.n} seed{'s' if c.n != 1 else ''})")
        if parts:
            out.append(f"**{variant}** vs {ref}, η = {noise}: " + "; ".join(parts) + ".")
    return out
