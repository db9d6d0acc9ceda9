"""Anticipation tasks: what differs between protocols (`data.protocol`), behind one small interface.

The trainer, `tools/test.py` and the data builder ask the task of the run for its datasets, its loss, its evaluation
pass and a one-line summary, instead of branching on the protocol. Built in:

| `data.protocol` | task | datasets | loss | metrics.json |
|---|---|---|---|---|
| ``next_action`` | `NextActionTask` | `AnticipationDataset` (τa/τo) | verb/noun/action CE | top-1/5, MT5R, collapse |
| ``long_term`` | `long_term.LongTermTask` | `LongTermDataset` (first α) | FUTR losses | MoC per (α, β) |

A plugin registers another task with ``@TASKS.register("name")`` (module listed in `custom_imports`).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

from ..config import Config, ConfigError
from ..registry import Registry

TASKS = Registry("task")


class Task:
    """One anticipation protocol. Subclasses implement every method; `check` runs when the task is built."""

    name = ""
    exports_ek100 = False  # whether `tools/test.py --export-ek100` applies

    def check(self, cfg: Config) -> None:
        """Raise ConfigError when the config cannot run this protocol (one line naming the key)."""

    def build_datasets(self, cfg: Config, train: bool = True) -> Tuple[Optional[Any], Any, Any]:
        """(train dataset or None, validation dataset, `DatasetInfo`)."""
        raise NotImplementedError

    def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, Any], cfg: Config
             ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """(total scalar, {name: detached scalar}) of one batch, auxiliary model losses included."""
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, loader, accelerator, cfg: Config, collapse: bool = False,
                 reliance: bool = False, observed_fractions: Sequence[float] = (),
                 drop_modality: Optional[str] = None) -> Dict[str, Any]:
        """Metrics of one pass over `loader` (gathered over processes)."""
        raise NotImplementedError

    def summary(self, metrics: Mapping[str, Any]) -> str:
        """One line of the headline validation metrics (printed after each validated epoch)."""
        raise NotImplementedError


@TASKS.register("next_action")
class NextActionTask(Task):
    """EPIC-KITCHENS-100-style next-action anticipation (METHODS.md §5): one window before each segment."""

    name = "next_action"
    exports_ek100 = True

    def build_datasets(self, cfg, train=True):
        from ..data.dataset import build_datasets

        return build_datasets(cfg, train=train)

    def loss(self, outputs, batch, cfg):
        from .losses import anticipation_loss

        return anticipation_loss(outputs, batch, cfg.train.loss_weights, cfg.train.label_smoothing)

    def evaluate(self, model, loader, accelerator, cfg, collapse=False, reliance=False, observed_fractions=(),
                 drop_modality=None):
        from .evaluate import evaluate

        return evaluate(model, loader, accelerator, collapse=collapse, reliance=reliance,
                        observed_fractions=observed_fractions, drop_modality=drop_modality)

    def summary(self, metrics):
        return (f"val action top1 {metrics['action']['top1']:.2f} verb {metrics['verb']['top1']:.2f} "
                f"noun {metrics['noun']['top1']:.2f}")


def build_task(cfg: Config) -> Task:
    """The task of `data.protocol`, checked against the config."""
    from . import long_term  # noqa: F401  (registers "long_term")

    try:
        task = TASKS.build(cfg.data.protocol)
    except KeyError:
        raise ConfigError(f"config key 'data.protocol' is '{cfg.data.protocol}'; known protocols: "
                          f"{', '.join(TASKS.names())}") from None
    task.check(cfg)
    return task
