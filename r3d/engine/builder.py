"""Assemble data loaders and the model from a config (shared by train, test, demo and the benchmarks)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch.utils.data import DataLoader

from .. import __version__
from ..config import Config, import_custom_modules_from
from ..data.dataset import build_datasets, num_classes
from ..data.dataset_yaml import DEPTH_DEFAULTS
from ..data.features import FeatureDataset
from ..data.synthetic import ensure_synthetic
from ..models.anticipator import Anticipator
from .checkpoint import PathLike, config_from_meta, has_meta, load_meta, load_model_weights
from .protocols import build_protocol

_logger = logging.getLogger("r3d")


@dataclass
class DataBundle:
    """Datasets, loaders and the dataset description (class names, action vocabulary)."""

    train: Any
    val: Any
    info: Any
    train_loader: Optional[DataLoader]
    val_loader: DataLoader


def prepare_root(cfg: Config, accelerator=None) -> None:
    """Render the synthetic benchmark into `data.root` first when `data.generate_if_missing` and it is absent."""
    if not cfg.data.generate_if_missing or cfg.data.features:
        return
    if accelerator is None or accelerator.is_main_process:
        if ensure_synthetic(cfg.data.root, cfg):
            _logger.info("generated the synthetic benchmark in %s", cfg.data.root)
    if accelerator is not None:
        accelerator.wait_for_everyone()


def loader_workers(cfg: Config) -> int:
    """`data.num_workers`, at most the CPUs this process may use (more only compete for them; torch warns). What a
    sample holds does not depend on the worker count, so neither do the results."""
    requested = int(cfg.data.num_workers)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested > cpus:
        _logger.info("data.num_workers=%d > the %d CPUs this process may use: using %d", requested, cpus, cpus)
    return min(requested, cpus)


def make_loader(dataset, cfg: Config, train: bool, batch_size: int) -> DataLoader:
    """DataLoader with the config's workers (`loader_workers`); the training order is a function of (seed, epoch)
    only."""
    gen = torch.Generator()
    gen.manual_seed(int(cfg.seed))
    workers = loader_workers(cfg)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=False, num_workers=workers,
                      generator=gen if train else None, pin_memory=False,
                      persistent_workers=False, prefetch_factor=4 if workers > 0 else None,
                      collate_fn=getattr(dataset, "collate_fn", None))  # e.g. long-term samples pad to one length


def build_data(cfg: Config, accelerator=None, train: bool = True) -> DataBundle:
    """Build the datasets named by the config; with `train=False` only the validation split is built."""
    import_custom_modules_from(cfg)
    prepare_root(cfg, accelerator)
    # the dataset class of data.protocol, or cached backbone tokens in place of frames (r3d/data/features.py)
    cls = FeatureDataset if cfg.data.features else build_protocol(cfg).dataset_cls
    train_ds, val_ds, info = build_datasets(cfg, train, cls)
    train_loader = make_loader(train_ds, cfg, True, cfg.train.batch_size) if train_ds is not None else None
    val_loader = make_loader(val_ds, cfg, False, cfg.eval.batch_size)
    return DataBundle(train_ds, val_ds, info, train_loader, val_loader)


def build_model(cfg: Config, info: Any) -> Anticipator:
    """The anticipator for a dataset description (class counts and action vocabulary come from `info`)."""
    import_custom_modules_from(cfg)
    return Anticipator(cfg, num_classes(info), actions=info.actions)


def model_meta(cfg: Config, info: Any, model: Optional[torch.nn.Module] = None) -> Dict[str, Any]:
    """What `model.json` records next to exported weights: enough to rebuild the model and name its outputs."""
    meta: Dict[str, Any] = {
        "r3d_version": __version__,
        "config": cfg.to_dict(),
        "num_classes": num_classes(info),
        "verb_classes": list(info.verb_classes),
        "noun_classes": list(info.noun_classes),
        "actions": [list(a) for a in info.actions],
        "dataset": getattr(info, "name", ""),
        # The depth settings the model was trained with, resolved (config key > dataset.yaml > default): the demo
        # normalises a recording's depth with these, wherever the recording lives.
        "depth": info.depth_settings(),
    }
    if model is not None:
        for reg in getattr(model, "regularizers", []):
            if hasattr(reg, "export_meta"):
                meta.update(reg.export_meta())
    return meta


def checkpoint_depth(meta: Mapping[str, Any]) -> Dict[str, float]:
    """{depth_scale, depth_min, depth_max} a checkpoint was trained with: model.json's `depth` (written by
    `model_meta`); for checkpoints older than that record, its config's values, else r3d's defaults."""
    if meta.get("depth"):
        return {k: float(v) for k, v in meta["depth"].items()}
    data = meta.get("config", {}).get("data", {})
    return {k: float(data[k] if data.get(k) is not None else DEPTH_DEFAULTS[k])
            for k in ("depth_scale", "depth_min", "depth_max")}


def load_trained_model(checkpoint: PathLike, cfg: Optional[Config] = None, info: Any = None
                       ) -> Tuple[Anticipator, Dict[str, Any]]:
    """Rebuild the model of trained weights and load them; returns (model in train mode as built, meta).

    `checkpoint` is a run folder or model.safetensors with model.json next to it: the architecture comes from `cfg`
    (default: the config saved in model.json), class counts and action vocabulary from model.json, and regularisers
    with state outside the weights (EBR's missing-modality ranking) get it back from model.json. A weights file
    without model.json (a training state under WORK_DIR/checkpoints/, or a file copied elsewhere) needs `cfg` and the
    dataset description `info` instead; its meta is then `model_meta(cfg, info)`.
    """
    if has_meta(checkpoint):
        meta = load_meta(checkpoint)
    elif cfg is None or info is None:
        meta = load_meta(checkpoint)  # raises, naming the missing model.json
    else:
        meta = model_meta(cfg, info)
    cfg = config_from_meta(meta) if cfg is None else cfg
    import_custom_modules_from(cfg)
    model = Anticipator(cfg, meta["num_classes"], actions=meta.get("actions"))
    load_model_weights(model, checkpoint)
    for reg in model.regularizers:
        if hasattr(reg, "load_meta"):
            reg.load_meta(meta)
    return model, meta
