"""results.md: the benchmark's tables and verdicts in words, computed from runs.csv (and grid.json for settings)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .claims import claim_beats_best_plain, claim_keeps_depth, remedy_rows
from .plots import plot_paths, write_plots
from .records import LEARNED_AT, PathLike, read_rows, row_key
from .stats import (Stat, aggregate, erank_verdict, noises_in, rtf_verdict, variants_in)
from .variants import ERANK_REFERENCES, RTF_VARIANTS, default_variant, is_baseline


TABLE = (("action_top1", "action top-1", 2), ("action_top5", "action top-5", 2), ("action_mt5r", "action MT5R", 2),
         ("verb_top1", "verb top-1", 2), ("noun_top1", "noun top-1", 2), ("erank_fused", "fused erank", 2),
         ("pooled_erank", "pooled erank", 2), ("H", "H", 3), ("no_rgb_rel_drop_pct", "−rgb drop %", 1),
         ("no_depth_rel_drop_pct", "−depth drop %", 1), ("kept_depth", "kept depth", 3), ("kept_rgb", "kept rgb", 3),
         ("train_seconds", "train s", 0))
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

    lines += collapse_section(rows, noises, grid.get("config"), (grid.get("shared") or {}).get("synthetic.mode"))
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
    speed = f"epochs_to_{LEARNED_AT:.0f}"
    if any(r.get("val_top1_by_epoch") for r in rows):
        lines += ["## Learning speed (mean ± std over seeds)", "",
                  f"Runs validated after every epoch (`train.eval_every=1`): the first epoch whose validation action "
                  f"top-1 reached {LEARNED_AT:.0f} % (— when none did).", ""]
        lines += _table(rows, aggregate(rows, ["action_top1", speed]),
                        (("action_top1", "action top-1", 2), (speed, f"first epoch ≥ {LEARNED_AT:.0f} %", 1))) + [""]
    if plot_paths:
        base = base or Path(".")
        lines += ["## Plots", ""]
        titles = {"accuracy": "Action top-1 against the best plain fuser (paired by seed)",
                  "kept_depth": "Collapse measure: top-1 without RGB / depth-only top-1",
                  "fused_erank": "Fused effective rank", "pooled_erank": "Pooled effective rank",
                  "before_after": "Per-modality erank before and after fusion (RTF and references)",
                  "reliance": "Reliance: relative drop without rgb / without depth",
                  "learning": "Learning curves: validation action top-1 after each epoch"}
        for key, path in plot_paths.items():
            title = titles.get(key) or f"Mutual gain vs observed fraction, η = {key[len('gain_'):]}"
            lines += [f"### {title}", "", f"![{title}]({os.path.relpath(path, base)})", ""]
    lines += ["Every run: `runs.csv` (one row per run) and `runs/<variant>__noise_<η>__seed_<s>/report.md`.", ""]
    return "\n".join(lines)


def remedy_table(rows: Sequence[Mapping[str, Any]], noises: Sequence[str],
                 variants: Optional[Sequence[str]] = None) -> List[str]:
    """Markdown table: each remedy (or each of `variants`) against the best plain fuser at each of `noises`, on full
    top-1 and kept depth (empty list when the grid has no such remedy or no plain fuser)."""
    table = ["| η | remedy | best plain fuser | full top-1 − best plain | kept depth | kept depth, best plain | "
             "kept − best plain |", "|---|---|---|---|---|---|---|"]
    for n in noises:
        for r in remedy_rows(rows, n):
            if variants is not None and r.variant not in variants:
                continue
            table.append(f"| {n} | {r.variant} | {r.best_plain} | {r.top1.text() if r.top1 else '—'} | "
                         f"{fmt_stat(r.kept, 3)} | {fmt_stat(r.kept_plain, 3)} | "
                         f"{r.kept_diff.text(3) if r.kept_diff else '—'} |")
    return table if len(table) > 2 else []


def collapse_section(rows: Sequence[Mapping[str, Any]], noises: Sequence[str], config: Optional[str],
                     mode: Optional[str] = None) -> List[str]:
    """results.md's section on collapse: the remedies against the best plain fuser at every η, and the claim about
    r3d's default that the grid's benchmark mode can decide (redundant: keeps depth; complementary: beats the best
    plain fuser; unknown: both)."""
    lines = ["## Collapse and the remedies", "",
             "**kept depth** = action top-1 with RGB removed at test time / top-1 of the depth-only model of the same "
             "seed and η (1.0: the fused model kept all the depth stream gives on its own; near 0: depth collapsed). "
             "Each remedy against the best plain fuser at that η (the fuser without a remedy with the highest mean "
             "top-1), differences paired by seed.", ""]
    lines += (remedy_table(rows, noises) or ["Not measured: the grid has no remedy or no plain fuser."]) + [""]
    default = default_variant(config) if config else None
    if default:
        claims = []
        if mode in (None, "redundant"):
            claims.append(claim_keeps_depth(rows, default).line())
        if mode in (None, "complementary"):
            claims.append(claim_beats_best_plain(rows, default).line())
        lines += [f"Claims about r3d's default (`{default}`, the model `{config}` trains)"
                  + (f", on the {mode} mode of the benchmark" if mode else "") + ":", ""]
        lines += [f"- {c}" for c in claims] + [""]
    return lines


def results_page(out: PathLike) -> str:
    """The text of OUT/results.md as `write_results` writes it from OUT/runs.csv and OUT/grid.json, without drawing the
    plots (to check that a committed results.md is up to date)."""
    out = Path(out)
    rows = read_rows(out / "runs.csv")
    grid = json.loads((out / "grid.json").read_text()) if (out / "grid.json").is_file() else {}
    return results_markdown(rows, grid, plot_paths(rows, out / "plots") if rows else {}, base=out)


def write_results(out: PathLike) -> Path:
    """OUT/results.md and OUT/plots/*.png from OUT/runs.csv (and OUT/grid.json for the settings)."""
    out = Path(out)
    rows = read_rows(out / "runs.csv")
    if rows:
        write_plots(rows, out / "plots")
    path = out / "results.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(results_page(out))
    os.replace(tmp, path)
    return path
