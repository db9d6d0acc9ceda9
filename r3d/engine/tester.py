"""Evaluate exported weights on a dataset split: anticipation metrics, collapse diagnostics, modality reliance."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..config import Config, apply_overrides, load_config
from ..metrics.collapse import kept_fraction
from .builder import build_data, load_trained_model
from .checkpoint import config_from_meta, has_meta, load_meta, run_config_near, write_text_atomic
from .export import export_predictions_ek100
from .extract import check_model_matches_cache
from .protocols import build_protocol
from .trainer import make_accelerator

_logger = logging.getLogger("r3d.test")


def check_vocabulary(meta: Dict[str, Any], info: Any, root: str) -> None:
    """The evaluated dataset must use the classes the checkpoint was trained on (else every id would mean another
    class)."""
    for key, theirs in (("verb_classes", info.verb_classes), ("noun_classes", info.noun_classes)):
        if list(meta[key]) != list(theirs):
            raise ValueError(
                f"{root}: {key} differ from the checkpoint's ({len(theirs)} vs {len(meta[key])} classes): "
                "evaluate on a dataset with the same class lists"
            )
    if [list(a) for a in info.actions] != [list(a) for a in meta["actions"]]:
        raise ValueError(
            f"{root}: the action vocabulary (pairs in train.csv order, or annotations/actions.csv) differs from the "
            "checkpoint's; add the checkpoint's actions.csv to the dataset"
        )


def reference_top1(path: str) -> float:
    """Action top-1 (%) of a unimodal reference: a metrics JSON, or a run folder (its metrics_test.json, else its
    metrics.json). A missing file or key is a one-line error naming it and the config key."""
    p = Path(path)
    files = [p] if p.suffix == ".json" else [p / "metrics_test.json", p / "metrics.json"]
    for f in files:
        if f.is_file():
            try:
                return float(json.loads(f.read_text())["action"]["top1"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{f}: no action top-1 in it ({type(e).__name__}: {e}); eval.reference.* must name "
                                 f"a metrics JSON of tools/test.py or tools/train.py") from None
    raise FileNotFoundError(f"eval.reference: {path} has no metrics_test.json / metrics.json; train and test the "
                            f"unimodal model first, or set the key to null")


def checkpoint_config(checkpoint: str, config: Optional[str] = None, overrides: Sequence[str] = ()) -> Config:
    """The config a checkpoint is evaluated with: `config` when given, else the one saved in its model.json, else the
    config.yaml of the run it lies in (a training state or a bare weights file); `overrides` apply on top."""
    if config is None and has_meta(checkpoint):
        return apply_overrides(config_from_meta(load_meta(checkpoint)), overrides)
    if config is None:
        config = run_config_near(checkpoint)
        if config is None:
            raise FileNotFoundError(f"{checkpoint}: no model.json next to the weights and no run config.yaml above "
                                    f"them; pass --config with the experiment config the model was trained with")
    return load_config(config, list(overrides))


def test(cfg: Config, checkpoint: str, out: Optional[str] = None, drop_modality: Optional[str] = None,
         collapse: Optional[bool] = None, export_ek100: Optional[str] = None) -> Dict[str, Any]:
    """Load `checkpoint`, evaluate on `data.val_split`, write metrics JSON.

    `checkpoint`: a run folder or model.safetensors with model.json next to it, or a weights file without it (a
    training state under WORK_DIR/checkpoints/): then `cfg` describes the model (`load_trained_model`).

    Runs under `accelerate launch` like training (the same Accelerator: gloo on CPU when there is no GPU); samples
    are gathered with `gather_for_metrics`, so the metrics do not depend on the number of processes.
    """
    protocol = build_protocol(cfg)  # data.protocol: its evaluation pass
    if export_ek100 and not protocol.exports_ek100:
        raise ValueError(f"--export-ek100 writes next-action scores; this run has data.protocol={cfg.data.protocol}")
    accelerator = make_accelerator(apply_overrides(cfg, ["train.log_with=none"]), find_unused=False)
    data = build_data(cfg, accelerator=accelerator, train=False)
    model, meta = load_trained_model(checkpoint, cfg, data.info)
    check_vocabulary(meta, data.info, cfg.data.root)
    check_model_matches_cache(model, data.val)  # data.features: tokens made by these very backbone weights
    model, loader = accelerator.prepare(model, data.val_loader)
    do_collapse = cfg.eval.collapse if collapse is None else collapse
    metrics = protocol.evaluate(model, loader, accelerator, cfg, collapse=do_collapse, reliance=do_collapse,
                            observed_fractions=cfg.eval.observed_fractions if do_collapse else (),
                            drop_modality=drop_modality)
    refs = {m: p for m, p in dict(cfg.eval.reference).items() if p}
    reliance = (metrics.get("collapse") or {}).get("reliance")
    if refs and reliance:  # the collapse measure: what the fused model keeps of each stream alone
        kept = kept_fraction(reliance, {m: reference_top1(p) for m, p in refs.items()})
        metrics["collapse"]["kept"] = {m: {**v, "reference": refs[m]} for m, v in kept.items()}
    metrics["checkpoint"] = str(checkpoint)
    metrics["split"] = cfg.data.val_split
    metrics["num_processes"] = accelerator.num_processes
    metrics["data"] = dict(getattr(data.val, "stats", {}))
    if export_ek100:
        export_predictions_ek100(model, loader, accelerator, data, cfg, export_ek100)
        metrics["ek100_export"] = str(export_ek100)
    if accelerator.is_main_process:
        out_path = Path(out) if out else Path(checkpoint if Path(checkpoint).is_dir() else Path(checkpoint).parent) \
            / ("metrics_test.json" if drop_modality is None else f"metrics_test_no_{drop_modality}.json")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_path, json.dumps(metrics, indent=1))
        metrics["_out"] = str(out_path)
    return metrics
