"""Collapse diagnostics: effective rank, mutual rank gain, pooled rank, modality reliance, erank vs observed fraction.

Names here -> names in the papers (glossary: docs/diagnostics.md):

    effective_rank          erank of R3D (Kim et al., WACV 2026, arXiv 2511.06450) = Roy & Vetterli (2007) = RankMe:
                            per sample, singular values σ of the *un-centred* (T, C) token matrix, σ ≤ 1e-12 dropped,
                            p = σ / Σσ (L1), erank = exp(−Σ p log p). Batched over (B, T, C); float32 even under
                            autocast. An all-zero matrix (e.g. an absent modality's zeroed tokens) has no singular
                            direction and is given erank 0 (not NaN; the only value < 1).
    mutual_rank_gain        R3D's mutual rank gain: g_m = mean erank after fusion − before, H = harmonic mean of the
                            two gains, 0 when either gain ≤ 0.
    erank_vs_observed       R3D's erank-vs-observed-fraction curves: the window truncated to its first ceil(f·T) frames.
    pooled_effective_rank   the rank of the pooled representation over a whole evaluation set (one (C,) vector per
    numerical_rank          sample, stacked to (N, C)) — what the EBR paper (Chaudhuri et al., ICML 2025, arXiv
                            2505.22483; no released code) plots against the noise strength. The paper does not say
                            whether it centres; `center=False` (default) measures the raw matrix like RankMe and R3D,
                            `center=True` the spread around the mean (the covariance rank: the mean direction no longer
                            counts). `CollapseAccumulator` reports both.
    modality_reliance       action top-1 with each modality removed, on the same samples, and its relative drop.

`CollapseAccumulator` gathers these during an evaluation loop at the cost of per-sample scalars and one (N, C) matrix.

Cost (figure P6 of `python -m benchmarks`): one batched float32 `svdvals` per token set and distinct window length, on the
(C, T) transpose (σ(Zᵀ) = σ(Z); LAPACK gets a tall column-major view without a copy, ~3x faster than (T, C) for T ≪ C);
the full-window erank is shared with the observed-fraction curve; no per-sample Python loop.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

Tensor = torch.Tensor
PrefixFn = Callable[[int], Mapping[str, Tensor]]  # n -> token sets (see `token_sets`) of the window cut to n frames

SIGMA_EPS = 1e-12

__all__ = [
    "effective_rank", "mean_effective_rank", "numerical_rank", "pooled_effective_rank", "mutual_rank_gain",
    "modality_reliance", "erank_vs_observed", "observed_length", "token_sets", "CollapseAccumulator",
    "mutual_gain_curve", "reliance_without", "kept_fraction",
]


def effective_rank(z: Tensor, eps: float = SIGMA_EPS) -> Tensor:
    """Effective rank of each (T, C) token matrix, computed in float32 (autocast disabled).

    σ = svdvals(z) (un-centred), σ ≤ eps dropped, p = σ / Σσ, erank = exp(−Σ p log p); 1 ≤ erank ≤ min(T, C).
    An all-zero matrix (no σ > eps) gets 0.

    Args:
        z: (T, C) or (B, T, C), any float dtype (bf16/fp16 are upcast).
        eps: singular values ≤ eps are ignored.

    Returns:
        () for 2-D input, (B,) for 3-D input; float32.
    """
    if z.dim() not in (2, 3):
        raise ValueError(f"effective_rank expects (T, C) or (B, T, C), got shape {tuple(z.shape)}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        s = torch.linalg.svdvals(z.mT if z.shape[-2] < z.shape[-1] else z)  # the tall orientation is the fast one
        s = torch.where(s > eps, s, torch.zeros_like(s))
        total = s.sum(-1)
        p = s / total.clamp_min(torch.finfo(s.dtype).tiny).unsqueeze(-1)
        plogp = torch.where(p > 0, p * p.clamp_min(torch.finfo(s.dtype).tiny).log(), torch.zeros_like(p))
        erank = torch.exp(-plogp.sum(-1))
        return torch.where(total > 0, erank, torch.zeros_like(erank))


def mean_effective_rank(z: Tensor) -> float:
    """Mean over samples of `effective_rank` of z (T, C) or (B, T, C) — R3D's reported erank."""
    return float(effective_rank(z).mean())


def _pooled(x: Tensor, center: bool) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"expected a pooled (N, C) matrix, got shape {tuple(x.shape)}")
    x = x.float()
    return x - x.mean(dim=0, keepdim=True) if center and x.shape[0] > 0 else x


def numerical_rank(x: Tensor, tol: Optional[float] = None, center: bool = False) -> int:
    """Numerical rank of a pooled representation (N, C), float32, `torch.linalg.matrix_rank` semantics.

    Counts singular values > tol. tol=None: torch's default, σ_max · max(N, C) · ε_float32 (ε ≈ 1.19e-7), i.e.
    relative to the largest singular value; a number: that absolute tolerance.

    Args:
        x: (N, C) one vector per sample.
        tol: absolute tolerance, or None for the relative default above.
        center: subtract the mean over the N samples first (rank of the spread around the mean).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = _pooled(x, center)
        if x.numel() == 0:
            return 0
        if tol is None:
            return int(torch.linalg.matrix_rank(x))
        return int(torch.linalg.matrix_rank(x, atol=float(tol), rtol=0.0))


def pooled_effective_rank(x: Tensor, center: bool = False) -> float:
    """Effective rank (same definition as `effective_rank`) of a pooled representation (N, C) over an evaluation set.

    Args:
        x: (N, C), e.g. the time-mean fused token of every evaluated sample.
        center: subtract the mean over the N samples first (default False: un-centred, like RankMe / R3D).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = _pooled(x, center)
        if x.numel() == 0:
            return 0.0
        return float(effective_rank(x))


def mutual_rank_gain(before: Mapping[str, float], after: Mapping[str, float],
                     pair: Optional[Tuple[str, str]] = None) -> Dict[str, Any]:
    """R3D's mutual rank gain of a modality pair.

    g_m = after[m] − before[m] (mean erank of modality m's tokens after vs before fusion);
    H = 2·g_a·g_b / (g_a + g_b), and H = 0 when either gain ≤ 0 (NaN if a gain is NaN).

    Args:
        before: {modality: mean erank before fusion}.
        after: {modality: mean erank after fusion}; same modalities.
        pair: the two modalities of H; None = the two modalities when there are exactly two (else H is None).

    Returns:
        {"gain": {m: g_m}, "H": H or None}.
    """
    if set(before) != set(after):
        raise ValueError(f"mutual_rank_gain: before has modalities {sorted(before)}, after has {sorted(after)}")
    gain = {m: float(after[m]) - float(before[m]) for m in before}
    if pair is None:
        if len(gain) != 2:
            return {"gain": gain, "H": None}
        pair = tuple(gain)  # type: ignore[assignment]
    missing = [m for m in pair if m not in gain]
    if missing:
        raise KeyError(f"mutual_rank_gain: pair modality {missing} not in {sorted(gain)}")
    ga, gb = gain[pair[0]], gain[pair[1]]
    if math.isnan(ga) or math.isnan(gb):
        h = math.nan
    elif ga <= 0 or gb <= 0:
        h = 0.0
    else:
        h = 2.0 * ga * gb / (ga + gb)
    return {"gain": gain, "H": h}


def _id_list(ids: Any) -> list:
    if isinstance(ids, Tensor):
        return ids.detach().cpu().tolist()
    if hasattr(ids, "tolist"):
        return list(ids.tolist())
    return list(ids)


def modality_reliance(full_correct: Tensor, dropped_correct: Mapping[str, Tensor], ids: Any = None,
                      dropped_ids: Optional[Mapping[str, Any]] = None, valid: Optional[Tensor] = None
                      ) -> Dict[str, Any]:
    """Action top-1 with each modality removed and its drop, on exactly the same samples as the full model.

    Args:
        full_correct: (N,) bool, top-1 correct with all modalities.
        dropped_correct: {m: (N,) bool}, top-1 correct with modality m removed, same sample order.
        ids: optional (N,) sample ids (ints, tensor or strings) of `full_correct`; when given, `dropped_ids[m]` must
            be given for every m and be identical (same samples, same order), else ValueError.
        dropped_ids: {m: (N,) ids} of each dropped run.
        valid: optional (N,) bool, samples that count (e.g. those with a label); default all.

    Returns:
        {"num_samples": n, "top1": full top-1 %, "without": {m: {"top1": %, "drop": full − dropped (points),
        "relative_drop": (full − dropped) / full (NaN when full = 0)}}}.
    """
    full = torch.as_tensor(full_correct).bool().view(-1).cpu()
    n = full.shape[0]
    if valid is not None:
        valid = torch.as_tensor(valid).bool().view(-1).cpu()
        if valid.shape[0] != n:
            raise ValueError(f"modality_reliance: valid has {valid.shape[0]} entries, full_correct {n}")
    ref_ids = _id_list(ids) if ids is not None else None
    if ref_ids is not None and len(ref_ids) != n:
        raise ValueError(f"modality_reliance: {len(ref_ids)} ids for {n} full-model results")
    keep = valid if valid is not None else torch.ones(n, dtype=torch.bool)
    count = int(keep.sum())

    def top1(c: Tensor) -> float:
        return 100.0 * float(c[keep].sum()) / count if count else math.nan

    full_top1 = top1(full)
    without: Dict[str, Dict[str, float]] = {}
    for m, dropped in dropped_correct.items():
        d = torch.as_tensor(dropped).bool().view(-1).cpu()
        if d.shape[0] != n:
            raise ValueError(f"modality_reliance: the run without '{m}' has {d.shape[0]} samples, the full run {n}; "
                             "evaluate both on the same samples")
        if ref_ids is not None:
            if dropped_ids is None or m not in dropped_ids:
                raise ValueError(f"modality_reliance: ids given for the full run but not for the run without '{m}'")
            theirs = _id_list(dropped_ids[m])
            if theirs != ref_ids:
                bad = next((i for i, (a, b) in enumerate(zip(ref_ids, theirs)) if a != b), min(len(ref_ids),
                                                                                               len(theirs)))
                raise ValueError(f"modality_reliance: the run without '{m}' is on other samples than the full run "
                                 f"(first difference at position {bad}); sort both by sample id over the same set")
        t = top1(d)
        without[m] = {"top1": t, "drop": full_top1 - t,
                      "relative_drop": (full_top1 - t) / full_top1 if full_top1 else math.nan}
    return {"num_samples": count, "top1": full_top1, "without": without}


def observed_length(fraction: float, num_frames: int) -> int:
    """Frames kept when observing `fraction` of a T-frame window: ceil(f·T), at least 1, at most T.

    f·T is rounded to 9 decimals first so that float noise (0.3·10 = 3.0000000000000004) does not add a frame.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"observed fraction must be in (0, 1], got {fraction}")
    return min(num_frames, max(1, math.ceil(round(fraction * num_frames, 9))))


def token_sets(out: Mapping[str, Any]) -> Dict[str, Tensor]:
    """The token sets the diagnostics measure in a model output: {"pre_<m>", "post_<m>": (B,T,C), "fused": (B,T,C)}
    from `tokens_pre`, `tokens_post` and `fused` (absent or None entries are left out)."""
    sets = {f"{kind}_{m}": z for kind in ("pre", "post") for m, z in (out.get(f"tokens_{kind}") or {}).items()}
    if out.get("fused") is not None:
        sets["fused"] = out["fused"]
    return sets


def _eranks_by_length(sets: Mapping[str, Tensor], lengths: Sequence[int], prefix: Optional[PrefixFn] = None
                      ) -> Dict[int, Dict[str, Tensor]]:
    """{n: {name: (B,) erank of the set's first n tokens}} for every n in `lengths`, one batched SVD per set and n.

    The window truncated to n frames is `prefix(n)` when given (for models whose tokens depend on later frames), else
    the first n tokens of each full-window set; n = T always uses the full sets.
    """
    res: Dict[int, Dict[str, Tensor]] = {}
    for n in sorted(set(lengths)):
        if prefix is None or all(z.shape[1] == n for z in sets.values()):
            cut = {k: z[:, :n] for k, z in sets.items()}
        else:
            cut = prefix(n)
        res[n] = {k: effective_rank(cut[k]) for k in sets}
    return res


def _prefix_eranks(tokens: Tensor, fractions: Sequence[float]) -> Tensor:
    """(B, T, C) -> (B, F): per-sample erank of each window prefix of `observed_length(f, T)` frames."""
    t = tokens.shape[1]
    lengths = [observed_length(f, t) for f in fractions]
    er = _eranks_by_length({"z": tokens}, lengths)
    return torch.stack([er[n]["z"] for n in lengths], dim=1)


def erank_vs_observed(tokens: Tensor, fractions: Sequence[float]) -> Dict[float, float]:
    """Mean erank of the window truncated to its first ceil(f·T) frames (≥ 1), for each observed fraction f.

    Args:
        tokens: (B, T, C) per-frame tokens of B windows.
        fractions: observed fractions f in (0, 1].

    Returns:
        {f: mean over the B windows of erank(tokens[:, :ceil(f·T)])}.
    """
    if tokens.dim() != 3:
        raise ValueError(f"erank_vs_observed expects (B, T, C), got shape {tuple(tokens.shape)}")
    if not fractions:
        return {}
    means = _prefix_eranks(tokens, fractions).mean(dim=0)
    return {float(f): float(v) for f, v in zip(fractions, means)}


def _nanmean(x: Tensor) -> float:
    return float(x.double().mean()) if x.numel() else math.nan


class CollapseAccumulator:
    """Collapse diagnostics of one evaluation pass, accumulated batch by batch.

    Reads from each model output (`Anticipator.forward`): `tokens_pre` {m: (B,T,C)}, `tokens_post` {m: (B,T,C)},
    `fused` (B,T,C) or None. Keeps only per-sample eranks ((B,) and (B, F) for F observed fractions) and the time-mean
    fused token (B, C), so the cost is B small SVDs per tensor and fraction.

    Missing modalities: a sample whose `tokens_pre[m]` is all zeros (the model zeroes absent modalities) has erank 0
    and is left out of modality m's pre *and* post means, so g_m compares the same samples; `num_present` counts them.

    Two ways to use it:
      - one process: `acc.update(out)` per batch, then `acc.compute()`;
      - distributed: `local = acc.per_sample(out)` (a dict of per-sample tensors whose keys `acc.owns`), gather them
        across processes with the other per-sample results, then `acc.finalize(gathered)`.

    `time_spent` (alias `seconds`) is the wall time spent inside the accumulator, to report its share of evaluation.

    Result (JSON-able): erank_pre / erank_post {m: mean}, erank_fused, num_samples, num_present {m}, gain {m}, H,
    pooled_rank / pooled_erank and pooled_rank_centered / pooled_erank_centered of the (N, C) time-mean fused
    representation, erank_vs_observed {fractions, fused, pre {m}, post {m}} (lists aligned with fractions; plus
    `method`, how the truncated windows were made, when the caller set `prefix_method`), time_spent.
    """

    PREFIX = "col_"

    def __init__(self, observed_fractions: Sequence[float] = (), pair: Optional[Tuple[str, str]] = None) -> None:
        self.fractions = tuple(float(f) for f in observed_fractions)
        for f in self.fractions:
            observed_length(f, 1)  # validates the range
        self.pair = pair
        self.time_spent = 0.0
        self.prefix_method: Optional[str] = None  # how truncated windows were made; reported with the curves
        self._chunks: Dict[str, list] = {}

    @property
    def seconds(self) -> float:
        return self.time_spent

    def owns(self, key: str) -> bool:
        """True for the keys `per_sample` produces."""
        return key.startswith(self.PREFIX)

    @torch.no_grad()
    def per_sample(self, out: Mapping[str, Any], prefix: Optional[PrefixFn] = None) -> Dict[str, Tensor]:
        """Per-sample statistics of one batch: {"col_pre_<m>": (B,), "col_obs_pre_<m>": (B, F), ..., "col_pool_fused":
        (B, C)} (float32, on the input's device).

        `prefix(n)` returns the token sets (`token_sets`) of the batch's windows truncated to their first n frames; by
        default the first n tokens of the full window are used, which is exact when every token depends on its own
        frame only (per-frame backbones and a frame-local fuser; `r3d.engine.evaluate.observed_prefix` decides).
        """
        t0 = time.perf_counter()
        res: Dict[str, Tensor] = {}
        sets = token_sets(out)
        if sets:
            t = next(iter(sets.values())).shape[1]
            obs = [observed_length(f, t) for f in self.fractions]
            er = _eranks_by_length(sets, [t, *obs], prefix if self.fractions else None)
            for name in sets:
                res[f"{self.PREFIX}{name}"] = er[t][name]
                if self.fractions:
                    res[f"{self.PREFIX}obs_{name}"] = torch.stack([er[n][name] for n in obs], dim=1)
        fused = out.get("fused")
        if fused is not None:
            with torch.autocast(device_type=fused.device.type, enabled=False):
                res[f"{self.PREFIX}pool_fused"] = fused.detach().float().mean(dim=1)
        self.time_spent += time.perf_counter() - t0
        return res

    def update(self, out: Mapping[str, Any]) -> None:
        """Accumulate one batch's model output (single-process use)."""
        for k, v in self.per_sample(out).items():
            self._chunks.setdefault(k, []).append(v.cpu())

    def compute(self) -> Dict[str, Any]:
        """Result of everything `update` received."""
        return self.finalize({k: torch.cat(v) for k, v in self._chunks.items()})

    def finalize(self, gathered: Mapping[str, Tensor]) -> Dict[str, Any]:
        """Result from the concatenated per-sample tensors of all batches (and processes)."""
        t0 = time.perf_counter()
        p = self.PREFIX
        g = {k[len(p):]: v.detach().cpu() for k, v in gathered.items() if self.owns(k)}
        mods = [k[len("pre_"):] for k in g if k.startswith("pre_")]
        mods += [k[len("post_"):] for k in g if k.startswith("post_") and k[len("post_"):] not in mods]
        num = next((int(v.shape[0]) for v in g.values()), 0)
        keep = {}
        for m in mods:
            ref = g.get(f"pre_{m}", g.get(f"post_{m}"))
            keep[m] = ref > 0
        res: Dict[str, Any] = {"num_samples": num, "num_present": {m: int(keep[m].sum()) for m in mods}}
        for kind in ("pre", "post"):
            res[f"erank_{kind}"] = {m: _nanmean(g[f"{kind}_{m}"][keep[m]]) for m in mods if f"{kind}_{m}" in g}
        res["erank_fused"] = _nanmean(g["fused"]) if "fused" in g else None
        if set(res["erank_pre"]) == set(res["erank_post"]) and res["erank_pre"]:
            res.update(mutual_rank_gain(res["erank_pre"], res["erank_post"], pair=self.pair))
        else:
            res.update({"gain": {}, "H": None})
        pool = g.get("pool_fused")
        for suffix, center in (("", False), ("_centered", True)):
            res[f"pooled_rank{suffix}"] = numerical_rank(pool, center=center) if pool is not None else None
            res[f"pooled_erank{suffix}"] = pooled_effective_rank(pool, center=center) if pool is not None else None
        if self.fractions:
            curves: Dict[str, Any] = {"fractions": list(self.fractions)}
            curves["fused"] = [float(v) for v in g["obs_fused"].double().mean(0)] if "obs_fused" in g else None
            for kind in ("pre", "post"):
                curves[kind] = {m: [_nanmean(col) for col in g[f"obs_{kind}_{m}"][keep[m]].unbind(1)]
                                for m in mods if f"obs_{kind}_{m}" in g}
            if self.prefix_method is not None:
                curves["method"] = self.prefix_method
            res["erank_vs_observed"] = curves
        self.time_spent += time.perf_counter() - t0
        res["time_spent"] = self.time_spent
        return res

    def reset(self) -> None:
        """Forget accumulated batches and time."""
        self._chunks = {}
        self.time_spent = 0.0


# -- reading the collapse block of a metrics JSON -------------------------------------------------------------------
def reliance_without(reliance: Optional[Mapping]) -> Dict[str, Dict[str, Any]]:
    """{modality: {"top1", "drop", "relative_drop"}} from a `collapse.reliance` block (key "without"; "dropped" is
    accepted as an alias)."""
    if not isinstance(reliance, Mapping):
        return {}
    block = reliance.get("without", reliance.get("dropped"))
    return {m: dict(v) for m, v in block.items() if isinstance(v, Mapping)} if isinstance(block, Mapping) else {}


def mutual_gain_curve(curves: Optional[Mapping]) -> List[Optional[float]]:
    """H at each observed fraction of a `collapse.erank_vs_observed` block: the gains post − pre of the two
    modalities' curves at that fraction, combined by `mutual_rank_gain`. [] when the block has
    no pre/post curves of exactly two modalities."""
    if not isinstance(curves, Mapping):
        return []
    pre, post = curves.get("pre") or {}, curves.get("post") or {}
    fractions = curves.get("fractions") or []
    if len(pre) != 2 or set(pre) != set(post):
        return []
    out: List[Optional[float]] = []
    for i in range(len(fractions)):
        try:
            b = {m: float(pre[m][i]) for m in pre}
            a = {m: float(post[m][i]) for m in post}
        except (IndexError, TypeError, ValueError):
            out.append(None)
            continue
        out.append(mutual_rank_gain(b, a)["H"])
    return out


def kept_fraction(reliance: Optional[Mapping], unimodal_top1: Mapping[str, float]) -> Dict[str, Dict[str, Any]]:
    """The collapse measure: what a fused model keeps of each stream when the other is removed at test time.

    For modality m with a unimodal reference (a model of the same kind trained on m alone, action top-1 in %), kept[m]
    = top-1 of the fused model with every *other* modality removed / the reference's top-1. 1.0 means the fused model
    kept everything m can give on its own; near chance / reference means m collapsed (the fused model ignores it).
    Two modalities only (the other one is the one removed).

    Args:
        reliance: a `collapse.reliance` block ({"without": {m: {"top1": ...}}}).
        unimodal_top1: {m: action top-1 % of the model trained on m alone}.
    Returns:
        {m: {"top1_without_other": %, "unimodal_top1": %, "fraction": ratio (NaN when the reference is 0)}}.
    """
    without = reliance_without(reliance)
    out: Dict[str, Dict[str, Any]] = {}
    if len(without) != 2:
        return out
    for m, ref in unimodal_top1.items():
        others = [o for o in without if o != m]
        if m not in without or len(others) != 1 or ref is None:
            continue
        top1 = float(without[others[0]]["top1"])
        out[m] = {"top1_without_other": top1, "unimodal_top1": float(ref),
                  "fraction": top1 / float(ref) if float(ref) > 0 else math.nan}
    return out
