"""The fusion benchmark grid: variants × depth-noise levels × seeds on the synthetic RGB-D benchmark.

`run_grid` renders one dataset per noise level (`r3d.data.synthetic.generate` into OUT/data/noise_<η>/), trains every
run with `r3d.engine.trainer.train` on the experiment config + the grid's overrides + the variant's overrides,
evaluates it with `r3d.engine.tester.test` (collapse diagnostics and modality reliance), appends one row per run to
OUT/runs.csv and writes the run's report.md. `write_results` turns runs.csv — and nothing else — into OUT/results.md
(mean ± std over seeds, the RTF verdicts) and the plots in OUT/plots/.

Resuming: a run whose (variant, noise, seed) is already in runs.csv is skipped; a run folder that holds exported
weights and metrics.json but no CSV row is re-tested, not retrained; a run folder with only checkpoints resumes
training.
OUT/grid.json records the settings shared by every run (the resolved config without the per-run keys); running again
into the same OUT with other shared settings is an error that names the keys, so one CSV never mixes two setups.

Verdicts (`compare`, `rtf_verdict`, `erank_verdict`): differences are paired by seed (same seed, same noise level, same
data), d = mean over seeds of (RTF − other), s = std over seeds of those differences (sample std, 0 for one seed).
RTF *wins* when d > s, *loses* when d < −s, and *ties* when |d| ≤ s — i.e. a margin within one std over seeds is not
counted as a win.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..config import Config, flatten, load_config

_logger = logging.getLogger("r3d.grid")
PathLike = Union[str, os.PathLike]

# -- variants and presets --------------------------------------------------------------------------------------------
VARIANTS: Dict[str, Tuple[str, ...]] = {
    "concat": ("model.fuser=concat",),
    "sum": ("model.fuser=sum",),
    "late": ("model.fuser=late",),
    "safuser": ("model.fuser=safuser",),  # AFFT: modality token + full attention
    "safuser_cross": ("model.fuser=safuser_cross",),  # R3D's block without RTF: cross-only mask
    "tokenfusion": ("model.fuser=tokenfusion",),
    "cen": ("model.fuser=cen",),
    "rtf_bn": ("model.fuser=rtf", "model.rtf.select=bn"),
    "rtf_svd": ("model.fuser=rtf", "model.rtf.select=svd"),
    "rtf_ebr": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true"),
    "rtf_kd": ("model.fuser=rtf", "model.rtf.select=bn", "model.kd.enabled=true"),  # cross-modal KD, rgb teaches depth
    "rtf_mdrop": ("model.fuser=rtf", "model.rtf.select=bn", "model.modality_dropout=0.25"),  # modality dropout p=0.25
    "rgb_only": ("model.modalities=[rgb]",),
    "depth_only": ("model.modalities=[depth]",),
}
RTF_VARIANTS = ("rtf_bn", "rtf_svd")  # judged against every baseline
ERANK_REFERENCES = ("safuser_cross", "concat")  # RTF's fused erank is compared with these


def is_baseline(variant: str) -> bool:
    """Every variant that is not RTF (rtf_* includes RTF + EBR) is a baseline RTF must beat, unimodal ones included."""
    return not variant.startswith("rtf")


@dataclass
class GridSpec:
    """What to run. `overrides` apply to every run (before the variant's own); `videos` / `epochs` set
    synthetic.videos / train.epochs when not None."""

    variants: List[str]
    noise: List[float]
    seeds: List[int]
    config: str = "configs/synthetic.yaml"
    overrides: List[str] = field(default_factory=list)
    videos: Optional[int] = None
    epochs: Optional[int] = None
    preset: str = "custom"
    command: str = ""
    frozen: bool = False

    def base_overrides(self) -> List[str]:
        out: List[str] = list(FROZEN_OVERRIDES) if self.frozen else []
        if self.videos is not None:
            out.append(f"synthetic.videos={int(self.videos)}")
        if self.epochs is not None:
            out.append(f"train.epochs={int(self.epochs)}")
        return out + list(self.overrides)


# The frozen-feature protocol (R3D trains fusion and head on frozen backbone tokens): both backbones frozen at their
# seeded random init, their per-frame tokens extracted once per (noise level, seed, modalities) into OUT/features/ and
# read from there (`r3d.data.features`); feat_norm=batchnorm standardises the frozen channels, which otherwise share an
# offset that LayerNorm keeps (measured at noise 0, seed 0: concat 22 % action top-1 without it in 60 epochs,
# 82 % with it in 30).
FROZEN_OVERRIDES = ("model.rgb_backbone.freeze=true", "model.depth_backbone.freeze=true", "model.feat_norm=batchnorm",
                    "data.num_workers=0")
FULL = dict(variants=["concat", "sum", "late", "safuser", "safuser_cross", "tokenfusion", "cen", "rtf_bn", "rtf_svd",
                      "rtf_ebr", "rgb_only", "depth_only"],
            noise=[0.0, 0.5, 1.0], seeds=[0, 1, 2], videos=None, epochs=None, overrides=[])
# Measured: 580 CPU-seconds in all (2 datasets, 6 runs; 16.6 min wall while sharing 2 cores with other jobs at ~57 %
# of them), i.e. roughly 5-8 minutes on 2 idle cores. 32×32 frames, 48 videos (216 train / 72 val segments), 4 epochs.
QUICK = dict(variants=["concat", "rtf_bn", "rgb_only"], noise=[0.0, 1.0], seeds=[0], videos=48, epochs=4,
             overrides=["synthetic.size=32", "data.img_size=32", "train.log_with=none"])
# Every variant, 3 noise levels x 3 seeds, from cached tokens: 126 runs of 40-100 s of training (30 epochs)
# instead of ~10 min each.
FROZEN = dict(variants=list(VARIANTS), noise=[0.0, 0.5, 1.0], seeds=[0, 1, 2], videos=None, epochs=30,
              overrides=["train.log_with=none"], frozen=True)
PRESETS = {"full": FULL, "quick": QUICK, "frozen": FROZEN}


def variant_overrides(name: str) -> List[str]:
    """The config overrides of a named variant."""
    if name not in VARIANTS:
        raise KeyError(f"unknown benchmark variant '{name}'; known: {', '.join(VARIANTS)}")
    return list(VARIANTS[name])


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


def grid_runs(spec: GridSpec) -> List[Run]:
    """Every run of `spec`, noise level outermost (one dataset at a time), then seed, then variant."""
    for v in spec.variants:
        variant_overrides(v)
    return [Run(v, float(n), int(s)) for n in spec.noise for s in spec.seeds for v in spec.variants]


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
    overrides = [*spec.base_overrides(), *variant_overrides(run.variant), *per_run]
    cfg = load_config(spec.config, overrides)
    if spec.frozen and features:
        cfg = load_config(spec.config, [*overrides, f"data.features={features_root(out, run, cfg.model.modalities)}"])
    return cfg


PER_RUN_KEYS = ("seed", "work_dir", "data.root", "synthetic.depth_noise", "data.generate_if_missing", "data.features")


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


# -- the CSV ---------------------------------------------------------------------------------------------------------
LABELS = ("verb", "noun", "action")
COLUMNS: List[str] = (
    ["variant", "noise", "seed", "fuser", "modalities"]
    + [f"{k}_{m}" for k in LABELS for m in ("top1", "top5", "mt5r")]
    + ["erank_pre_rgb", "erank_post_rgb", "erank_pre_depth", "erank_post_depth", "erank_fused", "gain_rgb",
       "gain_depth", "H", "pooled_rank", "pooled_erank", "pooled_rank_centered", "pooled_erank_centered",
       "reliance_top1", "no_rgb_top1", "no_rgb_drop", "no_rgb_rel_drop_pct", "no_depth_top1", "no_depth_drop",
       "no_depth_rel_drop_pct", "diag_share_pct", "diag_seconds", "eval_seconds", "train_seconds", "test_seconds",
       "obs_fractions", "obs_fused", "obs_H", "run_dir"]
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
    from ..viz.report import mutual_gain_curve, reliance_without

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
    row["run_dir"] = str(where)
    return row


# -- running ---------------------------------------------------------------------------------------------------------
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
    from tqdm.auto import tqdm

    from .checkpoint import find_latest

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
    if todo:  # imported only when there is work (a finished grid resumes in about a second)
        if train_fn is None:
            from .trainer import train as train_fn
        if test_fn is None:
            from .tester import test as test_fn
        if generate_fn is None:
            from ..data.synthetic import generate as generate_fn
        if extract_fn is None and spec.frozen:
            from .extract import extract_features as extract_fn
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
            from ..viz.report import write_run_report

            try:
                write_run_report(folder)
            except Exception as e:  # the row is saved; a report problem must not stop the grid
                _logger.warning("%s: report.md failed: %s", folder, e)
        bar.update()
    bar.close()
    return read_rows(csv_path)


# -- aggregation and verdicts ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof = 1; 0 for one value) over seeds, and the number of values."""

    mean: Optional[float]
    std: Optional[float]
    n: int


def mean_std(values: Iterable[Optional[float]]) -> Stat:
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return Stat(None, None, 0)
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return Stat(m, sd, len(xs))


def aggregate(rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]] = None
              ) -> Dict[Tuple[str, str], Dict[str, Stat]]:
    """{(variant, noise tag): {column: Stat over that cell's seeds}} for the numeric columns."""
    columns = list(columns) if columns is not None else [c for c in COLUMNS if c not in
                                                          ("variant", "noise", "seed", "fuser", "modalities",
                                                           "obs_fractions", "obs_fused", "obs_H", "run_dir")]
    cells: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for r in rows:
        v, n, _ = row_key(r)
        cells.setdefault((v, n), []).append(r)
    return {cell: {c: mean_std(num(r.get(c)) for r in rs) for c in columns} for cell, rs in cells.items()}


def mean_curve(rows: Sequence[Mapping[str, Any]], column: str) -> Tuple[List[float], List[Optional[float]]]:
    """Element-wise mean over rows of a list-valued column (e.g. obs_H), with the rows' obs_fractions."""
    curves = [(num_list(r.get("obs_fractions")), num_list(r.get(column))) for r in rows]
    curves = [(f, c) for f, c in curves if f and len(c) == len(f)]
    if not curves:
        return [], []
    fractions = [x for x in curves[0][0] if x is not None]
    means = [mean_std(c[i] for _, c in curves if i < len(c)).mean for i in range(len(fractions))]
    return fractions, means


@dataclass(frozen=True)
class Comparison:
    """variant − other on `metric` at one noise level: mean and std over seeds of the paired differences."""

    variant: str
    other: str
    noise: str
    metric: str
    diff: float
    std: float
    n: int
    paired: bool

    @property
    def verdict(self) -> str:
        """win (d > s), loss (d < −s) or tie (|d| ≤ s), s = std over seeds of the difference."""
        if self.diff > self.std:
            return "win"
        if self.diff < -self.std:
            return "loss"
        return "tie"

    def text(self, digits: int = 2) -> str:
        """"+d ± s"; just "+d" for a single seed (no spread to report)."""
        if self.n < 2 and self.paired:
            return f"{self.diff:+.{digits}f}"
        return f"{self.diff:+.{digits}f} ± {self.std:.{digits}f}"


def _by_seed(rows: Sequence[Mapping[str, Any]], variant: str, noise: str, metric: str) -> Dict[str, float]:
    out = {}
    for r in rows:
        v, n, s = row_key(r)
        x = num(r.get(metric))
        if v == variant and n == noise and x is not None:
            out[s] = x
    return out


def compare(rows: Sequence[Mapping[str, Any]], variant: str, other: str, noise: Union[str, float],
            metric: str = "action_top1") -> Optional[Comparison]:
    """`variant` − `other` on `metric` at `noise`, paired by seed (over the seeds both have); without a common seed,
    the difference of the means with std √(s_a² + s_b²). None when either has no value."""
    noise = noise_tag(float(noise))
    a, b = _by_seed(rows, variant, noise, metric), _by_seed(rows, other, noise, metric)
    if not a or not b:
        return None
    common = sorted(set(a) & set(b), key=int)
    if common:
        st = mean_std(a[s] - b[s] for s in common)
        return Comparison(variant, other, noise, metric, st.mean, st.std, st.n, True)
    sa, sb = mean_std(a.values()), mean_std(b.values())
    return Comparison(variant, other, noise, metric, sa.mean - sb.mean, math.hypot(sa.std, sb.std),
                      min(sa.n, sb.n), False)


@dataclass(frozen=True)
class Verdict:
    """How one RTF variant did against every baseline at one noise level."""

    variant: str
    noise: str
    metric: str
    comparisons: Tuple[Comparison, ...]

    @property
    def beat_all(self) -> bool:
        return bool(self.comparisons) and all(c.verdict == "win" for c in self.comparisons)

    @property
    def closest(self) -> Optional[Comparison]:
        """The comparison with the smallest margin (the strongest baseline)."""
        return min(self.comparisons, key=lambda c: c.diff) if self.comparisons else None

    def text(self) -> str:
        eta = f"η = {self.noise}"
        if not self.comparisons:
            return f"**{self.variant}**, {eta}: no baseline to compare with."
        c = self.closest
        unit = " points" if self.metric.endswith(("top1", "top5", "mt5r")) else ""
        seeds = f"{self.metric}{unit}, {c.n} seed{'s' if c.n != 1 else ''}" + ("" if c.paired else ", unpaired")
        if self.beat_all:
            return (f"**{self.variant}**, {eta}: **yes** — it beat every baseline ({len(self.comparisons)}); "
                    f"closest: {c.other}, {c.text()} ({seeds}).")
        groups = {k: [x for x in self.comparisons if x.verdict == k] for k in ("loss", "tie", "win")}
        parts = []
        for k, word in (("loss", "lost to"), ("tie", "tied with (within one std)"), ("win", "beat")):
            if groups[k]:
                parts.append(f"{word} " + ", ".join(f"{x.other} ({x.text()})" for x in groups[k]))
        return f"**{self.variant}**, {eta}: **no** — {'; '.join(parts)} ({seeds})."


def variants_in(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Variants present in the rows, in VARIANTS order, then any others in order of appearance."""
    seen = _union([], [str(r["variant"]) for r in rows])
    return [v for v in VARIANTS if v in seen] + [v for v in seen if v not in VARIANTS]


def noises_in(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    return sorted({row_key(r)[1] for r in rows}, key=float)


def rtf_verdict(rows: Sequence[Mapping[str, Any]], variant: str, noise: Union[str, float],
                metric: str = "action_top1") -> Verdict:
    """`variant` (an RTF variant) against every baseline present at `noise` (see `is_baseline`)."""
    noise = noise_tag(float(noise))
    comps = [c for b in variants_in(rows) if is_baseline(b)
             if (c := compare(rows, variant, b, noise, metric)) is not None]
    return Verdict(variant, noise, metric, tuple(comps))


def erank_verdict(rows: Sequence[Mapping[str, Any]], variant: str, noise: Union[str, float],
                  references: Sequence[str] = ERANK_REFERENCES) -> List[str]:
    """Sentences: did `variant` raise the fused effective rank (per-sample fused tokens, and pooled (N, C)) vs each
    reference at `noise`."""
    noise = noise_tag(float(noise))
    out = []
    for ref in references:
        parts = []
        for metric, label in (("erank_fused", "fused-token erank"), ("pooled_erank", "pooled erank")):
            c = compare(rows, variant, ref, noise, metric)
            if c is None:
                continue
            word = {"win": "raised", "loss": "lowered", "tie": "did not change (within one std)"}[c.verdict]
            parts.append(f"{word} the {label} ({c.text()}, {c.n} seed{'s' if c.n != 1 else ''})")
        if parts:
            out.append(f"**{variant}** vs {ref}, η = {noise}: " + "; ".join(parts) + ".")
    return out


# -- results.md and plots --------------------------------------------------------------------------------------------
TABLE = (("action_top1", "action top-1", 2), ("action_top5", "action top-5", 2), ("action_mt5r", "action MT5R", 2),
         ("verb_top1", "verb top-1", 2), ("noun_top1", "noun top-1", 2), ("erank_fused", "fused erank", 2),
         ("pooled_erank", "pooled erank", 2), ("H", "H", 3), ("no_rgb_rel_drop_pct", "−rgb drop %", 1),
         ("no_depth_rel_drop_pct", "−depth drop %", 1), ("train_seconds", "train s", 0))
COLLAPSE_TABLE = (("erank_pre_rgb", "rgb before", 2), ("erank_post_rgb", "rgb after", 2),
                  ("erank_pre_depth", "depth before", 2), ("erank_post_depth", "depth after", 2),
                  ("gain_rgb", "gain rgb", 3), ("gain_depth", "gain depth", 3), ("H", "H", 3),
                  ("erank_fused", "fused erank", 2), ("pooled_rank", "pooled rank", 1),
                  ("pooled_erank", "pooled erank", 2), ("diag_share_pct", "diagnostics % of eval", 1))


def fmt_stat(s: Stat, digits: int = 2) -> str:
    """"m ± s"; "m" for a single value (no spread); "—" when not measured."""
    if s.mean is None:
        return "—"
    if s.n < 2:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"


def _table(rows: Sequence[Mapping[str, Any]], agg: Mapping, columns: Sequence[Tuple[str, str, int]]) -> List[str]:
    lines = ["| variant | η | seeds | " + " | ".join(label for _, label, _ in columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for v in variants_in(rows):
        for n in noises_in(rows):
            cell = agg.get((v, n))
            if cell is None:
                continue
            seeds = max(s.n for s in cell.values()) if cell else 0
            lines.append(f"| {v} | {n} | {seeds} | " + " | ".join(fmt_stat(cell[c], d) for c, _, d in columns)
                         + " |")
    return lines


def write_plots(rows: Sequence[Mapping[str, Any]], folder: PathLike) -> Dict[str, Path]:
    """The benchmark's PNGs from CSV rows: {name: path}."""
    from ..viz import plots

    folder = Path(folder)
    agg = aggregate(rows)
    variants, noises = variants_in(rows), noises_in(rows)
    out: Dict[str, Path] = {}

    def series(metric: str) -> Dict[str, Tuple[List[float], List[Optional[float]], List[Optional[float]]]]:
        res = {}
        for v in variants:
            ns = [n for n in noises if (v, n) in agg and agg[(v, n)][metric].mean is not None]
            if ns:
                res[v] = ([float(n) for n in ns], [agg[(v, n)][metric].mean for n in ns],
                          [agg[(v, n)][metric].std for n in ns])
        return res

    out["accuracy"] = plots.plot_metric_vs_noise(series("action_top1"), folder / "accuracy_vs_noise.png",
                                                 "action top-1 (%)", "Action top-1 vs depth noise (mean ± std)")
    out["fused_erank"] = plots.plot_metric_vs_noise(series("erank_fused"), folder / "fused_erank_vs_noise.png",
                                                    "fused-token effective rank",
                                                    "Fused effective rank vs depth noise (per sample, mean ± std)")
    out["pooled_erank"] = plots.plot_metric_vs_noise(series("pooled_erank"), folder / "pooled_erank_vs_noise.png",
                                                     "pooled effective rank (N, C)",
                                                     "Pooled fused representation's erank vs depth noise")
    shown = [v for v in variants if v.startswith("rtf")] + [v for v in ERANK_REFERENCES if v in variants]
    panels = {f"η = {n}": {v: {m: (agg[(v, n)][f"erank_pre_{m}"].mean, agg[(v, n)][f"erank_post_{m}"].mean)
                               for m in ("rgb", "depth")} for v in shown if (v, n) in agg} for n in noises}
    out["before_after"] = plots.plot_erank_before_after(panels, folder / "rtf_erank_before_after.png")
    for n in noises:
        curves = {}
        for v in variants:
            fr, h = mean_curve([r for r in rows if row_key(r)[:2] == (v, n)], "obs_H")
            if fr and any(x is not None for x in h):
                curves[v] = (fr, h)
        out[f"gain_{n}"] = plots.plot_mutual_gain_vs_observed(
            curves, folder / f"mutual_gain_vs_observed_noise_{n}.png",
            f"Mutual rank gain H vs observed fraction, η = {n} (mean over seeds)")
    rel = {f"η = {n}": {v: {m: agg[(v, n)][f"no_{m}_rel_drop_pct"].mean for m in ("rgb", "depth")}
                        for v in variants if (v, n) in agg and agg[(v, n)]["no_rgb_rel_drop_pct"].n}
           for n in noises}
    out["reliance"] = plots.plot_reliance_drops(rel, folder / "reliance.png")
    return out


def results_markdown(rows: Sequence[Mapping[str, Any]], grid: Optional[Mapping[str, Any]] = None,
                     plot_paths: Optional[Mapping[str, Path]] = None, base: Optional[Path] = None) -> str:
    """results.md from CSV rows (every number computed here) and the grid record (settings, command)."""
    grid = grid or {}
    agg = aggregate(rows)
    variants, noises = variants_in(rows), noises_in(rows)
    seeds = sorted({row_key(r)[2] for r in rows}, key=int)
    lines = ["# r3d fusion benchmark on the synthetic RGB-D data", ""]
    if grid.get("command"):
        lines += ["Produced by", "", "```", str(grid["command"]), "```", ""]
    lines += [f"{len(rows)} runs from `runs.csv`: variants {', '.join(variants)}; depth noise η ∈ "
              f"{{{', '.join(noises)}}}; seeds {', '.join(seeds)}. Config `{grid.get('config', '?')}`"
              + (f", preset `{grid['preset']}`" if grid.get("preset") else "") + ".", ""]
    changed = grid.get("changed") or {}
    if changed:
        frozen = all((changed.get(f"model.{m}_backbone.freeze") or (None, None))[1] is True for m in ("rgb", "depth"))
        reduced = not frozen and (grid.get("preset") == "quick" or any(
            k in changed for k in ("synthetic.videos", "train.epochs", "synthetic.size")))
        lead = ("**Frozen-feature protocol** (`--frozen`): both backbones frozen at their seeded random init, every "
                "run trains projection, fusion and head on cached tokens — not comparable with end-to-end runs. "
                if frozen else "**Reduced config** — numbers are not comparable with the full grid. " if reduced
                else "")
        lines += [lead + "Settings changed from the experiment config for every run:", ""]
        lines += [f"- `{k}`: {a!r} → {b!r}" for k, (a, b) in sorted(changed.items())] + [""]
    lines += ["Each cell is the mean ± std over seeds (sample std; a single value when there is one seed). A "
              "verdict's margin is the mean ± std over seeds of the paired difference (same seed, same data); a "
              "margin within one std counts as a tie.", ""]

    lines += ["## Did RTF beat every baseline?", "",
              "Baselines: every variant that is not RTF (" + ", ".join(v for v in variants if is_baseline(v))
              + "). Metric: action top-1 (%).", ""]
    rtfs = [v for v in RTF_VARIANTS if v in variants]
    if not rtfs:
        lines += ["Not measured: the grid has no RTF variant (rtf_bn, rtf_svd).", ""]
    for n in noises:
        verdicts = [rtf_verdict(rows, v, n) for v in rtfs if (v, n) in agg]
        for vd in verdicts:
            lines.append(f"- {vd.text()}")
        if verdicts:
            won = [vd.variant for vd in verdicts if vd.beat_all]
            names = ", ".join(vd.variant for vd in verdicts)
            if len(won) == len(verdicts):
                summary = f"RTF ({names}) beat every baseline."
            elif not won:
                summary = f"RTF ({names}) did not beat every baseline."
            else:
                summary = f"only {', '.join(won)} beat every baseline; " \
                          f"{', '.join(vd.variant for vd in verdicts if not vd.beat_all)} did not."
            lines.append(f"- η = {n}: {summary}")
    lines += [""]
    if any(c.n < 2 for n in noises for v in rtfs if (v, n) in agg for c in rtf_verdict(rows, v, n).comparisons):
        lines += ["With one seed there is no spread: a margin is a single measurement.", ""]

    lines += ["## Did RTF raise the fused effective rank?", "",
              "Compared with " + ", ".join(ERANK_REFERENCES) + ": the per-sample effective rank of the fused (T, C) "
              "tokens, and the effective rank of the pooled (N, C) fused representation.", ""]
    sentences = [s for n in noises for v in rtfs for s in erank_verdict(rows, v, n)]
    lines += [f"- {s}" for s in sentences] or ["Not measured: the grid lacks RTF or "
                                               + "/".join(ERANK_REFERENCES) + " runs with collapse data."]
    lines += ["", "## Results (mean ± std over seeds)", ""] + _table(rows, agg, TABLE)
    lines += ["", "## Collapse diagnostics (mean ± std over seeds)", "",
              "Effective ranks of the (T, C) tokens before / after fusion, gains, H; the pooled (N, C) "
              "representation's numerical rank (bounded by min(N, C): N evaluated samples, C = model.dim) and "
              "erank; the share of evaluation time the diagnostics took (the collapse accumulator's time over the "
              "wall time of the same evaluation pass).", ""]
    lines += _table(rows, agg, COLLAPSE_TABLE) + [""]
    if plot_paths:
        base = base or Path(".")
        lines += ["## Plots", ""]
        titles = {"accuracy": "Action top-1 vs depth noise", "fused_erank": "Fused effective rank vs depth noise",
                  "pooled_erank": "Pooled effective rank vs depth noise (EBR Fig. 5 shape)",
                  "before_after": "Per-modality erank before and after fusion (RTF and references)",
                  "reliance": "Reliance: relative drop without rgb / without depth"}
        for key, path in plot_paths.items():
            title = titles.get(key) or f"Mutual gain vs observed fraction, η = {key[len('gain_'):]}"
            lines += [f"### {title}", "", f"![{title}]({os.path.relpath(path, base)})", ""]
    lines += ["Every run: `runs.csv` (one row per run) and `runs/<variant>__noise_<η>__seed_<s>/report.md`.", ""]
    return "\n".join(lines)


def write_results(out: PathLike) -> Path:
    """OUT/results.md and OUT/plots/*.png from OUT/runs.csv (and OUT/grid.json for the settings)."""
    out = Path(out)
    rows = read_rows(out / "runs.csv")
    grid = json.loads((out / "grid.json").read_text()) if (out / "grid.json").is_file() else {}
    paths = write_plots(rows, out / "plots") if rows else {}
    text = results_markdown(rows, grid, paths, base=out)
    path = out / "results.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
