"""r3d's performance figures, run one after another: `run_bench`, behind `python -m benchmarks`.

| id | module | A vs B | target |
|---|---|---|---|
| P1, P1b | `train_step` | train step rtf/bn (rtf/svd) vs concat, CPU time | ≤ 1.03x (≤ 1.10x) |
| P2 | `loader` | train steps fed by the on-disk loader vs by in-memory batches, wall time | ≤ 1.10x |
| P3 | `feature_cache` | end-to-end frozen-backbone epoch vs epoch from the feature cache (speed-up) | ≥ 20x |
| P4, P4b | `demo` | streaming frames/s; 64- vs 8-frame history cost per frame | ≥ 30 fr/s; ≤ 1.2x |
| P5 | `decode` | every window of a 120 s 456×256 H.264 clip read as the loader does vs one sequential decode, wall time | ≤ 1.4x |
| P6, P6b | `diagnostics` | effective-rank diagnostics' share of evaluation time | ≤ 5 % |

Each figure is registered in `FIGURES` as a function (cfg, quick) -> Figure or [Figure]. A figure that raises is
reported as n/a with the reason instead of stopping the others.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import platform
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from r3d.config import Config
from r3d.registry import Registry

from . import decode, demo, diagnostics, feature_cache, loader, train_step
from .common import dataset_root
from .timing import Figure

FIGURES = Registry("benchmark figure")
NEEDS_DATA = ("P2", "P6")  # figures that read a dataset ROOT (data.root, or a small one rendered once)
_logger = logging.getLogger("benchmarks")


@FIGURES.register("P1")
def train_step_figures(cfg: Config, quick: bool) -> List[Figure]:
    """Train step with rtf/bn and rtf/svd vs concat."""
    return train_step.measure(cfg, quick)


@FIGURES.register("P2")
def loader_figure(cfg: Config, quick: bool) -> Figure:
    """Train steps fed from disk vs from memory."""
    return loader.measure(cfg, quick)


@FIGURES.register("P3")
def feature_cache_figure(cfg: Config, quick: bool) -> Figure:
    """Feature-cache epoch vs end-to-end frozen-backbone epoch."""
    backbones = [f"model.{m}_backbone.name={cfg.model[f'{m}_backbone'].name}" for m in ("rgb", "depth")]
    r = feature_cache.measure(quick=quick, overrides=backbones)
    detail = {k: v for k, v in r.items() if k != "metrics"}
    return Figure(id="P3", what="end-to-end frozen-backbone epoch / feature-cache epoch", value=float(r["ratio"]),
                  target=20.0, better=">=", detail=detail,
                  note="" if r.get("metrics_equal", True) else "metrics differ between the two ways")


@FIGURES.register("P4")
def demo_figures(cfg: Config, quick: bool) -> List[Figure]:
    """Streaming demo rate and history cost."""
    return demo.measure(cfg, quick)


@FIGURES.register("P5")
def decode_figure(cfg: Config, quick: bool) -> Figure:
    """RGB decode rate through the loader vs the decode floor."""
    return decode.measure(cfg, quick)


@FIGURES.register("P6")
def diagnostics_figures(cfg: Config, quick: bool) -> List[Figure]:
    """Effective-rank diagnostics' share of evaluation time."""
    return diagnostics.measure(cfg, quick)


def machine_info() -> Dict[str, Any]:
    """What the numbers depend on: cores, load average, torch threads and versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    info: Dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_1m": round(load[0], 2), "torch": torch.__version__,
                            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        import decord

        info["decord"] = getattr(decord, "__version__", "?")
    except ImportError:
        info["decord"] = None
    return info


def run_bench(cfg: Config, quick: bool = True, only: Optional[Sequence[str]] = None,
              on_figure: Optional[Callable[[Figure], None]] = None) -> Dict[str, Any]:
    """Run the registered figures (all, or the ids in `only`) in id order.

    Args:
        cfg: the benchmark model's config (`common.bench_config`).
        quick: the short settings of every figure (the whole run in ≤ 5 min on 2 cores).
        only: figure ids to run (e.g. ["P1", "P6"]); unknown ids are an error naming the known ones.
        on_figure: called with each Figure as soon as it is measured (the tool prints it).
    Returns:
        {"quick", "seconds", "machine_before", "machine_after", "figures": [Figure.to_dict(), ...]} (JSON-able).
    """
    ids = FIGURES.names()
    if only:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise KeyError(f"unknown figure id(s) {unknown}; known: {', '.join(ids)}")
        ids = [i for i in ids if i in only]
    t0 = time.perf_counter()
    before = machine_info()
    figures: List[Figure] = []
    with contextlib.ExitStack() as stack:
        if any(i in NEEDS_DATA for i in ids):  # one dataset for every figure that reads one
            cfg = stack.enter_context(dataset_root(cfg))
        for fid in ids:
            _run_figure(fid, cfg, quick, figures, on_figure)
    return {"quick": bool(quick), "seconds": round(time.perf_counter() - t0, 1), "machine_before": before,
            "machine_after": machine_info(), "figures": [f.to_dict() for f in figures]}


def _run_figure(fid: str, cfg: Config, quick: bool, figures: List[Figure],
                on_figure: Optional[Callable[[Figure], None]]) -> None:
    t1 = time.perf_counter()
    try:
        got = FIGURES.get(fid)(cfg, quick)
    except Exception as e:  # one broken figure must not hide the others; its line says why
        _logger.exception("figure %s failed", fid)
        doc = (inspect.getdoc(FIGURES.get(fid)) or fid).splitlines()[0]
        first = str(e).splitlines()[0][:160] if str(e) else ""
        got = Figure(id=fid, what=doc, value=None, target=float("nan"), note=f"error: {type(e).__name__}: {first}")
    for f in got if isinstance(got, list) else [got]:
        f.detail.setdefault("seconds", round(time.perf_counter() - t1, 1))
        figures.append(f)
        if on_figure is not None:
            on_figure(f)
