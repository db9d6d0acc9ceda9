"""The long-term protocol (`data.protocol: long_term`, FUTR style as R3D reports it): train on the train α, evaluate MoC at
every (α in test_alphas, β in betas).

Evaluation follows FUTR's ``predict.py`` / R3D's ``predict_nturgbd.py``: each (video, α) sample's query outputs are
decoded into frame labels of the predicted span (`r3d.models.heads.futr.render_future`); for each β the first
min(L, int((α+β)·L)) − int(α·L) of them are compared with the ground truth, and the per-class frame counts are
pooled over the videos of that α before the mean over classes (MoC, `r3d.metrics.anticipation.moc_counts`).
Counts have a fixed shape per sample, so they are gathered across processes with `gather_for_metrics` and the result
does not depend on the number of processes.

metrics.json gets a ``long_term`` section::

    {"moc": {"<α>": {"<β>": MoC %}}, "mean_moc": {"<β>": mean over α}, "moc_mean": mean over all (α, β),
     "segmentation_acc": {"<α>": observed-frame accuracy %}, "num_samples": {"<α>": n},
     "alphas": [...], "betas": [...]}

Not available for this protocol (stated): collapse diagnostics and modality reliance (tokens are padded to the longest
video of a batch), the feature cache (`data.features`) and the EK100 export.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from tqdm.auto import tqdm

from ...config import ConfigError
from ...data.long_term_dataset import LongTermDataset
from ...metrics.anticipation import moc_counts, moc_from_counts
from ...models.heads.futr import futr_loss, render_batch
from ...registry import HEADS, PROTOCOLS
from ..evaluate import drop_modality_inputs
from .base import AnticipationProtocol

_logger = logging.getLogger("r3d.long_term")


def _key(x: float) -> str:
    return f"{float(x):g}"


@torch.no_grad()
def predict_long_term(model: torch.nn.Module, loader, accelerator, drop_modality: Optional[str] = None,
                      desc: str = "eval long-term") -> Dict[str, torch.Tensor]:
    """Run `model` over a long-term loader; gather per-sample MoC counts and observed-frame segmentation hits.

    Returns (main and other processes alike): {"hits", "counts": (N, nβ, A+1) float64, "alpha_index": (N,),
    "seg_hits", "seg_count": (N,), "index": (N,)}.
    """
    was_training = model.training
    model.eval()
    chunks: Dict[str, List[torch.Tensor]] = {}
    bar = tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process, leave=False, dynamic_ncols=True)
    for batch in bar:
        batch = drop_modality_inputs(batch, drop_modality)
        with accelerator.autocast():
            out = model(batch)
        logits = out["logits"]
        none_id = logits["action"].shape[-1] - 1  # classes 0..A−1, background A, NONE A+1
        pred = render_batch(logits["action"].float(), logits["duration"].float(), batch["future_length"], none_id)
        target = batch["future_labels"].to(pred.device)
        hits, counts = moc_counts(pred, target, batch["beta_lengths"], none_id)
        obs = batch["obs_labels"].to(pred.device)
        seg_ok = (logits["segmentation"].argmax(-1) == obs) & (obs >= 0)
        local = {"hits": hits, "counts": counts, "alpha_index": batch["alpha_index"], "index": batch["index"],
                 "seg_hits": seg_ok.sum(1).double(), "seg_count": (obs >= 0).sum(1).double()}
        for k, v in accelerator.gather_for_metrics(local).items():
            chunks.setdefault(k, []).append(v.cpu())
    model.train(was_training)
    return {k: torch.cat(v) for k, v in chunks.items()}


def long_term_metrics(gathered: Mapping[str, torch.Tensor], alphas: Sequence[float], betas: Sequence[float]
                      ) -> Dict[str, Any]:
    """The ``long_term`` metrics section (module docstring) from `predict_long_term` output."""
    moc: Dict[str, Dict[str, float]] = {}
    seg: Dict[str, float] = {}
    num: Dict[str, int] = {}
    for ai, alpha in enumerate(alphas):
        sel = gathered["alpha_index"] == ai
        num[_key(alpha)] = int(sel.sum())
        moc[_key(alpha)] = {_key(b): moc_from_counts(gathered["hits"][sel][:, j], gathered["counts"][sel][:, j])
                            for j, b in enumerate(betas)}
        n = float(gathered["seg_count"][sel].sum())
        seg[_key(alpha)] = 100.0 * float(gathered["seg_hits"][sel].sum()) / n if n > 0 else math.nan

    def nanmean(values: List[float]) -> float:
        ok = [v for v in values if not math.isnan(v)]
        return sum(ok) / len(ok) if ok else math.nan

    mean_moc = {_key(b): nanmean([moc[_key(a)][_key(b)] for a in alphas]) for b in betas}
    return {"moc": moc, "mean_moc": mean_moc, "moc_mean": nanmean(list(mean_moc.values())),
            "segmentation_acc": seg, "num_samples": num, "alphas": [float(a) for a in alphas],
            "betas": [float(b) for b in betas]}


@PROTOCOLS.register("long_term")
class LongTermProtocol(AnticipationProtocol):
    """FUTR-style long-term anticipation: observe α of a video, predict the frame labels of the next β (MoC)."""

    name = "long_term"
    dataset_cls = LongTermDataset

    def check(self, cfg) -> None:
        head = HEADS.get(cfg.model.head)
        if getattr(head, "protocol", "next_action") != "long_term":
            raise ConfigError(f"config key 'model.head' is '{cfg.model.head}', a next-action head; "
                              f"data.protocol=long_term needs a long-term head: set model.head=futr")
        if cfg.model.action_from != "head":
            raise ConfigError("config key 'model.action_from' must be 'head' with data.protocol=long_term (the futr "
                              "head predicts actions directly)")
        if cfg.data.features:
            raise ConfigError("config key 'data.features' (the feature cache) is not supported with "
                              "data.protocol=long_term yet; set data.features=null")
        for key, what in (("model.unimodal.weight", "unimodal supervision"),
                          ("model.missing_view.weight", "the missing-modality view")):
            if float(cfg.get_path(key)) > 0:
                raise ConfigError(f"config key '{key}' ({what}) applies to the next-action protocol only; set it to 0 "
                                  f"with data.protocol=long_term")

    def loss(self, outputs, batch, cfg):
        lt = cfg.model.long_term
        total, parts = futr_loss(outputs["logits"], batch, lt.change_weight, lt.duration_weight, lt.seg_weight)
        for name, aux in outputs.get("losses", {}).items():  # fuser / regulariser losses, already weighted
            parts[name] = aux.detach().float()
            total = total + aux.float()
        return total, parts

    def evaluate(self, model, loader, accelerator, cfg, collapse=False, reliance=False, observed_fractions=(),
                 drop_modality=None):
        if collapse or reliance:
            _logger.info("collapse diagnostics and modality reliance are not computed for data.protocol=long_term")
        t0 = time.perf_counter()
        gathered = predict_long_term(model, loader, accelerator, drop_modality=drop_modality)
        lt = cfg.data.long_term
        result: Dict[str, Any] = {"long_term": long_term_metrics(gathered, lt.test_alphas, lt.betas),
                                  "eval_seconds": round(time.perf_counter() - t0, 3)}
        if drop_modality is not None:
            result["dropped_modality"] = drop_modality
        return result

    def summary(self, metrics):
        lt = metrics["long_term"]
        per_beta = " ".join(f"β={b} {v:.2f}" for b, v in lt["mean_moc"].items())
        return f"val MoC (mean over α) {per_beta}"
