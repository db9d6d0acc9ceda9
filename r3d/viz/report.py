"""One run's diagnostics as a markdown report: `write_run_report(RUN_DIR)` → RUN_DIR/report.md (+ PNGs next to it).

Reads what training and testing leave in a run folder — `config.yaml`, `metrics.json` (validation at the end of
training), `metrics_test.json` and `metrics_test_no_<m>.json` (`tools/test.py`) — and renders:

1. the anticipation table (verb / noun / action top-1, top-5, MT5R) of every metrics file;
2. the collapse table: erank of the rgb and depth tokens before and after fusion, the per-modality gain, the fused
   tokens' erank, the mutual gain H, and the pooled (N, C) representation's numerical rank and erank;
3. modality reliance: action top-1 without rgb / without depth and the relative drop (bars);
4. effective rank and H against the observed fraction (curves);
5. the measured share of evaluation time spent on the diagnostics.

Collapse data come from `metrics_test.json` when it has them (it has reliance and the observed-fraction curves), else
from `metrics.json`. Every section degrades on its own: a key that is absent is written as "not measured", so the
report also works for runs evaluated with `eval.collapse=false` or by an older r3d.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from ..metrics.collapse import mutual_gain_curve, reliance_without
from . import plots

PathLike = Union[str, os.PathLike]
NOT_MEASURED = "not measured"
LABELS = ("verb", "noun", "action")
SCORES = (("top1", "top-1"), ("top5", "top-5"), ("mt5r", "MT5R"))
PNG = {"before_after": "report_erank_before_after.png", "reliance": "report_reliance.png",
       "observed": "report_erank_vs_observed.png", "gain": "report_mutual_gain_vs_observed.png"}

__all__ = ["write_run_report", "render_run_report", "load_run", "fmt"]


# -- reading ---------------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); re-run tools/test.py to rewrite it") from None
    return data if isinstance(data, dict) else None


def load_run(run_dir: PathLike) -> Dict[str, Any]:
    """What a run folder holds: {"config": dict or None, "metrics": {file name: metrics dict}} (metrics.json first,
    then metrics_test.json, then the other metrics_test*.json in name order)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run folder (pass the work_dir of tools/train.py)")
    config = None
    if (run / "config.yaml").is_file():
        config = yaml.safe_load((run / "config.yaml").read_text()) or None
    names = ["metrics.json", "metrics_test.json"]
    names += sorted(p.name for p in run.glob("metrics_test*.json") if p.name not in names)
    metrics = {n: m for n in names if (m := _read_json(run / n)) is not None}
    return {"config": config, "metrics": metrics}


# -- formatting ------------------------------------------------------------------------------------------------------
def fmt(v: Any, digits: int = 2, suffix: str = "") -> str:
    """A number for a table: `digits` decimals (ints as ints), "nan" for NaN, "not measured" for None / absent."""
    if v is None or isinstance(v, bool):
        return NOT_MEASURED
    if isinstance(v, int):
        return f"{v}{suffix}"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}{suffix}"


def _pct(fraction: Any) -> str:
    """A relative drop (fraction) in percent."""
    try:
        return fmt(100.0 * float(fraction), 1, " %")
    except (TypeError, ValueError):
        return NOT_MEASURED


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _describe(name: str, m: Mapping) -> str:
    if name == "metrics.json":
        return "validation, end of training (`metrics.json`)"
    dropped = m.get("dropped_modality")
    split = m.get("split", "val")
    base = f"{split}, {'without ' + dropped if dropped else 'all modalities'}"
    return f"{base} (`{name}`)"


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


# -- sections --------------------------------------------------------------------------------------------------------
def _header(run: Path, config: Optional[Mapping]) -> List[str]:
    lines = [f"# Run report: `{run.name}`", "", f"Run folder: `{run}`.", ""]
    if not config:
        return lines + [f"Config: {NOT_MEASURED} (no config.yaml).", ""]
    model = config.get("model", {})
    mods = list(model.get("modalities") or [])
    fuser = model.get("fuser") if len(mods) != 1 else "identity (unimodal model)"
    items = [("fuser", fuser), ("modalities", ", ".join(mods))]
    if fuser in ("rtf", "rtf_svd"):
        rtf = model.get("rtf", {})
        items.append(("rtf", f"select={'svd' if model.get('fuser') == 'rtf_svd' else rtf.get('select')}, "
                             f"ratio={rtf.get('ratio')}"))
    items += [("EBR", "on" if _get(model, "ebr", "enabled") else "off"), ("dim", model.get("dim")),
              ("epochs", _get(config, "train", "epochs")), ("seed", config.get("seed")),
              ("data", _get(config, "data", "root")), ("depth noise", _get(config, "synthetic", "depth_noise"))]
    lines += _table(["setting", "value"], [[k, f"`{v}`"] for k, v in items])
    return lines + [""]


def _anticipation(metrics: Mapping[str, Mapping]) -> List[str]:
    lines = ["## Anticipation", ""]
    rows = []
    for name, m in metrics.items():
        if not any(isinstance(m.get(k), Mapping) for k in LABELS):
            continue
        rows.append([_describe(name, m)] + [_score(m, k, s) for k in LABELS for s, _ in SCORES])
    if not rows:
        return lines + [f"Anticipation metrics: {NOT_MEASURED} (no metrics.json or metrics_test*.json).", ""]
    header = ["evaluation"] + [f"{k} {label}" for k in LABELS for _, label in SCORES]
    notes = sorted({f"The dataset has one {k} class: its scores carry no information (n/a), and actions are exactly "
                    f"the {(m.get('action') or {}).get('same_as', 'other factor')}s, so action scores equal those."
                    for m in metrics.values() for k in LABELS[:2]
                    if isinstance(m.get(k), Mapping) and m[k].get("informative") is False})
    return lines + ["Percent; MT5R = class-mean top-5 recall over the classes present.", ""] + _table(header, rows) \
        + [""] + [n for note in notes for n in (note, "")]


def _score(m: Mapping, label: str, score: str) -> str:
    """A table cell: the score, or "n/a (1 class)" for a factor with a single class."""
    block = m.get(label)
    if isinstance(block, Mapping) and block.get("informative") is False:
        return "n/a (1 class)"
    return fmt(_get(m, label, score))


def _collapse_source(metrics: Mapping[str, Mapping]) -> Tuple[Optional[str], Optional[Mapping]]:
    for name in ["metrics_test.json", "metrics.json"] + [n for n in metrics if n.startswith("metrics_test_")]:
        col = _get(metrics.get(name), "collapse")
        if isinstance(col, Mapping) and any(k in col for k in ("erank_pre", "erank_post", "erank_fused")):
            return name, col
    return None, None


def _collapse(run: Path, name: Optional[str], col: Optional[Mapping]) -> List[str]:
    lines = ["## Collapse", ""]
    if col is None:
        return lines + [f"Collapse diagnostics: {NOT_MEASURED} (no `collapse` block with effective ranks in "
                        "metrics_test.json or metrics.json; run tools/test.py with eval.collapse=true).", ""]
    pre, post, gain = col.get("erank_pre") or {}, col.get("erank_post") or {}, col.get("gain") or {}
    mods = [m for m in ("rgb", "depth") if m in pre or m in post] + sorted(set(pre) - {"rgb", "depth"})
    lines += [f"From `{name}`: mean over {fmt(col.get('num_samples'))} samples of the per-sample effective rank of "
              "the (T, C) tokens (singular values σ, p = σ/Σσ, erank = exp(−Σ p log p)).", ""]
    rows = [["erank before fusion"] + [fmt(pre.get(m)) for m in mods],
            ["erank after fusion"] + [fmt(post.get(m)) for m in mods],
            ["gain (after − before)"] + [fmt(gain.get(m), 3) for m in mods]]
    if mods:
        lines += _table(["tokens"] + mods, rows) + [""]
    else:
        lines += [f"Per-modality effective ranks: {NOT_MEASURED}.", ""]
    summary = [
        ["fused tokens erank", fmt(col.get("erank_fused"))],
        ["mutual gain H (0 when a gain ≤ 0)", fmt(col.get("H"), 3)],
        ["pooled fused representation (N, C): numerical rank", fmt(col.get("pooled_rank"))],
        ["pooled fused representation (N, C): erank", fmt(col.get("pooled_erank"))],
        ["pooled, centred: numerical rank", fmt(col.get("pooled_rank_centered"))],
        ["pooled, centred: erank", fmt(col.get("pooled_erank_centered"))],
    ]
    lines += _table(["quantity", "value"], summary) + [""]
    if mods and any(m in pre and m in post for m in mods):
        plots.plot_erank_before_after({"": {"this run": {m: (pre.get(m), post.get(m)) for m in mods}}},
                                      run / PNG["before_after"])
        lines += [f"![erank before and after fusion]({PNG['before_after']})", ""]
    return lines


def _reliance(run: Path, col: Optional[Mapping]) -> List[str]:
    lines = ["## Modality reliance", ""]
    rel = _get(col, "reliance")
    without = reliance_without(rel)
    if not without:
        return lines + [f"Modality reliance: {NOT_MEASURED} (no `collapse.reliance` in metrics_test.json; "
                        "tools/test.py measures it on multimodal models with eval.collapse=true).", ""]
    lines += [f"Action top-1 on the same {fmt(rel.get('num_samples'))} samples with each modality removed "
              "(zeros + presence flag). A model whose accuracy does not move without a modality does not use it.", ""]
    rows = [["all modalities", fmt(rel.get("top1")), "—", "—"]]
    rows += [[f"without {m}", fmt(v.get("top1")), fmt(v.get("drop")), _pct(v.get("relative_drop"))]
             for m, v in without.items()]
    lines += _table(["evaluation", "action top-1", "drop (points)", "relative drop"], rows) + [""]
    plots.plot_reliance(rel.get("top1"), {m: v.get("top1") for m, v in without.items()}, run / PNG["reliance"])
    lines += [f"![modality reliance]({PNG['reliance']})", ""]
    kept = _get(col, "kept")
    if isinstance(kept, Mapping) and kept:
        lines += ["**Collapse measure** — what this model keeps of each stream: its top-1 with the other stream "
                  "removed, as a fraction of a model trained on that stream alone (1.0 = all the stream can give; "
                  "near 0 = the stream collapsed).", ""]
        krows = [[m, fmt(v.get("top1_without_other")), fmt(v.get("unimodal_top1")), fmt(v.get("fraction"), 3),
                  f"`{v.get('reference')}`"] for m, v in kept.items()]
        lines += _table(["stream kept", "top-1 without the other", "trained alone", "fraction", "reference"],
                        krows) + [""]
    else:
        lines += [f"Collapse measure (top-1 without the other stream / a unimodal model's top-1): {NOT_MEASURED} "
                  "(set eval.reference.rgb / eval.reference.depth to unimodal runs and re-run tools/test.py).", ""]
    return lines


def _observed(run: Path, col: Optional[Mapping]) -> List[str]:
    lines = ["## Effective rank vs observed fraction", ""]
    curves = _get(col, "erank_vs_observed")
    if not isinstance(curves, Mapping) or not curves.get("fractions"):
        return lines + [f"Effective rank vs observed fraction: {NOT_MEASURED} (tools/test.py writes it with "
                        "eval.collapse=true and eval.observed_fractions).", ""]
    fr = list(curves["fractions"])
    pre, post = curves.get("pre") or {}, curves.get("post") or {}
    mods = [m for m in ("rgb", "depth") if m in pre or m in post] + sorted(set(pre) - {"rgb", "depth"})
    h = mutual_gain_curve(curves)
    cols: List[Tuple[str, Sequence]] = []
    for m in mods:
        cols += [(f"{m} before", pre.get(m) or []), (f"{m} after", post.get(m) or [])]
    cols.append(("fused", curves.get("fused") or []))
    cols.append(("H", h))
    rows = [[fmt(f)] + [fmt(c[i] if i < len(c) else None, 3 if n == "H" else 2) for n, c in cols]
            for i, f in enumerate(fr)]
    lines += ["Mean erank of the window truncated to its first ceil(f·T) frames; H from the per-fraction gains.", ""]
    lines += _table(["observed fraction"] + [n for n, _ in cols], rows) + [""]
    plots.plot_erank_vs_observed(curves, run / PNG["observed"])
    lines += [f"![erank vs observed fraction]({PNG['observed']})", ""]
    if any(v is not None for v in h):
        plots.plot_mutual_gain_vs_observed({run.name: (fr, h)}, run / PNG["gain"])
        lines += [f"![mutual gain vs observed fraction]({PNG['gain']})", ""]
    return lines


def _cost(metrics: Mapping[str, Mapping], name: Optional[str], col: Optional[Mapping]) -> List[str]:
    lines = ["## Cost of the diagnostics", ""]
    share, secs = _get(col, "share_of_eval_time"), _get(col, "seconds")
    if share is None:
        return lines + [f"Share of evaluation time spent on collapse diagnostics: {NOT_MEASURED}.", ""]
    total = _get(metrics.get(name or ""), "eval_seconds")
    rows = [["collapse diagnostics (s)", fmt(secs, 3)], ["evaluation pass (s)", fmt(total, 3)],
            ["share of evaluation time", _pct(share)]]
    if _get(col, "reliance_seconds") is not None:
        rows.append(["reliance re-evaluations, one per modality (s)", fmt(col["reliance_seconds"], 3)])
    return lines + [f"Measured in `{name}`: time inside the collapse accumulator over the wall time of the same "
                    "evaluation pass. Reliance needs one extra pass per modality, counted separately.", ""] \
        + _table(["quantity", "value"], rows) + [""]


# -- entry points ----------------------------------------------------------------------------------------------------
def render_run_report(run_dir: PathLike) -> str:
    """The markdown text of a run's report (writes the PNGs it embeds into `run_dir`)."""
    run = Path(run_dir)
    data = load_run(run)
    metrics = data["metrics"]
    name, col = _collapse_source(metrics)
    parts = (_header(run, data["config"]) + _anticipation(metrics) + _collapse(run, name, col)
             + _reliance(run, col) + _observed(run, col) + _cost(metrics, name, col))
    return "\n".join(parts).rstrip() + "\n"


def write_run_report(run_dir: PathLike) -> Path:
    """Render RUN_DIR/report.md from the run's config.yaml and metrics JSONs, with the plots as PNGs next to it.

    Args:
        run_dir: a run folder of tools/train.py / tools/test.py.
    Returns:
        the path of report.md.
    Raises:
        FileNotFoundError: `run_dir` does not exist.
    """
    run = Path(run_dir)
    text = render_run_report(run)
    out = run / "report.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return out
