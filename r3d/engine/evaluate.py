"""Evaluation: per-sample scores gathered across processes, anticipation metrics, and collapse diagnostics.

`predict` runs the model over a loader and gathers per-sample tensors with `accelerator.gather_for_metrics`, so the
duplicates that distributed samplers pad the last batch with never count. `drop_modality` removes one modality for
every sample — it zeroes that input and clears its presence flag, and changes nothing else — which is how modality
reliance and missing-modality robustness are measured.

Cost of the diagnostics (figure P6 of `python -m benchmarks`, measured there):
- Effective ranks are batched SVDs of tokens the pass already computed (`CollapseAccumulator.per_sample`). The
  erank-vs-observed curves need the window cut to its first n frames; `observed_prefix` picks the cheapest exact way:
  slice the full window's tokens (per-frame backbones and a `frame_local` fuser: the default model), re-run only the
  regularisers + fuser + head on the first n backbone tokens (per-frame backbones, a fuser that mixes frames, e.g.
  rtf_svd or tokenfusion), or re-run the model on the first n frames (a backbone that mixes frames, e.g. inflated3d
  that are not causal). Its time is part of `collapse.seconds` / `share_of_eval_time`.
- Modality reliance needs, by definition, one more forward per removed modality. Removing modality m only zeroes its
  tokens and clears its presence flag before the regularisers (`Anticipator.forward_tokens` multiplies every
  modality's tokens by its presence), and the other modalities' backbone tokens do not depend on m, so the removed-m
  pass is `forward_tokens(tokens_pre, present with m False)` on the tokens of the full pass: no second decode, no
  second backbone pass, same samples by construction. It is timed apart (`collapse.reliance_seconds`) and is not part
  of the effective-rank share.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..metrics.anticipation import anticipation_metrics
from ..metrics.collapse import CollapseAccumulator, PrefixFn, modality_reliance, token_sets

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


def prefix_exact_backbone(backbone: torch.nn.Module) -> bool:
    """Whether a backbone's tokens of a window's first n frames are the first n tokens of the whole window: true for
    backbones that declare themselves `causal` (per-frame ones, and I3D-style ones that pad only the past or whose
    temporal kernel is 1; see `r3d.models.backbones.frame2d.FrameBackbone2D`)."""
    return bool(getattr(backbone, "causal", False))


def observed_prefix(model: torch.nn.Module, batch: Mapping[str, Any], out: Mapping[str, Any],
                    autocast: Callable = contextlib.nullcontext) -> Tuple[str, Optional[PrefixFn]]:
    """How to get the token sets of `batch`'s windows cut to their first n frames, for the erank-vs-observed curves.

    Args:
        model: the unwrapped `Anticipator`; batch: the batch it ran on; out: its output on the full windows.
        autocast: context manager factory the full pass ran under (e.g. `accelerator.autocast`).

    Returns:
        (method, prefix): ("slice", None) when slicing `out` is exact; else ("refuse", fn) — regularisers, fuser and
        head re-run on the first n backbone tokens — or ("reencode", fn) — the whole model on the first n frames;
        fn(n) -> `token_sets` of the truncated windows. A frame-mixing backbone fed cached features (`feats_<m>`, made
        on whole windows) can only be re-fused: "refuse (cached features of a frame-mixing backbone)".
    """
    mods = list(model.modalities)
    exact = all(prefix_exact_backbone(model.backbones[m]) for m in mods)
    if exact and getattr(model.fuser, "frame_local", False):
        return "slice", None
    cached = all(f"feats_{m}" in batch for m in mods)
    if exact or cached:
        def refuse(n: int) -> Dict[str, Tensor]:
            with autocast():
                return token_sets(model.forward_tokens({m: z[:, :n] for m, z in out["tokens_pre"].items()},
                                                       batch.get("present")))

        return ("refuse" if exact else "refuse (cached features of a frame-mixing backbone)"), refuse

    def reencode(n: int) -> Dict[str, Tensor]:
        with autocast():
            return token_sets(model({**batch, **{m: batch[m][:, :n] for m in mods}}))

    return "reencode", reencode


@dataclass
class Predictions:
    """Gathered per-sample results of one pass over a loader (N samples)."""

    scores: Dict[str, Tensor]                  # {"verb": (N,V), "noun": (N,Nn), "action": (N,A)} float32
    labels: Dict[str, Tensor]                  # {"verb": (N,), ...} int64
    index: Tensor                              # (N,) dataset positions
    present: Dict[str, Tensor]                 # {m: (N,) bool} presence the model saw
    collapse: Optional[Dict[str, Any]] = None  # CollapseAccumulator result (main process), or None
    seconds: float = 0.0                       # wall time of the pass, without the reliance forwards
    collapse_seconds: float = 0.0              # part of it spent on collapse diagnostics
    reliance_seconds: float = 0.0              # wall time of the removed-modality forwards (not in `seconds`)
    without: Dict[str, Tensor] = field(default_factory=dict)  # {m: (N, A) action scores with m removed}
    extras: Dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def predict(model: torch.nn.Module, loader, accelerator, drop_modality: Optional[str] = None, collapse: bool = False,
            observed_fractions: Sequence[float] = (), desc: str = "eval", reliance: bool = False) -> Predictions:
    """Run `model` over `loader`; gather scores, labels, sample indices (and collapse statistics if asked).

    `reliance`: also score every sample with each modality removed, from the full pass's tokens (module docstring);
    `Predictions.without[m]` holds those action scores. `seconds` excludes that extra work (`reliance_seconds`).
    """
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    core = accelerator.unwrap_model(model)
    acc = CollapseAccumulator(observed_fractions=observed_fractions) if collapse else None
    mods = list(getattr(core, "modalities", []))
    reliance = reliance and len(mods) > 1
    reliance_seconds = 0.0
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
            prefix = None
            if acc.fractions:
                acc.prefix_method, prefix = observed_prefix(core, batch, out, accelerator.autocast)
            local.update(acc.per_sample(out, prefix))
        if reliance:
            t1 = time.perf_counter()
            given = batch.get("present") or {}
            b = local["index"].shape[0]
            for m in mods:
                present = {k: given[k] if k in given else torch.ones(b, dtype=torch.bool, device=local["index"].device)
                           for k in mods}
                present[m] = torch.zeros_like(present[m], dtype=torch.bool)
                with accelerator.autocast():
                    o = core.forward_tokens(out["tokens_pre"], present, batch.get("token_mask"))
                local[f"without_{m}"] = o["logits"]["action"].float()
            reliance_seconds += time.perf_counter() - t1
        gathered = accelerator.gather_for_metrics(local)
        for k, v in gathered.items():
            chunks.setdefault(k, []).append(v.cpu())
    cat = {k: torch.cat(v) for k, v in chunks.items()}
    preds = Predictions(
        scores={k[6:]: v for k, v in cat.items() if k.startswith("score_")},
        labels={k[6:]: v.long() for k, v in cat.items() if k.startswith("label_")},
        index=cat["index"].long(),
        present={k[8:]: v.bool() for k, v in cat.items() if k.startswith("present_")},
        without={k[8:]: v for k, v in cat.items() if k.startswith("without_")},
        reliance_seconds=reliance_seconds,
    )
    if acc is not None:
        preds.collapse = acc.finalize({k: v for k, v in cat.items() if acc.owns(k)})
        preds.collapse_seconds = acc.seconds
    preds.seconds = time.perf_counter() - t0 - reliance_seconds
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

    Reliance scores each sample again with each modality removed (on top of `drop_modality`, if given), in the same
    pass and from the same tokens (module docstring), and reports action top-1 and its relative drop (a model whose
    accuracy does not move when depth is removed relies on RGB only).
    """
    preds = predict(model, loader, accelerator, drop_modality=drop_modality, collapse=collapse,
                    observed_fractions=observed_fractions, reliance=reliance)
    result: Dict[str, Any] = dict(metrics_of(preds))
    result["eval_seconds"] = round(preds.seconds, 3)
    if drop_modality is not None:
        result["dropped_modality"] = drop_modality
    if preds.collapse is not None:
        col = dict(preds.collapse)
        col["seconds"] = round(preds.collapse_seconds, 4)
        col["share_of_eval_time"] = round(preds.collapse_seconds / max(preds.seconds, 1e-9), 4)
        result["collapse"] = col
    if preds.without:
        labels = preds.labels["action"]
        rel = modality_reliance(correct_top1(preds), {m: s.argmax(-1) == labels for m, s in preds.without.items()},
                                valid=labels >= 0)  # unlabelled samples do not count
        result.setdefault("collapse", {})["reliance"] = rel
        result["collapse"]["reliance_seconds"] = round(preds.reliance_seconds, 3)
    return result
