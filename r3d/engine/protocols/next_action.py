"""EPIC-KITCHENS-100-style next-action anticipation (`data.protocol: next_action`, the default).

Datasets: `r3d.data.dataset.AnticipationDataset` (one window of τo seconds ending τa before each segment); loss:
verb/noun/action cross-entropy plus the model's auxiliary losses; metrics.json: top-1/top-5 and class-mean top-5
recall per verb/noun/action, with collapse diagnostics and modality reliance when asked.
"""
from __future__ import annotations

from ...data.dataset import AnticipationDataset
from ...registry import PROTOCOLS
from ..evaluate import evaluate
from ..losses import anticipation_loss
from .base import AnticipationProtocol


@PROTOCOLS.register("next_action")
class NextActionProtocol(AnticipationProtocol):
    """EPIC-KITCHENS-100-style next-action anticipation: one observed window before each segment."""

    name = "next_action"
    dataset_cls = AnticipationDataset
    exports_ek100 = True

    def loss(self, outputs, batch, cfg):
        return anticipation_loss(outputs, batch, cfg.train.loss_weights, cfg.train.label_smoothing)

    def evaluate(self, model, loader, accelerator, cfg, collapse=False, reliance=False, observed_fractions=(),
                 drop_modality=None):
        return evaluate(model, loader, accelerator, collapse=collapse, reliance=reliance,
                        observed_fractions=observed_fractions, drop_modality=drop_modality)

    def summary(self, metrics):
        parts = [f"val action top1 {metrics['action']['top1']:.2f}"]
        parts += [f"{k} {metrics[k]['top1']:.2f}" for k in ("verb", "noun") if metrics[k].get("informative", True)]
        return " ".join(parts)
