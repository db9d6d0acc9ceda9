"""The benchmark's plots, drawn from runs.csv rows with `r3d.viz.plots`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..viz import plots
from .records import PathLike, num_list, row_key
from .claims import best_plain, with_kept
from .stats import aggregate, compare, mean_curve, mean_std, noises_in, variants_in
from .variants import ERANK_REFERENCES, RTF_VARIANTS, UNIMODAL

FILES = {"accuracy": "top1_vs_best_plain.png", "kept_depth": "kept_depth.png", "fused_erank": "fused_erank.png",
         "pooled_erank": "pooled_erank.png", "before_after": "rtf_erank_before_after.png"}  # + gain_<η>, reliance


def plot_paths(rows: Sequence[Mapping[str, Any]], folder: PathLike) -> Dict[str, Path]:
    """{name: path} of the PNGs `write_plots` draws for these rows, in its order, without drawing them."""
    folder = Path(folder)
    out = {k: folder / f for k, f in FILES.items()}
    out.update({f"gain_{n}": folder / f"mutual_gain_vs_observed_noise_{n}.png" for n in noises_in(rows)})
    out["reliance"] = folder / "reliance.png"
    if any(r.get("val_top1_by_epoch") for r in rows):  # runs validated every epoch: how fast each variant learned
        out["learning"] = folder / "learning_curves.png"
    return out


def write_plots(rows: Sequence[Mapping[str, Any]], folder: PathLike) -> Dict[str, Path]:
    """The benchmark's PNGs from CSV rows: {name: path}."""
    paths = plot_paths(rows, folder)
    rows = with_kept(rows)  # the collapse measure, also where a row has only the unimodal runs to derive it from
    agg = aggregate(rows)
    variants, noises = variants_in(rows), noises_in(rows)
    out: Dict[str, Path] = {}

    def bars(metric: str, skip=()) -> Dict[str, Dict[str, Tuple[Optional[float], Optional[float]]]]:
        return {f"η = {n}": {v: (agg[(v, n)][metric].mean, agg[(v, n)][metric].std) for v in variants
                             if (v, n) in agg and v not in skip and agg[(v, n)][metric].mean is not None}
                for n in noises}

    diffs: Dict[str, Dict[str, Tuple[Optional[float], Optional[float]]]] = {}
    for n in noises:
        best = best_plain(rows, n)
        others = [v for v in variants if best is not None and v != best and v not in UNIMODAL]
        comps = {v: compare(rows, v, best, n) for v in others}
        diffs[f"η = {n}, vs {best}"] = {v: (c.diff, c.std) for v, c in comps.items() if c is not None}
    out["accuracy"] = plots.plot_panel_bars(
        diffs, paths["accuracy"], "action top-1 − best plain fuser (points)",
        "Action top-1 against the best plain fuser at each η (paired by seed, mean ± std)")
    out["kept_depth"] = plots.plot_panel_bars(
        bars("kept_depth", skip=UNIMODAL), paths["kept_depth"], "top-1 without RGB / depth-only top-1",
        "Collapse measure: what each fused model keeps of the depth stream (mean ± std)",
        lines=((0.0, "-"), (1.0, "--"), (0.9, ":")))
    out["fused_erank"] = plots.plot_panel_bars(bars("erank_fused", skip=UNIMODAL), paths["fused_erank"],
                                               "fused-token effective rank", "Fused effective rank (per sample)")
    out["pooled_erank"] = plots.plot_panel_bars(bars("pooled_erank", skip=UNIMODAL), paths["pooled_erank"],
                                                "pooled effective rank (N, C)",
                                                "Pooled fused representation's effective rank")
    shown = [v for v in variants if v.startswith("rtf")] + [v for v in ERANK_REFERENCES if v in variants]
    panels = {f"η = {n}": {v: {m: (agg[(v, n)][f"erank_pre_{m}"].mean, agg[(v, n)][f"erank_post_{m}"].mean)
                               for m in ("rgb", "depth")} for v in shown if (v, n) in agg} for n in noises}
    out["before_after"] = plots.plot_erank_before_after(panels, paths["before_after"])
    for n in noises:
        curves = {}
        for v in variants:
            fr, h = mean_curve([r for r in rows if row_key(r)[:2] == (v, n)], "obs_H")
            if fr and any(x is not None for x in h):
                curves[v] = (fr, h)
        out[f"gain_{n}"] = plots.plot_mutual_gain_vs_observed(
            curves, paths[f"gain_{n}"],
            f"Mutual rank gain H vs observed fraction, η = {n} (mean over seeds)")
    rel = {f"η = {n}": {v: {m: agg[(v, n)][f"no_{m}_rel_drop_pct"].mean for m in ("rgb", "depth")}
                        for v in variants if (v, n) in agg and agg[(v, n)]["no_rgb_rel_drop_pct"].n}
           for n in noises}
    out["reliance"] = plots.plot_reliance_drops(rel, paths["reliance"])
    if "learning" in paths:  # per η: the unimodal references, the best plain fuser and RTF
        panels = {}
        for n in noises:
            best = best_plain(rows, n)
            shown = [v for v in [*UNIMODAL, best, *RTF_VARIANTS] if v and v in variants]
            curves = {}
            for v in dict.fromkeys(shown):
                hist = [num_list(r.get("val_top1_by_epoch")) for r in rows if row_key(r)[:2] == (v, n)]
                hist = [h for h in hist if h]
                if hist:
                    epochs = max(len(h) for h in hist)
                    curves[v] = (list(range(1, epochs + 1)),
                                 [mean_std(h[e] for h in hist if e < len(h)).mean for e in range(epochs)])
            panels[f"η = {n}"] = curves
        out["learning"] = plots.plot_line_panels(panels, paths["learning"], "epoch", "validation action top-1 (%)",
                                                 "Learning curves (mean over seeds)")
    return out
