"""Training on accelerate: one loop for CPU, one GPU, many GPUs and many nodes.

- The learning-rate schedule (linear warm-up, then cosine) is a function of the optimiser step, sized from the
  dataset length and the *global* batch (batch_size × processes × grad_accum), so a 2-process run follows the same
  schedule per sample as one process with 2 accumulation steps.
- Mixed precision (bf16/fp16) comes from `train.mixed_precision` through `accelerator.autocast()`.
- Every epoch ends with `save_state` into `checkpoints/epoch_XXXX` (atomic) and an updated `latest` pointer;
  `train.save_every_steps` adds mid-epoch states. `resume` restores model, optimiser, scheduler, EMA, RNG and the
  position in the epoch (`skip_first_batches`).
- The data order is a function of (seed, epoch) only, so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config, flatten, save_config
from ..metrics.anticipation import anticipation_metrics  # noqa: F401  (re-exported for tools)
from ..models.backbones import weights_records
from .builder import build_data, build_model, model_meta
from .checkpoint import (check_resumable, export_model, find_latest, load_training_state, save_training_state,
                         write_text_atomic)
from .extract import check_model_matches_cache
from .protocols import build_protocol
from .step import make_optimizer, train_step

_logger = logging.getLogger("r3d.train")


class TrainProgress:
    """Where training is: epoch, batches done in that epoch, optimiser steps, and the running sums of the epoch's
    logged losses (so a resumed epoch logs the same means). Saved with every state."""

    def __init__(self) -> None:
        self.epoch = 0
        self.batch_in_epoch = 0
        self.step = 0
        self.best: Dict[str, Any] = {}
        self.running: Dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        self.running[key] = self.running.get(key, 0.0) + value

    def epoch_means(self) -> Dict[str, float]:
        """{"train/loss": mean step loss (all processes), "train/<part>": mean over this process's batches}."""
        r = self.running
        out = {f"train/{k}": v / max(r.get("_batches", 0.0), 1.0) for k, v in r.items() if not k.startswith("_")}
        if r.get("_steps"):
            out["train/loss"] = r["_loss"] / r["_steps"]
        return out

    def state_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                "best": json.dumps(self.best), "running": json.dumps(self.running)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.step = int(state["step"])
        self.best = json.loads(state.get("best", "{}"))
        self.running = json.loads(state.get("running", "{}"))


def _regularizers(model, accelerator) -> list:
    return list(getattr(accelerator.unwrap_model(model), "regularizers", []))


def lr_lambda_factory(total_steps: int, warmup_steps: int, base_lr: float, min_lr: float):
    """Multiplier of the base LR at optimiser step s: linear warm-up to 1, then cosine to min_lr/base_lr."""
    floor = min_lr / base_lr if base_lr > 0 else 0.0

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def _no_accelerator_device() -> bool:
    """True when this machine has no GPU-like device accelerate could use (so distributed runs must use gloo/CPU)."""
    if torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return False
    try:
        from accelerate import utils as au
    except ImportError:  # pragma: no cover
        return True
    for name in ("is_xpu_available", "is_npu_available", "is_mlu_available", "is_musa_available", "is_hpu_available",
                 "is_sdaa_available"):
        fn = getattr(au, name, None)
        try:
            if fn is not None and fn():
                return False
        except Exception:  # a probe that cannot run means no such device
            pass
    return True


def make_accelerator(cfg: Config, find_unused: bool):
    """The Accelerator of a run: mixed precision, gradient accumulation, tracker, seedable sampler, DDP kwargs.

    Processes started by `accelerate launch --multi_gpu` / `torchrun` on a machine without GPUs run on CPU with the
    gloo backend (accelerate alone would silently give each process a separate single-process run).
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    mp = str(cfg.train.mixed_precision)
    if mp not in ("no", "bf16", "fp16"):
        raise ValueError(f"train.mixed_precision must be no, bf16 or fp16, got '{mp}'")
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    cpu = world > 1 and _no_accelerator_device()
    if mp == "fp16" and _no_accelerator_device():
        raise ValueError("train.mixed_precision=fp16 needs a GPU (on CPU accelerate silently runs fp32); use bf16 "
                         "or no")
    if world == 1 and "MASTER_PORT" in os.environ and "ACCELERATE_MIXED_PRECISION" in os.environ \
            and _no_accelerator_device():
        _logger.warning("accelerate launch started a single process: without GPUs pass --multi_gpu "
                        "(accelerate launch --multi_gpu --num_processes N ...) and r3d runs N processes on CPU (gloo)")
    log_with = None if cfg.train.log_with in (None, "none", "") else cfg.train.log_with
    return Accelerator(
        cpu=cpu,
        mixed_precision=mp,
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(cfg.work_dir),
                                            logging_dir=str(Path(cfg.work_dir) / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused)],
    )


def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """Seed of the torch RNG for one training batch: a function of (seed, epoch, batch in epoch, process) only.

    Reseeding before every batch makes in-model randomness (dropout, modality dropout) independent of history, so a
    run resumed mid-epoch draws exactly what an uninterrupted run draws, and each process draws differently.
    """
    return int(np.random.SeedSequence([int(seed), 0x7452, int(epoch), int(batch), int(rank)]).generate_state(1)[0])


class JsonlLog:
    """A JSON-lines log of the main process that reads as one uninterrupted run: on resume, the lines after the
    restored position (the value of `key`) are dropped. `WORK_DIR/train_log.jsonl` has one line per optimiser step
    (loss averaged over the step's micro-batches and over processes, LR, gradient norm; key "step");
    `WORK_DIR/epoch_log.jsonl` one line per epoch (the epoch's mean loss, LR and, when the epoch was validated, every
    validation metric as `val/<label>/<metric>`; key "epoch")."""

    def __init__(self, path: Path, enabled: bool, key: str = "step") -> None:
        self.path, self.enabled, self.key = path, enabled, key

    def truncate(self, position: int) -> None:
        if not self.enabled:
            return
        kept = []
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)[self.key] <= position:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):  # a line cut by a kill
                    break
        write_text_atomic(self.path, "".join(f"{k}\n" for k in kept))

    def write(self, record: Dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def environment(num_processes: int = 1) -> Dict[str, Any]:
    """What a run's exact numbers depend on besides config and seed: torch threads, processes, library versions.

    Two runs of one config and seed give bit-identical weights when these match (tests/test_grid.py); other thread
    counts split float sums differently, and other versions of the libraries that touch pixels (opencv's resize, the
    video decoders) or weights (torch, timm) move the last digits and, through training, a validation sample or two.
    """
    from importlib import metadata

    versions = {}
    for dist in ("r3d", "torch", "timm", "accelerate", "numpy", "opencv-python-headless", "decord2", "av"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"torch_threads": torch.get_num_threads(), "processes": int(num_processes), "versions": versions}


def _tracking(cfg: Config) -> bool:
    return cfg.train.log_with not in (None, "none", "")


def train(cfg: Config, resume: Optional[str] = None) -> Dict[str, Any]:
    """Train the model described by `cfg`; returns the final validation metrics (also in WORK_DIR/metrics.json).

    `resume`: None (fresh run; refuses a WORK_DIR that already has checkpoints), "auto" (latest state in
    WORK_DIR/checkpoints if any) or a state folder.
    """
    from accelerate.utils import set_seed

    from ..data.dataset import num_classes

    work_dir = Path(cfg.work_dir)
    ckpt_root = work_dir / "checkpoints"
    if resume is None and find_latest(ckpt_root) is not None:
        raise FileExistsError(
            f"{work_dir} already holds checkpoints: pass --resume to continue that run, or choose another work_dir "
            "(nothing was overwritten)"
        )
    state = None
    if resume is not None:
        state = find_latest(ckpt_root) if resume == "auto" else Path(resume)
        if state is not None and not state.is_dir():
            hint = " (a key=value override right after --resume is read as the folder: put --resume last, or write " \
                   "--resume auto)" if "=" in str(resume) else ""
            raise FileNotFoundError(f"--resume {resume}: no such state folder; pass a folder under {ckpt_root}, or "
                                    f"--resume auto{hint}")
    # Only modality dropout can skip a branch (a dropped modality's EBR projector gets no gradient).
    find_unused = float(cfg.model.modality_dropout) > 0
    accelerator = make_accelerator(cfg, find_unused)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(cfg.seed)
    if accelerator.is_main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, work_dir / "config.yaml")

    protocol = build_protocol(cfg)  # data.protocol: datasets, loss, evaluation and summary line
    data = build_data(cfg, accelerator=accelerator)
    if state is not None:
        for w in check_resumable(state, cfg.to_dict(), num_classes(data.info), accelerator.num_processes):
            _logger.warning(w)
    model = build_model(cfg, data.info)
    if accelerator.is_main_process:  # config.yaml also records the pretrained weights loaded (source, file, sha256)
        save_config(Config(cfg, loaded_weights=weights_records(model.backbones)), work_dir / "config.yaml")
    check_model_matches_cache(model, data.train)  # data.features: tokens made by these very backbone weights
    optimizer = make_optimizer(model, cfg)
    global_batch = cfg.train.batch_size * accelerator.num_processes * cfg.train.grad_accum
    steps_per_epoch = max(1, math.ceil(len(data.train) / global_batch))
    total_steps = steps_per_epoch * cfg.train.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda_factory(total_steps, steps_per_epoch * cfg.train.warmup_epochs, cfg.train.lr,
                                     cfg.train.min_lr))
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, data.train_loader,
                                                                     data.val_loader)
    accelerator.register_for_checkpointing(scheduler)
    progress = TrainProgress()
    accelerator.register_for_checkpointing(progress)
    ema = None
    if cfg.train.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(accelerator.unwrap_model(model), decay=cfg.train.ema_decay)
        accelerator.register_for_checkpointing(ema)

    if state is not None:
        load_training_state(accelerator, state)
        accelerator.print(f"resumed from {state} (epoch {progress.epoch}, batch {progress.batch_in_epoch}, "
                          f"step {progress.step})")
    step_log = JsonlLog(work_dir / "train_log.jsonl", accelerator.is_main_process)
    step_log.truncate(progress.step)
    epoch_log = JsonlLog(work_dir / "epoch_log.jsonl", accelerator.is_main_process, key="epoch")
    epoch_log.truncate(progress.epoch)
    if accelerator.is_main_process and _tracking(cfg):
        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in flatten(cfg.to_dict()).items()}
        accelerator.init_trackers("r3d", config=hp)
    elif _tracking(cfg):
        accelerator.init_trackers("r3d")

    def state_info() -> Dict[str, Any]:
        return {**progress.state_dict(), "config": cfg.to_dict(), "num_classes": num_classes(data.info)}

    regs = [r for r in _regularizers(model, accelerator) if hasattr(r, "set_epoch")]
    metrics: Dict[str, Any] = {}
    t_start = time.perf_counter()
    stats = getattr(data.train, "stats", {})
    if stats and accelerator.is_main_process:
        _logger.info("train data: %s", stats)
    for epoch in range(progress.epoch, cfg.train.epochs):
        progress.epoch = epoch
        for r in regs:
            r.set_epoch(epoch)
        if hasattr(data.train, "set_epoch"):
            data.train.set_epoch(epoch)
        train_loader.set_epoch(epoch)
        loader = train_loader
        if progress.batch_in_epoch > 0:
            loader = accelerator.skip_first_batches(train_loader, progress.batch_in_epoch)
            loader.set_epoch(epoch)  # (accelerate carries the epoch over; set it anyway, the order depends on it)
        model.train()
        bar = tqdm(loader, total=len(train_loader), initial=progress.batch_in_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not accelerator.is_local_main_process,
                   dynamic_ncols=True)
        step_loss = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # (sum of losses, micro-batches)
        for batch in bar:
            torch.manual_seed(batch_seed(cfg.seed, epoch, progress.batch_in_epoch, accelerator.process_index))
            with accelerator.accumulate(model):
                step_lr = scheduler.get_last_lr()[0]  # the LR this optimiser step uses
                result = train_step(model, batch, protocol, cfg, accelerator, optimizer)
                loss, parts, grad_norm = result.loss, result.parts, result.grad_norm
                step_loss += torch.stack([loss.double(), torch.ones((), dtype=torch.float64,
                                                                    device=step_loss.device)])
                synced = accelerator.sync_gradients
                if synced:
                    scheduler.step()
                    progress.step += 1
                    if ema is not None:
                        ema.update(accelerator.unwrap_model(model), step=progress.step)
            progress.batch_in_epoch += 1
            for k, v in parts.items():
                progress.add(k, float(v))
            for k, v in result.stats.items():
                progress.add(k, float(v.detach()) if torch.is_tensor(v) else float(v))
            progress.add("_batches", 1.0)
            if synced:
                total = accelerator.reduce(step_loss, reduction="sum")
                step_mean = float(total[0] / total[1])
                progress.add("_loss", step_mean)
                progress.add("_steps", 1.0)
                rec = {"step": progress.step, "epoch": epoch, "batch": progress.batch_in_epoch, "loss": step_mean,
                       "lr": step_lr}
                if grad_norm is not None:
                    rec["grad_norm"] = float(grad_norm)
                step_log.write(rec)
                step_loss.zero_()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if cfg.train.save_every_steps > 0 and synced \
                    and progress.step % cfg.train.save_every_steps == 0 and progress.batch_in_epoch < len(train_loader):
                save_training_state(accelerator, ckpt_root, f"step_{progress.step:07d}", cfg.train.keep_checkpoints,
                                    info=state_info())
        log = progress.epoch_means()
        log["train/lr"] = scheduler.get_last_lr()[0]
        last = epoch + 1 == cfg.train.epochs
        if last or (cfg.train.eval_every > 0 and (epoch + 1) % cfg.train.eval_every == 0):
            eval_model = ema.module if (ema is not None and cfg.train.eval_ema) else model
            calibrating = [r for r in _regularizers(eval_model, accelerator) if hasattr(r, "begin_calibration")] \
                if last else []
            for r in calibrating:  # e.g. EBR's modality ranking, from the validation pass of the final model
                r.begin_calibration()
            metrics = protocol.evaluate(eval_model, val_loader, accelerator, cfg, collapse=cfg.eval.collapse,
                                        observed_fractions=())
            for r in calibrating:
                metrics.setdefault("calibration", {}).update(
                    r.end_calibration(reduce_fn=lambda t: accelerator.reduce(t, reduction="sum")))
            log.update({f"val/{k}/{m}": v for k, d in metrics.items() if isinstance(d, dict) and k != "collapse"
                        for m, v in d.items() if isinstance(v, (int, float))})
            col = metrics.get("collapse", {})
            log.update({f"collapse/{k}": v for k, v in flatten(col).items() if isinstance(v, (int, float))})
            summary = protocol.summary(metrics)
        else:
            summary = f"(validated every {cfg.train.eval_every} epochs)"
        accelerator.print(f"epoch {epoch + 1}/{cfg.train.epochs}: loss {log.get('train/loss', float('nan')):.3f} "
                          f"{summary}")
        if _tracking(cfg):
            accelerator.log(log, step=epoch + 1)
        epoch_log.write({"epoch": epoch + 1, **{k: v for k, v in log.items() if isinstance(v, (int, float))}})
        progress.epoch = epoch + 1
        progress.batch_in_epoch = 0
        progress.running = {}
        save_training_state(accelerator, ckpt_root, f"epoch_{epoch + 1:04d}", cfg.train.keep_checkpoints,
                            info=state_info())

    accelerator.wait_for_everyone()
    if not metrics:  # resumed after the last epoch: evaluate the final state
        eval_model = ema.module if (ema is not None and cfg.train.eval_ema) else model
        metrics = protocol.evaluate(eval_model, val_loader, accelerator, cfg, collapse=cfg.eval.collapse)
    metrics["train_seconds"] = round(time.perf_counter() - t_start, 1)
    metrics["environment"] = environment(accelerator.num_processes)
    metrics["data"] = {"train": dict(getattr(data.train, "stats", {})), "val": dict(getattr(data.val, "stats", {}))}
    if accelerator.is_main_process:
        final = ema.module if (ema is not None and cfg.train.eval_ema) else accelerator.unwrap_model(model)
        meta = model_meta(cfg, data.info, final)
        export_model(final, meta, work_dir)
        write_text_atomic(work_dir / "metrics.json", json.dumps(metrics, indent=1))
    if _tracking(cfg):
        accelerator.end_training()
    return metrics
