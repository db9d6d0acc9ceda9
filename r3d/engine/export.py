"""Exports of a trained model: the EPIC-KITCHENS-100 anticipation challenge JSON (version 0.2) of its predictions, and
the compact checkpoint bundled with the package (`bundle_checkpoint`, `bundled_checkpoint`).

The bundled checkpoint lets the README demo run right after `pip install`: ``r3d/assets/sample/checkpoint/`` holds
``model.safetensors`` with floating tensors stored in float16 (half the size) and ``model.json`` (the run's model.json
plus a ``bundle`` record). It is an ordinary run folder: `checkpoint.load_model_weights` casts each tensor back to the
model's float32 (fp16 -> fp32 is exact), and nothing is ever unpickled (safetensors + JSON).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..metrics.ek100 import assert_valid_ek100, export_ek100_json
from .checkpoint import resolve_checkpoint, write_text_atomic
from .evaluate import predict

_logger = logging.getLogger("r3d.export")
PathLike = Union[str, os.PathLike]
BUNDLE_PARTS = ("assets", "sample", "checkpoint")  # inside the r3d package
BUNDLE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def bundled_checkpoint() -> Path:
    """The folder of the checkpoint shipped with r3d (model.safetensors + model.json), found with importlib.resources.

    Raises FileNotFoundError naming the folder and the fix when this installation has none.
    """
    from importlib.resources import files

    folder = Path(str(files("r3d").joinpath(*BUNDLE_PARTS)))
    if not (folder / "model.safetensors").is_file() or not (folder / "model.json").is_file():
        raise FileNotFoundError(f"{folder}: no bundled checkpoint (model.safetensors + model.json) in this r3d "
                                f"installation; pass --checkpoint RUN_DIR, or bundle a trained run with "
                                f"`python tools/bundle_checkpoint.py RUN_DIR`")
    return folder


def default_bundle_dir() -> Path:
    """Where `bundle_checkpoint` writes by default: the package's ``assets/sample/checkpoint`` folder."""
    return Path(__file__).resolve().parents[1].joinpath(*BUNDLE_PARTS)


def bundle_checkpoint(checkpoint: PathLike, out_dir: Optional[PathLike] = None,
                      dtype: str = "float16") -> Dict[str, Any]:
    """Write a compact copy of exported weights (a run folder or its model.safetensors) for shipping in the package.

    Every float32 tensor is stored in `dtype` (float16 halves the file) unless that would overflow it (|x| beyond the
    dtype's range: the tensor stays float32); other tensors (int64 BatchNorm counters) are copied as they are.
    model.json is the run's, plus ``bundle``: source run folder name, stored dtype, tensors kept in float32, and the
    largest absolute rounding error. Returns that record with the sizes and the output folder.
    """
    if dtype not in BUNDLE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(BUNDLE_DTYPES)}, got '{dtype}'")
    from safetensors.torch import load_file, save_file

    weights, meta_path = resolve_checkpoint(checkpoint)
    out = Path(out_dir) if out_dir is not None else default_bundle_dir()
    if out.resolve() == weights.parent.resolve():
        raise ValueError(f"{out}: the bundle would overwrite its source checkpoint; choose another --out")
    target = BUNDLE_DTYPES[dtype]
    limit = torch.finfo(target).max
    state, packed, kept, err = load_file(str(weights)), {}, [], 0.0
    for k, v in state.items():
        if v.dtype == torch.float32 and target != torch.float32:
            if v.numel() and v.abs().max().item() > limit:
                kept.append(k)
                packed[k] = v
                continue
            packed[k] = v.to(target).contiguous()
            if v.numel():
                err = max(err, (packed[k].float() - v).abs().max().item())
        else:
            packed[k] = v.contiguous()
    meta = json.loads(meta_path.read_text())
    record = {"source": weights.parent.name, "stored_dtype": dtype, "float32_tensors": kept,
              "max_abs_rounding_error": err}
    meta["bundle"] = record
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".model.safetensors.tmp"
    save_file(packed, str(tmp), metadata={"format": "pt"})
    os.chmod(tmp, 0o644)  # package data: readable by every user of a system-wide install
    os.replace(tmp, out / "model.safetensors")
    write_text_atomic(out / "model.json", json.dumps(meta, indent=1))
    return {**record, "out": str(out), "source_bytes": weights.stat().st_size,
            "bundle_bytes": (out / "model.safetensors").stat().st_size + (out / "model.json").stat().st_size}


def export_predictions_ek100(model, loader, accelerator, data, cfg, path: str) -> None:
    """Predict every sample of `loader` and write the challenge JSON (all verb and noun scores, 100 action scores
    per segment keyed "verb,noun", the sls fields from `eval.sls`); the file is validated after writing."""
    preds = predict(model, loader, accelerator, desc="ek100 export")
    if not accelerator.is_main_process:
        return
    order = torch.argsort(preds.index)
    ids = [data.val.items[int(i)].segment.narration_id for i in preds.index[order]]
    scores = {k: torch.softmax(v[order].float(), -1) for k, v in preds.scores.items()}
    actions = torch.as_tensor(data.info.actions, dtype=torch.long).view(-1, 2)
    nv, nn = len(data.info.verb_classes), len(data.info.noun_classes)
    # The challenge asks for exactly 100 action scores; a vocabulary with fewer possible pairs (e.g. the synthetic
    # benchmark's 4 x 4) gets all of them, and the file says so by its count.
    k = min(100, nv * nn)
    if k < 100:
        _logger.warning("%d verbs x %d nouns allow only %d action scores per segment (EK100 asks for 100)", nv, nn, k)
    export_ek100_json(path, ids, scores["verb"], scores["noun"], scores["action"], actions, dict(cfg.eval.sls or {}),
                      topk_actions=k, scores_are_probabilities=True)
    assert_valid_ek100(path, nv, nn, num_actions=k)
