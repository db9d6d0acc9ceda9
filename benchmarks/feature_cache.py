"""P3: a training epoch from the feature cache vs the end-to-end epoch with frozen backbones.

`measure` renders a small synthetic benchmark (`r3d.data.synthetic.generate`, 64×64 frames at 8 fps) into a temporary
folder, extracts its feature cache (`r3d.engine.extract.extract_features`), and times one training epoch of the
default model (`r3d/defaults.yaml`: RTF fuser, r3d_resnet_tiny backbones, T = 8, C = 128) with both backbones frozen,
two ways:

- end to end: the `AnticipationDataset` loader (decord RGB + PNG16 depth decode, transforms), frozen backbones,
  projection, fusion, head, loss, backward, AdamW step;
- from the cache: the `FeatureDataset` loader (token rows of the window from the safetensors shards), projection,
  fusion, head, loss, backward, AdamW step.

Each timed epoch starts from the same seeded model and optimiser and sees the same batches in the same order (fresh
loaders, `r3d.engine.trainer.batch_seed` before every batch, as the trainer does); the two ways alternate (ABBA...), and
the reported times are medians over the repetitions, because the machine is shared and noisy. The epoch time covers
the data loader and the optimisation steps only (not building datasets or models, not extraction, reported apart as
`extract_s`). After the first repetition's epochs both models are evaluated on the validation split:
``metrics_equal`` is True when every verb/noun/action top-1/top-5/MT5R agrees (to 1e-6 percent).
"""
from __future__ import annotations

import copy
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from accelerate.utils import set_seed

from r3d.config import load_config
from r3d.data.synthetic import generate
from r3d.engine.builder import build_data, build_model, make_loader
from r3d.engine.evaluate import metrics_of, predict
from r3d.engine.extract import extract_features
from r3d.engine.trainer import batch_seed

from .common import TrainStep

QUICK = {"videos": 12, "repeats": 3}
FULL = {"videos": 40, "repeats": 5}


def _train_epoch(model: torch.nn.Module, loader, cfg) -> Tuple[float, List[float], TrainStep]:
    """One epoch of the trainer's step (`TrainStep`), each batch seeded as the trainer seeds it
    -> (seconds, per-batch losses, the step: its accelerator evaluates the model afterwards)."""
    step = TrainStep(model, cfg)
    losses: List[float] = []
    t0 = time.perf_counter()
    for b, batch in enumerate(loader):
        torch.manual_seed(batch_seed(cfg.seed, 0, b, 0))
        losses.append(step(batch))
    return time.perf_counter() - t0, losses, step


def _metric_values(metrics: Dict[str, Any]) -> Dict[str, float]:
    return {f"{task}.{name}": float(v) for task in ("verb", "noun", "action")
            for name, v in metrics[task].items() if isinstance(v, (int, float))}


def measure(quick: bool = True, repeats: Optional[int] = None, num_workers: int = 0,
            overrides: Sequence[str] = (), workdir: Optional[str] = None) -> Dict[str, Any]:
    """Time one epoch end to end (frozen backbones) against one epoch from the feature cache (module docstring).

    Args:
        quick: 12 videos (54 training samples, 2 batches) and 3 repetitions; False: 40 videos (180 samples), 5.
        repeats: override the number of repetitions.
        num_workers: DataLoader workers of both loaders (0: decoding in the training process).
        overrides: config overrides (key=value) of the measured model, e.g. another backbone.
        workdir: folder for the synthetic data and the cache (default: a temporary folder, removed afterwards).
    Returns:
        {"ratio": end_to_end_s / cache_s, "end_to_end_s": median epoch seconds end to end, "cache_s": median epoch
        seconds from the cache, "metrics_equal": bool, plus "end_to_end_runs" / "cache_runs" (every timing),
        "extract_s", "train_samples", "batches", "repeats", "max_loss_diff", "max_logit_diff", "metrics"}.
    """
    p = QUICK if quick else FULL
    reps = int(repeats or p["repeats"])
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="r3d_p3_"))
    try:
        root = tmp / "data"
        generate(root, videos=p["videos"], size=64, fps=8.0, seed=0, workers=1, progress=False)
        cfg = load_config(None, [f"data.root={root}", "model.rgb_backbone.freeze=true",
                                 "model.depth_backbone.freeze=true", f"data.num_workers={num_workers}",
                                 "train.log_with=none", f"work_dir={tmp / 'run'}", *overrides])
        t0 = time.perf_counter()
        extract_features(cfg, tmp / "cache", progress=False)
        extract_s = time.perf_counter() - t0
        cfg_cache = copy.deepcopy(cfg)
        cfg_cache.data.features = str(tmp / "cache")
        ways = {"end_to_end": (cfg, build_data(cfg)), "cache": (cfg_cache, build_data(cfg_cache))}
        runs: Dict[str, List[float]] = {w: [] for w in ways}
        losses: Dict[str, List[float]] = {}
        evals: Dict[str, Tuple[Dict[str, Any], Dict[str, torch.Tensor]]] = {}
        for r in range(reps):
            for way in (("end_to_end", "cache") if r % 2 == 0 else ("cache", "end_to_end")):
                c, data = ways[way]
                set_seed(int(c.seed))
                model = build_model(c, data.info)
                loader = make_loader(data.train, c, True, c.train.batch_size)
                seconds, way_losses, step = _train_epoch(model, loader, c)
                runs[way].append(seconds)
                if r == 0:
                    losses[way] = way_losses
                    preds = predict(model, make_loader(data.val, c, False, c.eval.batch_size), step.accelerator)
                    evals[way] = (metrics_of(preds), preds.scores)
        e2e, cache = statistics.median(runs["end_to_end"]), statistics.median(runs["cache"])
        ma, mb = _metric_values(evals["end_to_end"][0]), _metric_values(evals["cache"][0])
        la, lb = evals["end_to_end"][1], evals["cache"][1]
        return {
            "ratio": e2e / cache,
            "end_to_end_s": e2e,
            "cache_s": cache,
            "metrics_equal": ma.keys() == mb.keys() and all(abs(ma[k] - mb[k]) <= 1e-6 for k in ma),
            "end_to_end_runs": runs["end_to_end"],
            "cache_runs": runs["cache"],
            "extract_s": extract_s,
            "train_samples": len(ways["cache"][1].train),
            "batches": len(losses["cache"]),
            "repeats": reps,
            "max_loss_diff": max(abs(a - b) for a, b in zip(losses["end_to_end"], losses["cache"])),
            "max_logit_diff": max(float((la[k] - lb[k]).abs().max()) for k in la),
            "metrics": {"end_to_end": evals["end_to_end"][0], "cache": evals["cache"][0]},
        }
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
