"""Plots of collapse diagnostics and benchmark results, one function per plot, written as PNG files.

Every function draws on its own `matplotlib.figure.Figure` attached to an Agg canvas and writes one PNG: pyplot is
never imported and no global backend or rcParams are changed, so importing this module (or calling it from a notebook
or a training process with another backend) has no side effects.

Inputs are plain numbers (the metrics JSON of `tools/test.py` or aggregated rows of `tools/benchmark.py`), never
tensors. A value that is None or NaN is skipped (a gap in a line, a missing bar), so runs without some diagnostic
still plot.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

PathLike = Union[str, os.PathLike]
Series = Tuple[Sequence[float], Sequence[Optional[float]], Optional[Sequence[Optional[float]]]]  # x, mean, std

__all__ = [
    "plot_erank_vs_observed", "plot_mutual_gain_vs_observed", "plot_reliance", "plot_reliance_drops",
    "plot_metric_vs_noise", "plot_erank_before_after", "plot_panel_bars", "plot_line_panels",
]


def _figure(width: float = 6.4, height: float = 4.0, ncols: int = 1):
    """A Figure with an Agg canvas and `ncols` axes side by side (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols if ncols > 1 else width, height), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _ok(v: Optional[float]) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _nan(v: Optional[float]) -> float:
    return float(v) if _ok(v) else math.nan


def _colors(names: Sequence[str]) -> Dict[str, tuple]:
    """A fixed colour per name (in the given order) from matplotlib's tab20 palette."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {n: cmap((2 * i) % 20 + (i // 10) % 2) for i, n in enumerate(names)}


def _modalities(names) -> List[str]:
    """rgb, depth first, then any other modality in name order."""
    names = set(names)
    return [m for m in ("rgb", "depth") if m in names] + sorted(names - {"rgb", "depth"})


def _empty(ax, text: str = "not measured") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_erank_vs_observed(curves: Mapping, path: PathLike, title: str = "Effective rank vs observed fraction"
                           ) -> Path:
    """Mean erank of the window truncated to the first f·T frames, against f (R3D's curves).

    Args:
        curves: `collapse["erank_vs_observed"]` of a metrics JSON: {"fractions": [F], "fused": [F] or None,
            "pre": {m: [F]}, "post": {m: [F]}}.
        path: PNG to write.
    """
    fig, (ax,) = _figure()
    x = [float(f) for f in curves.get("fractions") or []]
    drawn = False
    names = _modalities(set(curves.get("pre") or {}) | set(curves.get("post") or {}))
    colors = _colors(names + ["fused"])
    for kind, style in (("pre", "--"), ("post", "-")):
        for m in names:
            ys = (curves.get(kind) or {}).get(m)
            if ys:
                ax.plot(x, [_nan(v) for v in ys], style, marker="o", ms=3, color=colors[m],
                        label=f"{m} {'before' if kind == 'pre' else 'after'} fusion")
                drawn = True
    if curves.get("fused"):
        ax.plot(x, [_nan(v) for v in curves["fused"]], "-", marker="s", ms=3, color="black", label="fused")
        drawn = True
    if not drawn:
        _empty(ax)
    else:
        ax.set_xlabel("observed fraction of the window")
        ax.set_ylabel("effective rank (mean over samples)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _draw_lines(ax, series: Mapping[str, Tuple[Sequence[float], Sequence[Optional[float]]]], colors: Mapping[str, tuple],
                xlabel: str, ylabel: str, ms: float, legend_size: float, hline: Optional[float] = None) -> None:
    """One line per label on `ax`, markers at the points (None = a gap); "not measured" when no series has a value."""
    drawn = False
    for label, (x, ys) in series.items():
        if any(_ok(v) for v in ys):
            ax.plot([float(f) for f in x], [_nan(v) for v in ys], marker="o", ms=ms, color=colors[label], label=label)
            drawn = True
    if not drawn:
        _empty(ax)
        return
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def plot_lines(series: Mapping[str, Tuple[Sequence[float], Sequence[Optional[float]]]], path: PathLike, xlabel: str,
               ylabel: str, title: str, hline: Optional[float] = None) -> Path:
    """One line per label, markers at the points; "not measured" when no series has a value.

    Args:
        series: {label: (x [P], y [P])}, None for a missing point.
        path: PNG to write.
        hline: a grey reference line at this y (e.g. 0 for a gain).
    """
    fig, (ax,) = _figure()
    _draw_lines(ax, series, _colors(list(series)), xlabel, ylabel, ms=3, legend_size=8, hline=hline)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_line_panels(panels: Mapping[str, Mapping[str, Tuple[Sequence[float], Sequence[Optional[float]]]]],
                     path: PathLike, xlabel: str, ylabel: str, title: str) -> Path:
    """Small multiples: one axis per panel (e.g. per noise level), one line per label, a label keeps its colour in
    every panel; "not measured" in a panel without values.

    Args:
        panels: {panel title: {label: (x [P], y [P])}}, None for a missing point.
        path: PNG to write.
    """
    colors = _colors(list(dict.fromkeys(label for series in panels.values() for label in series)))
    fig, axes = _figure(width=4.2 if len(panels) > 1 else 6.4, height=3.8, ncols=max(1, len(panels)))
    for ax, (panel, series) in zip(axes, panels.items()):
        _draw_lines(ax, series, colors, xlabel, ylabel, ms=2, legend_size=7)
        ax.set_title(panel, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_mutual_gain_vs_observed(series: Mapping[str, Tuple[Sequence[float], Sequence[Optional[float]]]],
                                 path: PathLike, title: str = "Mutual rank gain H vs observed fraction") -> Path:
    """R3D's mutual-gain curve: H (harmonic mean of the per-modality erank gains) against the observed fraction.

    Args:
        series: {label: (fractions [F], H [F])}, one line per label (e.g. per variant at one noise level).
        path: PNG to write.
    """
    return plot_lines(series, path, "observed fraction of the window", "mutual rank gain H", title, hline=0.0)


def plot_reliance(full_top1: Optional[float], without: Mapping[str, Optional[float]], path: PathLike,
                  title: str = "Modality reliance (action top-1)") -> Path:
    """One run's reliance bars: action top-1 with all modalities and with each modality removed.

    Args:
        full_top1: action top-1 (%) with every modality.
        without: {modality: action top-1 (%) with that modality removed}.
        path: PNG to write.
    """
    fig, (ax,) = _figure(5.0, 3.6)
    labels = ["all"] + [f"−{m}" for m in without]
    values = [_nan(full_top1)] + [_nan(v) for v in without.values()]
    if not any(_ok(v) for v in values):
        _empty(ax)
    else:
        bars = ax.bar(labels, values, color=["black"] + list(_colors(list(without)).values()))
        for b, v in zip(bars, values):
            if _ok(v):
                ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("action top-1 (%)")
        ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_reliance_drops(panels: Mapping[str, Mapping[str, Mapping[str, Optional[float]]]], path: PathLike,
                        title: str = "Relative drop of action top-1 when a modality is removed") -> Path:
    """Benchmark reliance bars: per panel (e.g. a noise level), per variant, the relative drop for each modality.

    Args:
        panels: {panel title: {variant: {modality: relative drop in % (100 = all accuracy lost)}}}.
        path: PNG to write.
    """
    n = max(1, len(panels))
    fig, axes = _figure(5.0, 3.8, ncols=n)
    mods = _modalities({m for p in panels.values() for d in p.values() for m in d})
    colors = _colors(mods)
    width = 0.8 / max(1, len(mods))
    for ax, (name, data) in zip(axes, panels.items()):
        variants = list(data)
        if not variants or not any(_ok(v) for d in data.values() for v in d.values()):
            _empty(ax)
            ax.set_title(name, fontsize=10)
            continue
        for j, m in enumerate(mods):
            xs = [i + (j - (len(mods) - 1) / 2) * width for i in range(len(variants))]
            ax.bar(xs, [_nan(data[v].get(m)) for v in variants], width, color=colors[m], label=f"−{m}")
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=45, ha="right", fontsize=8)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_ylabel("relative drop of action top-1 (%)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_metric_vs_noise(series: Mapping[str, Series], path: PathLike, ylabel: str, title: str = "") -> Path:
    """A metric against the depth-noise level, one line per variant with a ±std band (the EBR paper's Fig. 5 shape
    when the metric is the fused effective rank).

    Args:
        series: {variant: (noise levels [L], means [L], stds [L] or None)}.
        path: PNG to write.
        ylabel: y-axis label.
    """
    fig, (ax,) = _figure()
    colors = _colors(list(series))
    drawn = False
    for name, (x, mean, std) in series.items():
        ys = [_nan(v) for v in mean]
        if not any(_ok(v) for v in ys):
            continue
        xs = [float(v) for v in x]
        ax.plot(xs, ys, marker="o", ms=4, color=colors[name], label=name)
        if std is not None:
            sd = [_nan(v) if _ok(v) else 0.0 for v in std]
            ax.fill_between(xs, [a - b for a, b in zip(ys, sd)], [a + b for a, b in zip(ys, sd)], color=colors[name],
                            alpha=0.15, lw=0)
        drawn = True
    if drawn:
        ax.set_xlabel("depth noise level η")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    else:
        _empty(ax)
    ax.set_title(title or f"{ylabel} vs depth noise", fontsize=10)
    return _save(fig, path)


def plot_erank_before_after(panels: Mapping[str, Mapping[str, Mapping[str, Tuple[Optional[float], Optional[float]]]]],
                            path: PathLike, title: str = "Per-modality effective rank before and after fusion"
                            ) -> Path:
    """Grouped bars: for each variant, each modality's erank before (hatched) and after (solid) fusion.

    Args:
        panels: {panel title (e.g. a noise level, or the run): {variant: {modality: (before, after)}}}.
        path: PNG to write.
    """
    n = max(1, len(panels))
    fig, axes = _figure(5.0, 3.8, ncols=n)
    mods = _modalities({m for p in panels.values() for d in p.values() for m in d})
    colors = _colors(mods)
    bars_per = 2 * max(1, len(mods))
    width = 0.8 / bars_per
    for ax, (name, data) in zip(axes, panels.items()):
        variants = list(data)
        if not variants or not any(_ok(v) for d in data.values() for pair in d.values() for v in pair):
            _empty(ax)
            ax.set_title(name, fontsize=10)
            continue
        k = 0
        for m in mods:
            for idx, (kind, hatch, alpha) in enumerate((("before", "//", 0.45), ("after", None, 1.0))):
                xs = [i + (k - (bars_per - 1) / 2) * width for i in range(len(variants))]
                ys = [_nan(data[v].get(m, (None, None))[idx]) for v in variants]
                ax.bar(xs, ys, width, color=colors[m], alpha=alpha, hatch=hatch, edgecolor="black", lw=0.4,
                       label=f"{m} {kind}")
                k += 1
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("effective rank (mean over samples)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_panel_bars(panels: Mapping[str, Mapping[str, Tuple[Optional[float], Optional[float]]]], path: PathLike,
                    xlabel: str, title: str = "", lines: Sequence[Tuple[float, str]] = ((0.0, "-"),)) -> Path:
    """Small multiples of horizontal bars: one panel per key of `panels` (e.g. a noise level), one bar per variant
    with its mean and an error bar of ± std, and vertical reference lines at `lines` (value, linestyle).

    Bars of different variants never overlap, so a dozen variants stay readable where a dozen lines over noise would
    not (paired differences against a reference: the reference line is 0).
    """
    names = list(dict.fromkeys(v for panel in panels.values() for v in panel))
    if not panels or not names:
        fig, (ax,) = _figure()
        _empty(ax)
        return _save(fig, path)
    fig, axes = _figure(4.2, 0.9 + 0.32 * len(names), ncols=len(panels))
    colors = _colors(names)
    for ax, (label, panel) in zip(axes, panels.items()):
        ys = list(range(len(names)))[::-1]
        for y, v in zip(ys, names):
            mean, std = panel.get(v, (None, None))
            if _ok(mean):
                ax.barh(y, mean, xerr=_nan(std) if _ok(std) else None, color=colors[v], height=0.7, capsize=2)
        for x, style in lines:
            ax.axvline(x, color="black", linestyle=style, linewidth=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels(names if ax is axes[0] else [""] * len(names), fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
