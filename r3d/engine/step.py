"""One optimisation step, as the trainer takes it: shared by `r3d.engine.trainer` and the performance benchmarks.

`make_optimizer` builds AdamW with weight decay on matrices only; `train_step` runs forward (under the accelerator's
autocast), the protocol's loss, backward, gradient clipping at the synchronisation step, the optimiser step and
zero_grad. Gradient accumulation, the LR schedule, EMA and logging stay in the trainer's loop around it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import torch

from ..config import Config


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """AdamW at `train.lr`: `train.weight_decay` on weight matrices, none on biases, norms, positions and RTF's α."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or n.endswith(".pos") or "alpha" in n else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.train.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.train.lr)


@dataclass
class StepResult:
    """What one micro-batch step gives back: the loss (detached), its parts, the model's logged statistics (its
    output's "stats", e.g. RTF's α), and the gradient norm before clipping (None when this micro-batch did not
    synchronise gradients or clipping is off)."""

    loss: torch.Tensor
    parts: Dict[str, torch.Tensor]
    stats: Dict[str, Any]
    grad_norm: Optional[torch.Tensor]


def train_step(model: torch.nn.Module, batch: Mapping[str, Any], protocol: Any, cfg: Config, accelerator: Any,
               optimizer: torch.optim.Optimizer) -> StepResult:
    """Forward, loss, backward, clip, optimiser step and zero_grad for one micro-batch.

    Call inside `accelerator.accumulate(model)` when accumulating gradients (accelerate then skips the optimiser step
    until the synchronisation step); `protocol` is the run's `AnticipationProtocol` (its `loss`).
    """
    with accelerator.autocast():
        out = model(batch)
    loss, parts = protocol.loss(out, batch, cfg)
    accelerator.backward(loss)
    grad_norm = None
    if accelerator.sync_gradients and cfg.train.clip_grad > 0:
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.train.clip_grad)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss.detach(), parts, dict(out.get("stats", {})), grad_norm)
