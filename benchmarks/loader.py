"""P2: does the on-disk loader starve training? Steps fed by the real loader vs by in-memory tensors.

A: one pass over a fixed subset of the training split through the trainer's own DataLoader
(`r3d.engine.builder.make_loader`: `data.num_workers` worker processes, decord RGB + PNG16 depth decode, transforms),
a `common.TrainStep` per batch, timed from the arrival of the first batch to the end of the last step: every wait
for data after that, and the CPU the workers take from the training process, count (`blocked_on_data_s` is the time
spent waiting in `next()`, starvation proper; the rest of A − B is CPU the workers took). B: the same batches,
collected beforehand, from memory, through the same step. Rounds alternate A and B (`timing.interleaved`); the
figure is the median paired ratio A / B of wall time (waiting for data is what is measured: the clock is the wall).

Worker start-up (the trainer starts workers every epoch: `persistent_workers=False`, because `set_epoch` must reach
the dataset copy each worker holds) is reported apart, as seconds and as a share of a full training epoch at the
measured step time; the subsets here are too short for it to weigh what it weighs in an epoch.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Dict, List, Optional

import torch
from torch.utils.data import Subset

from r3d.config import Config
from r3d.engine.builder import build_data, build_model, make_loader

from .common import TrainStep, dataset_root
from .timing import Figure, Measured, interleaved, paired_ratio

TARGET = 1.10


def loader_throughput(loader, batches: int) -> float:
    """Samples per second the loader delivers with nothing else to do (first batch included)."""
    t0 = time.perf_counter()
    n = 0
    for i, batch in enumerate(loader):
        n += int(batch["index"].shape[0])
        if i + 1 >= batches:
            break
    return n / max(time.perf_counter() - t0, 1e-9)


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None, workdir: Optional[str] = None) -> Figure:
    """P2: wall time of train steps fed by the on-disk loader vs the same batches from memory (≤ 1.10x).

    The config's batch size; quick: 4 batches, 5 rounds; full: 10 batches, 7 rounds.
    """

    reps = int(repeats or (5 if quick else 7))
    steps = 4 if quick else 10
    with dataset_root(cfg, workdir=workdir) as c:
        bs = int(c.train.batch_size)
        data = build_data(c, train=True)
        subset = Subset(data.train, list(range(min(len(data.train), steps * bs))))
        loader = make_loader(subset, c, True, bs)
        memory: List[Dict[str, Any]] = list(loader)  # the very batches of an epoch (also warms the page cache)
        step = TrainStep(build_model(c, data.info), c)

        startup: List[float] = []
        waited: List[float] = []

        def from_disk() -> Measured:
            t0 = time.perf_counter()
            it = iter(loader)
            batch = next(it)
            t1 = time.perf_counter()
            startup.append(t1 - t0)
            wait = 0.0
            while True:
                step(batch)
                t_end = time.perf_counter()
                batch = next(it, None)  # the last call also shuts the workers down: not timed
                if batch is None:
                    break
                wait += time.perf_counter() - t_end
            waited.append(wait)
            return Measured(t_end - t1)

        def from_memory() -> None:
            for batch in memory:
                step(batch)

        samples = interleaved({"loader": from_disk, "memory": from_memory}, reps, warmup=0).samples
        rate = loader_throughput(loader, len(memory))
        epoch_steps = -(-len(data.train) // bs)
    step_s = statistics.median(samples["memory"]) / len(memory)
    ratio = paired_ratio(samples["loader"], samples["memory"])
    start = statistics.median(startup)
    return Figure(
        id="P2", what=f"train steps fed from disk ({c.data.num_workers} workers) vs from memory ({len(memory)}x{bs})",
        value=ratio, target=TARGET, unit="x",
        detail={"median_s": {k: round(statistics.median(v), 3) for k, v in samples.items()},
                "paired_ratios": [round(a / b, 4) for a, b in zip(samples["loader"], samples["memory"])],
                "blocked_on_data_s": round(statistics.median(waited), 3),
                "worker_startup_s": round(start, 3),
                "startup_share_of_epoch": round(start / (epoch_steps * step_s), 4),
                "epoch": f"{epoch_steps} steps of batch {bs} at ~{step_s:.2f} s",
                "loader_samples_per_s": round(rate, 1),
                "train_samples_per_s": round(len(memory) * bs / statistics.median(samples["memory"]), 1),
                "num_workers": int(c.data.num_workers), "batches": len(memory), "batch_size": bs, "rounds": reps,
                "root": str(c.data.root), "clock": "perf_counter", "torch_threads": torch.get_num_threads()})
