"""P1: the cost of RTF in a training step, against the same model with the `concat` baseline fuser.

A train step is `common.TrainStep` (forward, loss, backward, clipping, AdamW) of the benchmark model on one batch of
random inputs at the configured batch size; the three models (`concat`, `rtf` with BN-γ selection, `rtf_svd`) differ
only in `model.fuser` and start from the same seed. Steps of the three alternate round by round (`timing.interleaved`)
and each figure is the median over rounds of the paired ratio rtf / concat.

Clock: CPU seconds of this process (`time.process_time`). A train step is single-process compute, and on a shared
machine its wall time mostly measures how much of the CPU the other jobs took; its CPU time does not.
"""
from __future__ import annotations

import statistics
import time
from typing import Dict, List, Optional

from r3d.config import Config, apply_overrides

from .common import TrainStep, build_random_model, random_batch
from .timing import Figure, interleaved, paired_ratio

TARGETS = {"rtf": 1.03, "rtf_svd": 1.10}


def train_step_costs(cfg: Config, fusers=("concat", "rtf", "rtf_svd"), batch_size: Optional[int] = None,
                     repeats: int = 5, warmup: int = 1, clock=time.process_time) -> Dict[str, List[float]]:
    """Seconds per train step of the config's model with each fuser in `fusers`, interleaved: {fuser: [seconds]}."""
    bs = int(batch_size or cfg.train.batch_size)
    batch = random_batch(cfg, bs, seed=0)
    steps = {}
    for f in fusers:
        c = apply_overrides(cfg, [f"model.fuser={f}"])
        steps[f] = TrainStep(build_random_model(c, seed=0), c)
    return interleaved({f: (lambda s=s: s(batch)) for f, s in steps.items()}, repeats, warmup, clock).samples


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None) -> List[Figure]:
    """P1: train-step cost of rtf (bn) and rtf_svd relative to concat (targets ≤ 1.03x and ≤ 1.10x).

    The config's batch size; quick: 8 rounds, full: 15.
    """
    reps = int(repeats or (8 if quick else 15))
    bs = int(cfg.train.batch_size)
    samples = train_step_costs(cfg, batch_size=bs, repeats=reps)
    out = []
    for f, label in (("rtf", "rtf/bn"), ("rtf_svd", "rtf/svd")):
        out.append(Figure(
            id="P1" if f == "rtf" else "P1b", what=f"train step {label} vs concat (CPU s, batch {bs})",
            value=paired_ratio(samples[f], samples["concat"]), target=TARGETS[f], unit="x",
            detail={"median_step_cpu_s": {k: round(statistics.median(v), 4) for k, v in samples.items()},
                    "paired_ratios": [round(a / b, 4) for a, b in zip(samples[f], samples["concat"])],
                    "rounds": reps, "batch_size": bs, "clock": "process_time"}))
    return out
