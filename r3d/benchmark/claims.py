"""What the benchmark claims, computed from runs.csv: collapse per variant, remedies against the best plain fuser,
and the yes/no statements the README carries.

- The collapse measure (`kept`): for a fused run, action top-1 with RGB removed at test time divided by the top-1 of
  the depth-only run of the same noise level and seed (and the same for RGB). It comes from the run's metrics
  (`collapse.kept`, `eval.reference`) or, for rows without it, from the two rows themselves.
- The best plain fuser at a noise level: the fuser without an anti-collapse remedy (`PLAIN_FUSERS`) with the highest
  mean action top-1 over seeds there.
- A remedy (RTF in either variant, EBR, KD, modality dropout, r3d's own variants: every `rtf*` / `r3d*` variant) is
  compared with the best plain fuser paired by seed (`stats.compare`): full top-1 and kept depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .records import noise_tag, num, row_key
from .stats import Comparison, Stat, compare, mean_std, noises_in, variants_in
from .variants import PLAIN_FUSERS, UNIMODAL

Rows = Sequence[Mapping[str, Any]]


def with_kept(rows: Rows) -> List[Dict[str, Any]]:
    """The rows, each fused one with `kept_depth` / `kept_rgb` filled from the unimodal rows of the same noise level
    and seed where the CSV has no value (top-1 without the other stream / the unimodal run's top-1)."""
    ref: Dict[tuple, float] = {}
    for r in rows:
        v, n, s = row_key(r)
        if v in UNIMODAL and num(r.get("action_top1")) is not None:
            ref[(UNIMODAL[v], n, s)] = float(r["action_top1"])
    out = []
    for r in rows:
        r = dict(r)
        v, n, s = row_key(r)
        if v not in UNIMODAL:
            for m, other in (("depth", "rgb"), ("rgb", "depth")):
                base, without = ref.get((m, n, s)), num(r.get(f"no_{other}_top1"))
                if num(r.get(f"kept_{m}")) is None and base and without is not None:
                    r[f"kept_{m}"] = without / base
        out.append(r)
    return out


def is_remedy(variant: str) -> bool:
    """RTF (either selection, alone or with EBR / KD / modality dropout) and r3d's own variants."""
    return variant.startswith(("rtf", "r3d"))


def best_plain(rows: Rows, noise: Union[str, float], metric: str = "action_top1") -> Optional[str]:
    """The plain fuser with the highest mean `metric` over seeds at `noise`, or None when the grid has none."""
    noise = noise_tag(float(noise))
    best, best_mean = None, None
    for v in variants_in(rows):
        if v not in PLAIN_FUSERS:
            continue
        st = mean_std(num(r.get(metric)) for r in rows if row_key(r)[:2] == (v, noise))
        if st.mean is not None and (best_mean is None or st.mean > best_mean):
            best, best_mean = v, st.mean
    return best


@dataclass(frozen=True)
class RemedyRow:
    """One remedy at one noise level against the best plain fuser there."""

    variant: str
    noise: str
    best_plain: str
    top1: Optional[Comparison]  # full action top-1, remedy − best plain, paired by seed
    kept: Stat  # the remedy's kept-depth fraction over seeds
    kept_plain: Stat  # the best plain fuser's
    kept_diff: Optional[Comparison]  # remedy − best plain, paired by seed


def remedy_rows(rows: Rows, noise: Union[str, float]) -> List[RemedyRow]:
    """Every remedy present at `noise` against the best plain fuser (rows with the collapse measure filled in)."""
    rows = with_kept(rows)
    noise = noise_tag(float(noise))
    best = best_plain(rows, noise)
    if best is None:
        return []

    def kept(v: str) -> Stat:
        return mean_std(num(r.get("kept_depth")) for r in rows if row_key(r)[:2] == (v, noise))

    return [RemedyRow(v, noise, best, compare(rows, v, best, noise), kept(v), kept(best),
                      compare(rows, v, best, noise, "kept_depth"))
            for v in variants_in(rows) if is_remedy(v) and any(row_key(r)[:2] == (v, noise) for r in rows)]


@dataclass(frozen=True)
class Claim:
    """A yes/no statement about the grid, with the numbers behind it (None: the grid cannot decide it)."""

    statement: str
    holds: Optional[bool]
    evidence: str

    def line(self) -> str:
        answer = {True: "**yes**", False: "**no**", None: "**not measured**"}[self.holds]
        return f"{self.statement} {answer} — {self.evidence}"


def claim_keeps_depth(rows: Rows, variant: str, noise: Union[str, float] = 0.5, min_fraction: float = 0.9,
                      max_loss: float = 1.0) -> Claim:
    """`variant` keeps ≥ `min_fraction` of the depth-only model's top-1 with RGB removed at `noise`, without losing
    more than `max_loss` points of full top-1 against the best plain fuser (paired mean over seeds)."""
    noise = noise_tag(float(noise))
    statement = (f"`{variant}` keeps ≥ {min_fraction:.0%} of the depth-only model's top-1 with RGB removed at "
                 f"η = {noise}, without losing more than {max_loss:g} point of full top-1 against the best plain "
                 f"fuser:")
    match = [r for r in remedy_rows(rows, noise) if r.variant == variant]
    if not match or match[0].kept.mean is None or match[0].top1 is None:
        return Claim(statement, None, f"the grid has no {variant} / plain-fuser / depth-only runs at η = {noise}")
    r = match[0]
    holds = r.kept.mean >= min_fraction and r.top1.diff >= -max_loss
    evidence = (f"kept {r.kept.mean:.3f} ± {r.kept.std:.3f} of depth-only (best plain fuser {r.best_plain}: "
                f"{r.kept_plain.mean:.3f} ± {r.kept_plain.std:.3f}); full top-1 vs {r.best_plain} {r.top1.text()} "
                f"points ({r.top1.n} seeds).")
    return Claim(statement, holds, evidence)


def claim_beats_best_plain(rows: Rows, variant: str) -> Claim:
    """`variant` beats the best plain fuser at every noise level of the grid (paired margin > one std)."""
    statement = f"`{variant}` beats the best plain fuser at every η:"
    parts, holds = [], True
    noises = noises_in(rows)
    for n in noises:
        best = best_plain(rows, n)
        c = compare(rows, variant, best, n) if best is not None else None
        if c is None:
            return Claim(statement, None, f"the grid has no {variant} or plain-fuser runs at η = {n}")
        holds = holds and c.verdict == "win"
        parts.append(f"η = {n}: {c.text()} vs {best} ({c.verdict})")
    if not noises:
        return Claim(statement, None, "the grid is empty")
    return Claim(statement, holds, "; ".join(parts) + " (action top-1 points, paired by seed).")
