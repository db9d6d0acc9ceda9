"""Checkpoints: resumable training states (accelerate `save_state`) and exported weights (safetensors + JSON).

Layout of a run folder:
```
WORK_DIR/config.yaml                  resolved config
WORK_DIR/checkpoints/epoch_0003/      accelerate state: model, optimiser, scheduler, EMA, RNG, train progress
WORK_DIR/checkpoints/latest           text file naming the newest complete state folder (replaced atomically)
WORK_DIR/model.safetensors            exported weights of the final model (EMA weights when train.eval_ema)
WORK_DIR/model.json                   what is needed to rebuild it: config, class names, action vocabulary, extras
```
A state folder is written under a temporary name and renamed when complete, and `latest` is replaced with
`os.replace`, so a kill during a save leaves the previous `latest` loadable. Loading exported weights never
unpickles: safetensors for tensors, JSON for the rest.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from ..config import Config, config_from_dict

PathLike = Union[str, os.PathLike]
LATEST = "latest"


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write `text` to `path` through a temp file + `os.replace` (never a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_training_state(accelerator, ckpt_root: PathLike, name: str, keep: int = 2) -> Path:
    """`accelerator.save_state` into `ckpt_root/name` atomically, point `latest` at it, prune old states.

    Call on every process (accelerate saves from the main one); returns the final folder.
    """
    ckpt_root = Path(ckpt_root)
    final = ckpt_root / name
    tmp = ckpt_root / f".tmp_{name}"
    if accelerator.is_main_process:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_text_atomic(ckpt_root / LATEST, name + "\n")
        states = sorted(p for p in ckpt_root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for old in states[: max(0, len(states) - max(keep, 1))]:
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def find_latest(ckpt_root: PathLike) -> Optional[Path]:
    """The state folder named by `ckpt_root/latest`, or None when there is no complete state."""
    ckpt_root = Path(ckpt_root)
    pointer = ckpt_root / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    path = ckpt_root / name
    return path if path.is_dir() else None


def export_model(model: nn.Module, meta: Mapping[str, Any], out_dir: PathLike) -> Path:
    """Write `model.safetensors` and `model.json` (meta: config, class names, actions, ...) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out_dir / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "r3d": "1"})
    os.replace(tmp, out_dir / "model.safetensors")
    write_text_atomic(out_dir / "model.json", json.dumps(meta, indent=1, default=_json_default))
    return out_dir / "model.safetensors"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def resolve_checkpoint(path: PathLike) -> Tuple[Path, Path]:
    """Accept a run folder, a folder with model.safetensors, or the .safetensors file; return (weights, meta)."""
    p = Path(path)
    if p.is_dir():
        weights = p / "model.safetensors"
    else:
        weights = p
    meta = weights.with_name("model.json")
    if not weights.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {weights} (pass the run folder of tools/train.py or its model.safetensors)"
        )
    if weights.suffix != ".safetensors":
        raise ValueError(f"{weights}: r3d loads exported weights only from .safetensors files (never pickles)")
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: it describes the model that {weights.name} belongs to")
    return weights, meta


def load_meta(path: PathLike) -> Dict[str, Any]:
    _, meta = resolve_checkpoint(path)
    with open(meta) as f:
        return json.load(f)


def load_model_weights(model: nn.Module, path: PathLike) -> None:
    """Load exported weights strictly; a checkpoint of a different model is a one-line error naming the keys."""
    weights, _ = resolve_checkpoint(path)
    state = load_file(str(weights))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        def few(keys):
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
        problems = []
        if missing:
            problems.append(f"missing {few(missing)}")
        if unexpected:
            problems.append(f"unexpected {few(unexpected)}")
        if shape:
            problems.append(f"shape differs for {few(shape)}")
        raise ValueError(
            f"{weights}: checkpoint is from a different model or config ({'; '.join(problems)}). Use the config it "
            "was trained with (its model.json) or retrain."
        )
    model.load_state_dict(state, strict=True)


def config_from_meta(meta: Mapping[str, Any]) -> Config:
    """The training config stored in model.json, validated against the current defaults."""
    return config_from_dict(meta["config"])
