"""Checkpoints: resumable training states (accelerate `save_state`) and exported weights (safetensors + JSON).

Layout of a run folder:
```
WORK_DIR/config.yaml                  resolved config
WORK_DIR/checkpoints/epoch_0003/      accelerate state: model, optimiser, scheduler, EMA, RNG, train progress, and
                                      r3d_state.json (progress + config; written last: it marks the state complete)
WORK_DIR/checkpoints/step_0001200/    the same, saved mid-epoch (train.save_every_steps)
WORK_DIR/checkpoints/latest           text file naming the newest complete state folder (replaced atomically)
WORK_DIR/model.safetensors            exported weights of the final model (EMA weights when train.eval_ema)
WORK_DIR/model.json                   what is needed to rebuild it: config, class names, action vocabulary, extras
```
A state folder is written under a temporary name, completed with its marker, flushed and then renamed, and `latest` is
replaced with `os.replace`, so a kill during a save leaves the previous `latest` loadable; `find_latest` also falls back
to the newest complete state if `latest` is missing or stale. Resuming checks the state's config first
(`check_resumable`). Loading exported weights never unpickles: safetensors for tensors, JSON for the rest. (Training
states are accelerate's: it loads optimiser, scheduler and RNG files with `weights_only=True` but unpickles registered
objects in full, so resume only from states you wrote.)
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from ..config import Config, config_from_dict, flatten

PathLike = Union[str, os.PathLike]
LATEST = "latest"
STATE_MARKER = "r3d_state.json"
_TMP_PREFIX = ".tmp_"
_OLD_PREFIX = ".old_"


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write `text` to `path` through a temp file + `os.replace` (never a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    """Flush every file of `folder` and the folder itself to disk (a rename must never expose unwritten data)."""
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_state_info(state: PathLike) -> Optional[Dict[str, Any]]:
    """The `r3d_state.json` of a state folder (progress, config, processes), or None if the folder is incomplete."""
    marker = Path(state) / STATE_MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def complete_states(ckpt_root: PathLike) -> List[Tuple[Path, Dict[str, Any]]]:
    """(folder, info) of every complete state under `ckpt_root`, oldest first (by optimiser step, epoch ends last)."""
    ckpt_root = Path(ckpt_root)
    if not ckpt_root.is_dir():
        return []
    out = []
    for p in ckpt_root.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            info = read_state_info(p)
            if info is not None:
                out.append((p, info))
    out.sort(key=lambda s: (int(s[1].get("step", 0)), int(s[1].get("epoch", 0)), s[0].stat().st_mtime, s[0].name))
    return out


def save_training_state(accelerator, ckpt_root: PathLike, name: str, keep: int = 2,
                        info: Optional[Mapping[str, Any]] = None) -> Path:
    """`accelerator.save_state` into `ckpt_root/name` atomically, point `latest` at it, prune old states.

    The state is written to `ckpt_root/.tmp_<name>`, completed with `r3d_state.json` (`info`: progress, config),
    flushed to disk, and only then renamed to `name`; `latest` is replaced with `os.replace`. A kill at any moment
    leaves `latest` naming a complete state; leftovers of an interrupted save (`.tmp_*`, `.old_*`) are removed by the
    next save. Pruning keeps the newest `keep` end-of-epoch states and the newest state of any kind; mid-epoch states
    older than that are deleted. Call on every process (accelerate writes from the main one, RNG states from each).
    Needs `ckpt_root` on a filesystem every node sees (multi-node).
    """
    ckpt_root = Path(ckpt_root)
    final = ckpt_root / name
    tmp = ckpt_root / f"{_TMP_PREFIX}{name}"
    if accelerator.is_main_process:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        for stale in ckpt_root.iterdir():  # an earlier save that was killed half-way
            if stale.is_dir() and stale.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
                shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        record = dict(info or {})
        record.update(name=name, num_processes=accelerator.num_processes)
        write_text_atomic(tmp / STATE_MARKER, json.dumps(record, indent=1, default=_json_default))
        _fsync_tree(tmp)
        old = ckpt_root / f"{_OLD_PREFIX}{name}"
        if final.exists():  # re-saving a name (e.g. after resuming from an older state): move the old one aside
            os.replace(final, old)
        os.replace(tmp, final)
        write_text_atomic(ckpt_root / LATEST, name + "\n")
        _fsync_dir(ckpt_root)
        shutil.rmtree(old, ignore_errors=True)
        _prune(ckpt_root, name, keep)
    accelerator.wait_for_everyone()
    return final


def _prune(ckpt_root: Path, newest: str, keep: int) -> None:
    states = complete_states(ckpt_root)
    epoch_ends = [p for p, i in states if int(i.get("batch_in_epoch", 0)) == 0]
    keep_names = {newest} | {p.name for p in epoch_ends[len(epoch_ends) - max(keep, 1):]}
    for p, _ in states:
        if p.name not in keep_names:
            shutil.rmtree(p, ignore_errors=True)


def find_latest(ckpt_root: PathLike) -> Optional[Path]:
    """The newest complete state under `ckpt_root`, or None when there is none.

    That is the folder named by `ckpt_root/latest` when it is complete; otherwise (pointer missing or naming a folder
    that is gone or incomplete) the complete state with the most optimiser steps.
    """
    ckpt_root = Path(ckpt_root)
    pointer = ckpt_root / LATEST
    if pointer.is_file():
        path = ckpt_root / pointer.read_text().strip()
        if path.is_dir() and read_state_info(path) is not None:
            return path
    states = complete_states(ckpt_root)
    return states[-1][0] if states else None


# Config keys a resumed run may change without changing the result (or where the data lives).
RESUME_FREE_KEYS = ("work_dir", "loaded_weights", "data.root", "data.num_workers", "data.generate_if_missing",
                    "train.log_with", "train.save_every_steps", "train.keep_checkpoints", "train.eval_every", "eval.")


def _few(keys: List[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_resumable(state: PathLike, config: Mapping[str, Any], num_classes: Mapping[str, int],
                    num_processes: int) -> List[str]:
    """Check that training state `state` belongs to this run before loading it; returns warnings (may be empty).

    Errors (ValueError, one line naming the state and the keys): an incomplete folder, a different `model.*` config
    or class counts (the weights would not fit), or a mid-epoch state saved with another number of processes or
    batch size (its position in the epoch would mean other samples). Warnings: other changed keys that make the
    resumed run differ from an uninterrupted one (seed, lr, batch layout at an epoch end, ...).
    """
    state = Path(state)
    info = read_state_info(state)
    if info is None:
        raise ValueError(f"{state}: not a complete r3d training state (no {STATE_MARKER}); resume from the folder "
                         f"named in checkpoints/{LATEST}, or use --resume auto")
    theirs, ours = flatten(info.get("config", {})), flatten(config)
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)
                    and not any(k == f or (f.endswith(".") and k.startswith(f)) for f in RESUME_FREE_KEYS))
    model_keys = [k for k in differ if k.startswith("model.")]
    if model_keys:
        shown = [f"{k}={theirs.get(k)!r} there, {ours.get(k)!r} here" for k in model_keys]
        raise ValueError(f"{state}: checkpoint is from a different model config ({_few(shown)}); resume with the "
                         f"config it was saved with (WORK_DIR/config.yaml) or start a new work_dir")
    if info.get("num_classes") is not None and dict(info["num_classes"]) != dict(num_classes):
        raise ValueError(f"{state}: checkpoint has classes {dict(info['num_classes'])} but this dataset has "
                         f"{dict(num_classes)}; resume on the dataset it was trained on (data.root)")
    mid_epoch = int(info.get("batch_in_epoch", 0)) > 0
    layout = {"processes": (info.get("num_processes"), num_processes),
              "train.batch_size": (theirs.get("train.batch_size"), ours.get("train.batch_size"))}
    changed = [f"{k} {a} -> {b}" for k, (a, b) in layout.items() if a is not None and a != b]
    if mid_epoch and changed:
        raise ValueError(f"{state}: mid-epoch state saved with another batch layout ({', '.join(changed)}); its "
                         f"position in the epoch would select other samples: resume with the same layout or from an "
                         f"end-of-epoch state (checkpoints/epoch_*)")
    warnings = [f"{state}: {c}: the LR schedule and data order differ from the interrupted run" for c in changed]
    others = [k for k in differ if not k.startswith("model.") and k != "train.batch_size"]
    if others:
        warnings.append(f"{state}: resumed with changed keys ({_few(others, 5)}); the result will differ from an "
                        f"uninterrupted run")
    return warnings


def load_training_state(accelerator, state: PathLike) -> None:
    """`accelerator.load_state(state)`, with any failure turned into one line naming the state folder."""
    try:
        accelerator.load_state(str(state))
    except Exception as e:  # size mismatches, missing files, unreadable pickles: all mean "not this run's state"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ValueError(f"{state}: cannot be loaded into this run ({type(e).__name__}: {first}); resume with the "
                         f"config and code it was saved with, or start a new work_dir") from e


def export_model(model: nn.Module, meta: Mapping[str, Any], out_dir: PathLike) -> Path:
    """Write `model.safetensors` and `model.json` (meta: config, class names, actions, ...) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out_dir / ".model.safetensors.tmp"
    # One metadata key: safetensors writes metadata in hash order, so two keys would make identical weights differ
    # byte-wise between runs.
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out_dir / "model.safetensors")
    write_text_atomic(out_dir / "model.json", json.dumps(meta, indent=1, default=_json_default))
    return out_dir / "model.safetensors"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def find_weights(path: PathLike) -> Path:
    """The weights file of a checkpoint argument: a run folder (its model.safetensors), a training-state folder
    (WORK_DIR/checkpoints/epoch_0003/: accelerate's model.safetensors), or a .safetensors file itself."""
    p = Path(path)
    weights = p / "model.safetensors" if p.is_dir() else p
    if not weights.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {weights} (pass the run folder of tools/train.py, a state folder under "
            f"WORK_DIR/checkpoints/, or a .safetensors weights file)"
        )
    if weights.suffix != ".safetensors":
        raise ValueError(f"{weights}: r3d loads exported weights only from .safetensors files (never pickles)")
    return weights


def resolve_checkpoint(path: PathLike) -> Tuple[Path, Path]:
    """(weights, model.json) of an exported checkpoint: a run folder, or a model.safetensors with model.json next to
    it. A weights file without model.json is an error here (`find_weights` accepts it)."""
    weights = find_weights(path)
    meta = weights.with_name("model.json")
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: it describes the model that {weights.name} belongs to (class "
                                f"names, action vocabulary, config); pass --config too, or the run folder")
    return weights, meta


def run_config_near(path: PathLike) -> Optional[Path]:
    """The config.yaml of the run a weights file or state folder belongs to (searched in the weights' folder and up
    to two levels above it: WORK_DIR/checkpoints/<state>/), or None."""
    folder = find_weights(path).parent
    for cand in (folder, folder.parent, folder.parent.parent):
        if (cand / "config.yaml").is_file():
            return cand / "config.yaml"
    return None


def has_meta(path: PathLike) -> bool:
    """Whether a checkpoint argument has the model.json that exported weights come with."""
    return find_weights(path).with_name("model.json").is_file()


def load_meta(path: PathLike) -> Dict[str, Any]:
    _, meta = resolve_checkpoint(path)
    with open(meta) as f:
        return json.load(f)


def load_model_weights(model: nn.Module, path: PathLike) -> None:
    """Load exported weights strictly; a checkpoint of a different model is a one-line error naming the keys."""
    weights = find_weights(path)
    try:
        state = load_file(str(weights))
    except Exception as e:  # SafetensorError: a truncated file, or something else renamed to .safetensors
        raise ValueError(f"{weights}: not a readable safetensors file ({str(e).strip()[:200]}); re-export it with "
                         f"tools/train.py or copy it again") from None
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
    # Weights stored in a smaller float type (the fp16 bundle, r3d.engine.export) come back as the model's own.
    state = {k: v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v
             for k, v in state.items()}
    model.load_state_dict(state, strict=True)


def config_from_meta(meta: Mapping[str, Any]) -> Config:
    """The training config stored in model.json, validated against the current defaults."""
    return config_from_dict(meta["config"])
