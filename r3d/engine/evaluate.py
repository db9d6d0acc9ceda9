"""Evaluation: per-sample scores gathered across processes, anticipation metrics, and collapse diagnostics.

`predict` runs the model over a loader and gathers per-sample tensors with `accelerator.gather_for_metrics`, so the
duplicates that distributed samplers pad the last batch with never count. `drop_modality` removes one modality for
every sample — it zeroes that input and clears its presence flag, and changes nothing else — which is how modality
reliance and missing-modality robustness are measured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..metrics.anticipation import anticipation_metrics
from ..metrics.collapse import CollapseAccumulator

Tensor = torch.Tensor
LABEL_KEYS = ("verb", "noun", "action")


def drop_modality_inputs(batch: Dict[str, Any], modality: Optional[str]) -> Dict[str, Any]:
    """Return a shallow copy of `batch` with `modality` removed for every sample (zeros + presence False)."""
    if modality is None:
        return batch
    out = dict(batch)
    present = dict(out.get("present") or {})
    ref = out.get(modality, out.get(f"feats_{modality}"))
    if ref is None:
        raise KeyError(f"drop_modality: the batch has no '{modality}' input")
    present[modality] = torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
    out["present"] = present
    for key in (modality, f"feats_{modality}"):
        if key in out:
            out[key] = torch.zeros_like(out[key])
    return out


@dataclass
class Predictions:
    """Gathered per-sample results of one pass over a loader (N samples)."""

    scores: Dict[str, Tensor]                  # {"verb": (N,V), "noun": (N,Nn), "action": (N,A)} float32
    labels: Dict[str, Tensor]                  # {"verb": (N,), ...} int64
    index: Tensor                              # (N,) dataset positions
    present: Dict[str, Tensor]                 # {m: (N,) bool} presence the model saw
    collapse: Optional[Dict[str, Any]] = None  # CollapseAccumulator result (main process), or None
    seconds: float = 0.0                       # wall time of the pass
    collapse_seconds: float = 0.0              # part of it spent on collapse diagnostics
    extras: Dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def predict(model: torch.nn.Module, loader, accelerator, drop_modality: Optional[str] = None, collapse: bool = False,
            observed_fractions: Sequence[float] = (), desc: str = "eval") -> Predictions:
    """Run `model` over `loader`; gather scores, labels, sample indices (and collapse statistics if asked)."""
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    acc = CollapseAccumulator(observed_fractions=observed_fractions) if collapse else None
    chunks: Dict[str, List[Tensor]] = {}
    bar = tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process, leave=False, dynamic_ncols=True)
    for batch in bar:
        batch = drop_modality_inputs(batch, drop_modality)
        with accelerator.autocast():
            out = model(batch)
        local = {f"score_{k}": v.float() for k, v in out["logits"].items()}
        for k in LABEL_KEYS:
            local[f"label_{k}"] = batch[k]
        local["index"] = batch["index"]
        for m, p in out["present"].items():
            local[f"present_{m}"] = p
        if acc is not None:
            local.update(acc.per_sample(out))
        gathered = accelerator.gather_for_metrics(local)
        for k, v in gathered.items():
            chunks.setdefault(k, []).append(v.cpu())
    cat = {k: torch.cat(v) for k, v in chunks.items()}
    preds = Predictions(
        scores={k[6:]: v for k, v in cat.items() if k.startswith("score_")},
        labels={k[6:]: v.long() for k, v in cat.items() if k.startswith("label_")},
        index=cat["index"].long(),
        present={k[8:]: v.bool() for k, v in cat.items() if k.startswith("present_")},
    )
    if acc is not None:
        preds.collapse = acc.finalize({k: v for k, v in cat.items() if acc.owns(k)})
        preds.collapse_seconds = acc.seconds
    preds.seconds = time.perf_counter() - t0
    model.train(was_training)
    return preds


def metrics_of(preds: Predictions) -> Dict[str, Any]:
    """Anticipation metrics (percent) of gathered predictions: {verb, noun, action: {top1, top5, mt5r}, ...}."""
    return anticipation_metrics(preds.scores, preds.labels)


def correct_top1(preds: Predictions, key: str = "action") -> Tensor:
    """(N,) bool: is the top-1 prediction right (samples without a usable label are False)."""
    return preds.scores[key].argmax(-1) == preds.labels[key]


def evaluate(model: torch.nn.Module, loader, accelerator, collapse: bool = False, reliance: bool = False,
             observed_fractions: Sequence[float] = (), drop_modality: Optional[str] = None) -> Dict[str, Any]:
    """Metrics of one evaluation pass, with collapse diagnostics and modality reliance when asked.

    Reliance re-runs the loader once per modality with that modality removed, on the same samples, and reports
    action top-1 and its relative drop (a model whose accuracy does not move when depth is removed relies on RGB only).
    """
    from ..metrics.collapse import modality_reliance

    preds = predict(model, loader, accelerator, drop_modality=drop_modality, collapse=collapse,
                    observed_fractions=observed_fractions)
    result: Dict[str, Any] = dict(metrics_of(preds))
    result["eval_seconds"] = round(preds.seconds, 3)
    if drop_modality is not None:
        result["dropped_modality"] = drop_modality
    if preds.collapse is not None:
        col = dict(preds.collapse)
        col["seconds"] = round(preds.collapse_seconds, 4)
        col["share_of_eval_time"] = round(preds.collapse_seconds / max(preds.seconds, 1e-9), 4)
        result["collapse"] = col
    modalities = list(preds.present)
    if reliance and len(modalities) > 1:
        dropped = {}
        t0 = time.perf_counter()
        for m in modalities:
            p = predict(model, loader, accelerator, drop_modality=m, desc=f"eval -{m}")
            order = torch.argsort(p.index)
            dropped[m] = (correct_top1(p)[order], p.index[order])
        order = torch.argsort(preds.index)
        rel = modality_reliance(correct_top1(preds)[order], {m: c for m, (c, _) in dropped.items()},
                                ids=preds.index[order], dropped_ids={m: i for m, (_, i) in dropped.items()},
                                valid=(preds.labels["action"] >= 0)[order])  # unlabelled samples do not count
        result.setdefault("collapse", {})["reliance"] = rel
        result["collapse"]["reliance_seconds"] = round(time.perf_counter() - t0, 3)
    return result
