"""One row per run: the grid's cells (`Run`), the columns of runs.csv, and how a run's metrics become a row.

runs.csv is the benchmark's single source of truth: every number in results.md and the plots is computed from it.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..config import Config
from ..metrics.collapse import mutual_gain_curve, reliance_without

PathLike = Union[str, os.PathLike]


def noise_tag(noise: float) -> str:
    """Canonical text of a noise level (CSV value and folder suffix): 0 → "0.0", 0.5 → "0.5"."""
    return repr(float(noise))


@dataclass(frozen=True)
class Run:
    """One cell of the grid."""

    variant: str
    noise: float
    seed: int

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.variant, noise_tag(self.noise), str(int(self.seed)))

    @property
    def name(self) -> str:
        return f"{self.variant}__noise_{noise_tag(self.noise)}__seed_{int(self.seed)}"


LABELS = ("verb", "noun", "action")
LEARNED_AT = 80.0  # validation action top-1 (%) at which a run counts as having learned the task (learning speed)
COLUMNS: List[str] = (
    ["variant", "noise", "seed", "fuser", "modalities"]
    + [f"{k}_{m}" for k in LABELS for m in ("top1", "top5", "mt5r")]
    + ["erank_pre_rgb", "erank_post_rgb", "erank_pre_depth", "erank_post_depth", "erank_fused", "gain_rgb",
       "gain_depth", "H", "pooled_rank", "pooled_erank", "pooled_rank_centered", "pooled_erank_centered",
       "reliance_top1", "no_rgb_top1", "no_rgb_drop", "no_rgb_rel_drop_pct", "no_depth_top1", "no_depth_drop",
       "no_depth_rel_drop_pct", "kept_depth", "kept_rgb", "diag_share_pct", "diag_seconds", "eval_seconds",
       "train_seconds", "test_seconds", "obs_fractions", "obs_fused", "obs_H", "val_top1_by_epoch",
       f"epochs_to_{LEARNED_AT:.0f}", "run_dir"]
)


def row_key(row: Mapping[str, Any]) -> Tuple[str, str, str]:
    """(variant, noise tag, seed) of a CSV row."""
    return (str(row["variant"]), noise_tag(float(row["noise"])), str(int(float(row["seed"]))))


def read_rows(path: PathLike) -> List[Dict[str, str]]:
    """Rows of runs.csv ([] when absent); a line cut short by a kill (fewer fields than the header) is dropped."""
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    return [r for r in rows if None not in r.values() and r.get("variant") and r.get("noise") and r.get("seed")]


def append_row(path: PathLike, row: Mapping[str, Any]) -> None:
    """Append one run to the CSV (header first when the file is new; an existing file keeps its own header)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    header = COLUMNS
    new = not p.is_file() or p.stat().st_size == 0
    if not new:
        with open(p, newline="") as f:
            header = next(csv.reader(f))
        with open(p, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a previous append was cut short: start on a fresh line
                with open(p, "a") as g:
                    g.write("\n")
    with open(p, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore", restval="")
        if new:
            w.writeheader()
        w.writerow({k: _cell(v) for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(round(v, 6))
    if isinstance(v, (list, tuple)):
        return " ".join(_cell(x) if x is not None else "nan" for x in v)
    return str(v)


def num(v: Any) -> Optional[float]:
    """A CSV cell as a float; None for empty / non-numeric / NaN cells."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def num_list(v: Any) -> List[Optional[float]]:
    """A space-separated CSV cell as a list of floats (None for NaN)."""
    return [num(x) for x in str(v or "").split()]


def row_from_metrics(run: Run, cfg: Config, train_metrics: Mapping, test_metrics: Mapping, test_seconds: float,
                     where: PathLike) -> Dict[str, Any]:
    """One CSV row from a run's training metrics and test metrics (`tools/test.py` JSON with `collapse`)."""
    row: Dict[str, Any] = {"variant": run.variant, "noise": noise_tag(run.noise), "seed": int(run.seed),
                           "fuser": cfg.model.fuser if len(cfg.model.modalities) > 1 else "identity",
                           "modalities": "+".join(cfg.model.modalities)}
    for k in LABELS:
        for m in ("top1", "top5", "mt5r"):
            row[f"{k}_{m}"] = (test_metrics.get(k) or {}).get(m)
    col = test_metrics.get("collapse") or {}
    for kind in ("pre", "post"):
        for m in ("rgb", "depth"):
            row[f"erank_{kind}_{m}"] = (col.get(f"erank_{kind}") or {}).get(m)
    gain = col.get("gain") or {}
    row.update(erank_fused=col.get("erank_fused"), gain_rgb=gain.get("rgb"), gain_depth=gain.get("depth"),
               H=col.get("H"))
    for k in ("pooled_rank", "pooled_erank", "pooled_rank_centered", "pooled_erank_centered"):
        row[k] = col.get(k)
    rel = col.get("reliance") or {}
    row["reliance_top1"] = rel.get("top1")
    for m, v in reliance_without(rel).items():
        row[f"no_{m}_top1"] = v.get("top1")
        row[f"no_{m}_drop"] = v.get("drop")
        rd = v.get("relative_drop")
        row[f"no_{m}_rel_drop_pct"] = None if rd is None else 100.0 * float(rd)
    for m, v in (col.get("kept") or {}).items():  # the collapse measure (needs the unimodal references)
        row[f"kept_{m}"] = v.get("fraction")
    share = col.get("share_of_eval_time")
    row["diag_share_pct"] = None if share is None else 100.0 * float(share)
    row["diag_seconds"] = col.get("seconds")
    row["eval_seconds"] = test_metrics.get("eval_seconds")
    row["train_seconds"] = train_metrics.get("train_seconds")
    row["test_seconds"] = round(float(test_seconds), 1)
    curves = col.get("erank_vs_observed") or {}
    if curves.get("fractions"):
        row["obs_fractions"] = list(curves["fractions"])
        row["obs_fused"] = curves.get("fused")
        row["obs_H"] = mutual_gain_curve(curves) or None
    history = val_history(Path(where) / "epoch_log.jsonl")
    if len(history) > 1:  # validated during training (train.eval_every): how fast the run learned
        row["val_top1_by_epoch"] = history
        row[f"epochs_to_{LEARNED_AT:.0f}"] = next((e + 1 for e, t in enumerate(history)
                                                   if t is not None and t >= LEARNED_AT), None)
    row["run_dir"] = str(where)
    return row


def val_history(path: PathLike) -> List[Optional[float]]:
    """Validation action top-1 (%) after each epoch, from a run's `epoch_log.jsonl` (None for an epoch that was not
    validated; [] when the file is absent)."""
    p = Path(path)
    if not p.is_file():
        return []
    out: List[Optional[float]] = []
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut by a kill
            break
        out.append(rec.get("val/action/top1"))
    return out
