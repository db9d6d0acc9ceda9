"""The benchmark's plots, drawn from runs.csv rows with `r3d.viz.plots`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..viz import plots
from .records import PathLike, row_key
from .stats import aggregate, mean_curve, noises_in, variants_in
from .variants import ERANK_REFERENCES


def write_plots(rows: Sequence[Mapping[str, Any]], folder: PathLike) -> Dict[str, Path]:
    """The benchmark's PNGs from CSV rows: {name: path}."""
    folder = Path(folder)
    agg = aggregate(rows)
    variants, noises = variants_in(rows), noises_in(rows)
    out: Dict[str, Path] = {}

    def series(metric: str) -> Dict[str, Tuple[List[float], List[Optional[float]], List[Optional[float]]]]:
        res = {}
        for v in variants:
            ns = [n for n in noises if (v, n) in agg and agg[(v, n)][metric].mean is not None]
            if ns:
                res[v] = ([float(n) for n in ns], [agg[(v, n)][metric].mean for n in ns],
                          [agg[(v, n)][metric].std for n in ns])
        return res

    out["accuracy"] = plots.plot_metric_vs_noise(series("action_top1"), folder / "accuracy_vs_noise.png",
                                                 "action top-1 (%)", "Action top-1 vs depth noise (mean ± std)")
    out["fused_erank"] = plots.plot_metric_vs_noise(series("erank_fused"), folder / "fused_erank_vs_noise.png",
                                                    "fused-token effective rank",
                                                    "Fused effective rank vs depth noise (per sample, mean ± std)")
    out["pooled_erank"] = plots.plot_metric_vs_noise(series("pooled_erank"), folder / "pooled_erank_vs_noise.png",
                                                     "pooled effective rank (N, C)",
                                                     "Pooled fused representation's erank vs depth noise")
    shown = [v for v in variants if v.startswith("rtf")] + [v for v in ERANK_REFERENCES if v in variants]
    panels = {f"η = {n}": {v: {m: (agg[(v, n)][f"erank_pre_{m}"].mean, agg[(v, n)][f"erank_post_{m}"].mean)
                               for m in ("rgb", "depth")} for v in shown if (v, n) in agg} for n in noises}
    out["before_after"] = plots.plot_erank_before_after(panels, folder / "rtf_erank_before_after.png")
    for n in noises:
        curves = {}
        for v in variants:
            fr, h = mean_curve([r for r in rows if row_key(r)[:2] == (v, n)], "obs_H")
            if fr and any(x is not None for x in h):
                curves[v] = (fr, h)
        out[f"gain_{n}"] = plots.plot_mutual_gain_vs_observed(
            curves, folder / f"mutual_gain_vs_observed_noise_{n}.png",
            f"Mutual rank gain H vs observed fraction, η = {n} (mean over seeds)")
    rel = {f"η = {n}": {v: {m: agg[(v, n)][f"no_{m}_rel_drop_pct"].mean for m in ("rgb", "depth")}
                        for v in variants if (v, n) in agg and agg[(v, n)]["no_rgb_rel_drop_pct"].n}
           for n in noises}
    out["reliance"] = plots.plot_reliance_drops(rel, folder / "reliance.png")
    return out
