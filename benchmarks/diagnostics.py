"""P6: the effective-rank diagnostics' share of an evaluation pass.

What counts (decided here; docs/performance.md): P6 is the *effective-rank* diagnostics — per-sample erank of the rgb
and depth tokens before and after fusion and of the fused tokens, erank against the observed fraction over
`eval.observed_fractions`, the pooled (N, C) numerical rank and erank, gains and H: everything
`CollapseAccumulator` does (`collapse.seconds`), including any re-fusion of truncated windows that the model needs
(`r3d.engine.evaluate.observed_prefix`). Modality reliance — accuracy with a modality removed — needs one more
forward per modality by definition and is reported apart (`reliance_seconds`, and its share in the detail); it
now re-runs only fusion and head on the pass's own tokens, not the decode and backbones.

Measured the way `tools/test.py` evaluates: `r3d.engine.evaluate.evaluate(collapse=True, reliance=True)` over the
validation loader (decord + PNG16 decode in `data.num_workers` workers) with the benchmark model (random weights: the
cost does not depend on them). Each pass times itself: share = collapse seconds / pass seconds, so the two numbers
of a share come from the same pass; the figure is the median over passes. P6b repeats it in the setting of the smoke
grid (`tools/benchmark.py --quick`: 48 videos rendered at 32 px, read at 32 px), where decoding is cheapest and the
old diagnostics took 17–62 % of evaluation.
"""
from __future__ import annotations

import contextlib
import io
import statistics
from typing import Any, Dict, List, Optional, Sequence

import torch
from accelerate import Accelerator
from torch.utils.data import Subset

from r3d.config import Config, apply_overrides
from r3d.engine.builder import build_data, build_model, make_loader
from r3d.engine.evaluate import evaluate

from .common import dataset_root
from .timing import Figure

TARGET = 5.0  # percent
SMOKE_GRID = ("synthetic.size=32", "data.img_size=32")  # the smoke grid's data and model (r3d.engine.grid.QUICK)
SMOKE_GRID_VIDEOS = 48


def diagnostics_shares(cfg: Config, passes: int, samples: Optional[int] = None) -> Dict[str, Any]:
    """Evaluate `passes` times with collapse diagnostics and reliance; per-pass shares and seconds.

    Args:
        cfg: config whose `data.root` holds a dataset (validation split `data.val_split`).
        passes: evaluation passes.
        samples: evaluate only the first `samples` validation samples (None: all).
    Returns:
        {"share": [collapse s / pass s], "reliance_share": [reliance s / pass s], "eval_s": [...], "collapse_s":
        [...], "reliance_s": [...], "samples": n, "method": how truncated windows were made}.
    """


    accelerator = Accelerator(cpu=True)
    data = build_data(cfg, accelerator=accelerator, train=False)
    val = data.val if samples is None else Subset(data.val, list(range(min(samples, len(data.val)))))
    torch.manual_seed(0)
    model = build_model(cfg, data.info)
    model, loader = accelerator.prepare(model, make_loader(val, cfg, False, int(cfg.eval.batch_size)))
    out: Dict[str, Any] = {k: [] for k in ("share", "reliance_share", "eval_s", "collapse_s", "reliance_s")}
    for _ in range(passes):
        with contextlib.redirect_stderr(io.StringIO()):  # the evaluation's progress bar
            m = evaluate(model, loader, accelerator, collapse=True, reliance=True,
                         observed_fractions=cfg.eval.observed_fractions)
        col = m["collapse"]
        out["eval_s"].append(m["eval_seconds"])
        out["collapse_s"].append(col["seconds"])
        out["reliance_s"].append(col["reliance_seconds"])
        out["share"].append(col["seconds"] / m["eval_seconds"])
        out["reliance_share"].append(col["reliance_seconds"] / m["eval_seconds"])
        out["method"] = col.get("erank_vs_observed", {}).get("method")
    out["samples"] = len(val)
    return out


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None, workdir: Optional[str] = None,
            variants: Sequence[str] = ("P6", "P6b")) -> List[Figure]:
    """P6 / P6b: effective-rank diagnostics' share of evaluation time, benchmark model / smoke-grid setting (≤ 5 %).

    quick: 128 validation samples (2 batches of 64), 2 passes; full: the whole validation split, 3 passes.
    """
    passes = int(repeats or (2 if quick else 3))
    samples = 128 if quick else None
    figures = []
    for fid in variants:
        smoke = fid == "P6b"
        c = apply_overrides(cfg, list(SMOKE_GRID)) if smoke else cfg
        with dataset_root(c, videos=SMOKE_GRID_VIDEOS, workdir=workdir, reuse=not smoke) as cc:
            r = diagnostics_shares(cc, passes, samples)
        what = "erank diagnostics / evaluation time" + (" (smoke-grid data + model)" if smoke
                                                         else f" ({cc.data.img_size} px model)")
        figures.append(Figure(
            id=fid, what=what, value=100.0 * statistics.median(r["share"]), target=TARGET, unit="%",
            detail={"shares": [round(x, 4) for x in r["share"]], "eval_s": r["eval_s"],
                    "collapse_s": r["collapse_s"], "reliance_s": r["reliance_s"],
                    "reliance_share": round(statistics.median(r["reliance_share"]), 4),
                    "observed_fractions": list(cc.eval.observed_fractions), "prefix_method": r["method"],
                    "samples": r["samples"], "passes": passes, "img_size": int(cc.data.img_size),
                    "video_size": int(cc.synthetic.size) if smoke else None, "root": str(cc.data.root),
                    "torch_threads": torch.get_num_threads()}))
    return figures
