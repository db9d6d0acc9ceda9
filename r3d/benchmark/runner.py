"""Running the grid: one dataset per noise level, one run folder per (variant, noise, seed), one CSV row per run.

`run_grid` renders one dataset per noise level (`r3d.data.synthetic.generate` into OUT/data/noise_<η>/), trains every
run with `r3d.engine.trainer.train` on the experiment config + the grid's overrides + the variant's overrides,
evaluates it with `r3d.engine.tester.test` (collapse diagnostics and modality reliance), appends one row per run to
OUT/runs.csv and writes the run's report.md.

Resuming: a run whose (variant, noise, seed) is already in runs.csv is skipped; a run folder that holds exported
weights and metrics.json but no CSV row is re-tested, not retrained; a run folder with only checkpoints resumes
training. OUT/grid.json records the settings shared by every run (the resolved config without the per-run keys);
running again into the same OUT with other shared settings is an error that names the keys, so one CSV never mixes
two setups.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tqdm.auto import tqdm

from ..config import Config, flatten, load_config
from ..data.synthetic import generate
from ..engine.checkpoint import find_latest
from ..engine.extract import extract_features
from ..engine.tester import test
from ..engine.trainer import train
from ..viz.report import write_run_report
from .records import PathLike, Run, append_row, noise_tag, read_rows, row_from_metrics, row_key
from .variants import UNIMODAL, GridSpec, check_grid_overrides, variant_overrides

_logger = logging.getLogger("r3d.benchmark")


def grid_runs(spec: GridSpec) -> List[Run]:
    """Every run of `spec`: noise level outermost (one dataset at a time), then seed, then the unimodal variants before
    the others (their results are the references of the collapse measure, `eval.reference`), then the rest in order."""
    for v in spec.variants:
        variant_overrides(v)
    check_grid_overrides(spec.overrides, spec.variants)
    order = [v for v in spec.variants if v in UNIMODAL] + [v for v in spec.variants if v not in UNIMODAL]
    return [Run(v, float(n), int(s)) for n in spec.noise for s in spec.seeds for v in order]


def dataset_root(out: PathLike, noise: float) -> Path:
    return Path(out) / "data" / f"noise_{noise_tag(noise)}"


def run_dir(out: PathLike, run: Run) -> Path:
    return Path(out) / "runs" / run.name


def features_root(out: PathLike, run: Run, modalities: Sequence[str]) -> Path:
    """The token cache of a frozen-protocol run: one per noise level, seed (the backbones' random init) and modality
    set (a depth-only model's depth backbone is the first module built, so its init differs from the RGB-D one's)."""
    return Path(out) / "features" / f"noise_{noise_tag(run.noise)}__seed_{int(run.seed)}__{'+'.join(modalities)}"


def run_config(spec: GridSpec, run: Run, out: PathLike, features: bool = True) -> Config:
    """Experiment config ← grid overrides ← variant overrides ← per-run keys (seed, work_dir, data root, noise, and
    with `spec.frozen` the token cache unless `features` is False: the config that extracts it)."""
    per_run = [f"seed={int(run.seed)}", f"work_dir={run_dir(out, run)}", f"data.root={dataset_root(out, run.noise)}",
               f"synthetic.depth_noise={float(run.noise)}", "data.generate_if_missing=false"]
    if run.variant not in UNIMODAL:  # the unimodal runs of the same noise level and seed measure what each stream gives
        per_run += [f"eval.reference.{m}={run_dir(out, Run(ref, run.noise, run.seed))}"
                    for ref, m in UNIMODAL.items() if ref in spec.variants]
    overrides = [*spec.base_overrides(), *variant_overrides(run.variant), *per_run]
    cfg = load_config(spec.config, overrides)
    if spec.frozen and features:
        cfg = load_config(spec.config, [*overrides, f"data.features={features_root(out, run, cfg.model.modalities)}"])
    return cfg


PER_RUN_KEYS = ("seed", "work_dir", "data.root", "synthetic.depth_noise", "data.generate_if_missing", "data.features",
                "eval.reference.rgb", "eval.reference.depth")


def shared_settings(spec: GridSpec) -> Dict[str, Any]:
    """The resolved config every run shares (before variant and per-run keys), flattened to dotted keys."""
    flat = flatten(load_config(spec.config, spec.base_overrides()).to_dict())
    return {k: v for k, v in flat.items() if k not in PER_RUN_KEYS}


def changed_settings(spec: GridSpec) -> Dict[str, Tuple[Any, Any]]:
    """{key: (value in the experiment config, value in this grid)} for every key the grid's overrides change."""
    plain = flatten(load_config(spec.config).to_dict())
    mine = shared_settings(spec)
    return {k: (plain.get(k), v) for k, v in mine.items() if plain.get(k) != v}


def check_grid_file(out: PathLike, spec: GridSpec) -> Dict[str, Any]:
    """Write OUT/grid.json, or check that an existing one has the same shared settings (keys both know).

    Raises:
        ValueError: naming the keys whose values differ from the previous grid in OUT.
    """
    path = Path(out) / "grid.json"
    shared = shared_settings(spec)
    record = {"config": str(spec.config), "overrides": spec.base_overrides(), "preset": spec.preset,
              "command": spec.command, "shared": shared,
              "changed": {k: list(v) for k, v in changed_settings(spec).items()}}
    if path.is_file():
        old = json.loads(path.read_text())
        prev = old.get("shared", {})
        diff = sorted(k for k in set(prev) & set(shared) if prev[k] != shared[k])
        if diff:
            shown = ", ".join(f"{k}: {prev[k]!r} → {shared[k]!r}" for k in diff[:8]) + (", ..." if len(diff) > 8 else "")
            raise ValueError(f"{out} holds a grid with other shared settings ({shown}); use another --out, or the same "
                             f"settings as {path}")
        record["variants"] = _union(old.get("variants", []), spec.variants)
        record["noise"] = _union(old.get("noise", []), [noise_tag(n) for n in spec.noise])
        record["seeds"] = _union(old.get("seeds", []), [int(s) for s in spec.seeds])
    else:
        record.update(variants=list(spec.variants), noise=[noise_tag(n) for n in spec.noise],
                      seeds=[int(s) for s in spec.seeds])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)
    return record


def _union(a: Sequence, b: Sequence) -> list:
    return list(a) + [x for x in b if x not in a]


def _synthetic_kwargs(cfg: Config) -> Dict[str, Any]:
    s, d = cfg.synthetic, cfg.data
    return dict(videos=s.videos, val_fraction=s.val_fraction, pairs_per_video=s.pairs_per_video,
                num_verbs=s.num_verbs, num_nouns=s.num_nouns, fps=s.fps, size=s.size, seed=s.seed,
                tau_a=d.tau_a, tau_o=d.tau_o, mode=s.mode)


def _trained(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "metrics.json").is_file()


def run_grid(spec: GridSpec, out: PathLike, *, workers: int = 2, progress: bool = True, reports: bool = True,
             train_fn: Optional[Callable] = None, test_fn: Optional[Callable] = None,
             generate_fn: Optional[Callable] = None, extract_fn: Optional[Callable] = None) -> List[Dict[str, str]]:
    """Run every missing cell of the grid, appending to OUT/runs.csv; returns all rows of the CSV afterwards.

    Args:
        spec: the grid. out: output folder (data/, runs/, runs.csv, grid.json).
        workers: processes rendering each dataset. progress: tqdm bar over the grid.
        reports: write each run's report.md.
        train_fn / test_fn / generate_fn / extract_fn: replacements of `trainer.train`, `tester.test`,
            `synthetic.generate`, `extract.extract_features` (same signatures; for tests).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_grid_file(out, spec)
    csv_path = out / "runs.csv"
    runs = grid_runs(spec)
    done = {row_key(r) for r in read_rows(csv_path)}
    todo = [r for r in runs if r.key not in done]
    ready: set = set()
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="benchmark grid", unit="run",
               disable=not progress, dynamic_ncols=True)
    train_fn, test_fn = train_fn or train, test_fn or test
    generate_fn, extract_fn = generate_fn or generate, extract_fn or extract_features
    for run in todo:
        bar.set_postfix_str(run.name)
        cfg = run_config(spec, run, out)
        root = dataset_root(out, run.noise)
        if noise_tag(run.noise) not in ready:
            info = generate_fn(root, depth_noise=float(run.noise), workers=workers, progress=False,
                               **_synthetic_kwargs(cfg))
            _logger.info("dataset %s: %s", root, info)
            ready.add(noise_tag(run.noise))
        if spec.frozen and cfg.data.features not in ready:  # extract (or finish) this cache once per invocation
            summary = extract_fn(run_config(spec, run, out, features=False), cfg.data.features, progress=False)
            _logger.info("features %s: %s", cfg.data.features, summary)
            ready.add(cfg.data.features)
        folder = Path(cfg.work_dir)
        if _trained(folder):
            _logger.info("%s: trained already, re-testing", run.name)
            train_metrics = json.loads((folder / "metrics.json").read_text())
        else:
            resume = "auto" if find_latest(folder / "checkpoints") is not None else None
            train_metrics = train_fn(cfg, resume=resume)
        t0 = time.perf_counter()
        test_metrics = test_fn(cfg, str(folder), out=str(folder / "metrics_test.json"))
        row = row_from_metrics(run, cfg, train_metrics, test_metrics, time.perf_counter() - t0, folder)
        append_row(csv_path, row)
        if reports:
            try:
                write_run_report(folder)
            except Exception as e:  # the row is saved; a report problem must not stop the grid
                _logger.warning("%s: report.md failed: %s", folder, e)
        bar.update()
    bar.close()
    return read_rows(csv_path)
