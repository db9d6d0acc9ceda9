#!/usr/bin/env python
"""The fusion benchmark: variants × depth-noise levels × seeds on the synthetic RGB-D data, with collapse diagnostics.

    python tools/benchmark.py --quick                    # 3 variants × 2 noise levels × 1 seed, reduced config
                                                         #   (~580 CPU-s: 5-8 min on 2 idle cores)
    python tools/benchmark.py                            # the full grid (12 variants × 3 noise levels × 3 seeds)
                                                         #   end to end: ~10 min a run, about 9 h on 2 cores
    python tools/benchmark.py --frozen                   # every variant × 3 noise levels × 3 seeds on frozen,
                                                         #   cached backbone tokens (R3D's protocol): ~1 min a run
    python tools/benchmark.py --variants concat,rtf_bn --noise 0,1 --seeds 0 --epochs 5 --out runs/mine [key=value ...]
    python tools/benchmark.py --out runs/benchmark --report-only

Renders one dataset per noise level into OUT/data/, trains and tests every run into OUT/runs/<run>/ (with report.md),
appends a row per run to OUT/runs.csv, and writes OUT/results.md (mean ± std over seeds, whether RTF beat every
baseline and raised the fused effective rank, computed from the CSV) and OUT/plots/*.png. Running it again skips the
runs already in runs.csv, so an interrupted grid continues where it stopped.

Variants (the full list is in --variants below; r3d.benchmark.VARIANTS says what each sets): the plain fusers, RTF with
either selection rule (rtf_bn, rtf_svd), RTF with each published remedy (rtf_ebr, rtf_kd, rtf_mdrop), r3d's unimodal
supervision (rtf_uni, rtf_mdrop_uni) and missing-modality view (rtf_mview, rtf_ebr_mview), rtf_ebr_mdrop, and the
unimodal references rgb_only and depth_only, which run first so that every fused run reports its collapse measure
against them. --config configs/synthetic_redundant.yaml runs the grid on the redundant mode, in which either stream
alone determines the answer. key=value overrides (e.g. model.dim=64) apply to every run; one that a chosen variant
sets to another value is refused, since the variant's own value would win.
"""
import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import List

from r3d.config import ConfigError
from r3d.benchmark import (PRESETS, VARIANTS, GridSpec, check_grid_file, grid_runs, run_config, run_grid,
                           write_results)


def _list(text: str, kind: type) -> List:
    return [kind(x) for x in text.replace(",", " ").split() if x]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small grid and reduced config (about 10 minutes on 2 CPU cores)")
    ap.add_argument("--frozen", action="store_true",
                    help="R3D's frozen-feature protocol: backbones frozen at their seeded init, tokens extracted once "
                         "per noise level x seed into OUT/features/, every variant, 30 epochs "
                         "(40-100 s of training a run)")
    ap.add_argument("--config", "-c", default="configs/synthetic.yaml", help="experiment YAML (default: %(default)s)")
    ap.add_argument("--variants", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--noise", help="comma-separated depth-noise levels (default: preset's)")
    ap.add_argument("--seeds", help="comma-separated training seeds (default: preset's)")
    ap.add_argument("--out", help="output folder (default: runs/benchmark, runs/benchmark_quick with --quick, "
                                  "runs/benchmark_frozen with --frozen)")
    ap.add_argument("--epochs", type=int, help="train.epochs of every run")
    ap.add_argument("--videos", type=int, help="synthetic.videos of every dataset")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering each dataset (default: %(default)s)")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    ap.add_argument("--report-only", action="store_true", help="only rewrite results.md and plots from OUT/runs.csv")
    ap.add_argument("overrides", nargs="*", help="config overrides for every run, key=value")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    if args.quick and args.frozen:
        print("error: --quick and --frozen are two presets; choose one", file=sys.stderr)
        return 2
    preset_name = "quick" if args.quick else "frozen" if args.frozen else "full"
    preset = PRESETS[preset_name]
    out = args.out or {"quick": "runs/benchmark_quick", "frozen": "runs/benchmark_frozen"}.get(preset_name,
                                                                                             "runs/benchmark")
    if args.report_only:
        print(f"wrote {write_results(out)}")
        return 0
    custom = any(x is not None for x in (args.variants, args.noise, args.seeds, args.epochs, args.videos)) \
        or bool(args.overrides)
    spec = GridSpec(
        variants=_list(args.variants, str) if args.variants else list(preset["variants"]),
        noise=_list(args.noise, float) if args.noise else list(preset["noise"]),
        seeds=_list(args.seeds, int) if args.seeds else list(preset["seeds"]),
        config=args.config,
        overrides=list(preset["overrides"]) + list(args.overrides),
        videos=args.videos if args.videos is not None else preset["videos"],
        epochs=args.epochs if args.epochs is not None else preset["epochs"],
        preset=preset_name + (" + changes" if custom else ""),
        frozen=bool(preset.get("frozen", False)),
        command=shlex.join(["python", "tools/benchmark.py", *(sys.argv[1:] if argv is None else argv)]),
    )
    try:  # check every run's config and the settings of a previous grid in OUT before anything runs
        runs = grid_runs(spec)
        for r in runs:
            run_config(spec, r, out)
        if args.dry_run:
            print("\n".join(r.name for r in runs) + f"\n{len(runs)} runs into {out}")
            return 0
        check_grid_file(out, spec)
    except (ConfigError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    try:
        run_grid(spec, out, workers=args.workers)
    finally:  # also after an error or Ctrl-C: results.md then shows the runs finished so far
        if (Path(out) / "runs.csv").is_file():
            print(f"wrote {out}/runs.csv and {write_results(out)}")
    return 0


if __name__ == "__main__":  # the dataset generator starts worker processes (spawn): keep this guard
    sys.exit(main())
