"""Measure r3d's performance figures and compare each with its target.

    python -m benchmarks [--quick] [--out FILE.json] [--only P1 P5] [--config CFG] [--threads 1] [key=value ...]

Run from the repository root. Prints one line per figure — id, what, measured value, target, PASS/MISS (N/A when it
cannot run here) — and writes every figure with its raw samples to a JSON file. Every ratio is A against B measured in
this process, interleaved round by round, as the median of the paired ratios (a shared machine is noisy). `--quick`
runs every figure with short settings. key=value overrides change the benchmark model (default
configs/synthetic.yaml), e.g. `model.rgb_backbone.name=resnet50 model.depth_backbone.name=resnet50` for P3 with R3D's
frozen backbone.

| id | A vs B | target |
|---|---|---|
| P1, P1b | train step with rtf/bn (rtf/svd) vs concat, CPU time | <= 1.03x (<= 1.10x) |
| P2 | train steps fed by the on-disk loader vs by in-memory batches, wall time | <= 1.10x |
| P3 | end-to-end frozen-backbone epoch vs an epoch from the feature cache (speed-up) | >= 20x |
| P4, P4b, P4c | demo streaming frames/s; 64- vs 8-frame history cost; end to end on the bundled clip | >= 30 fr/s; <= 1.2x |
| P5 | every window of a 120 s 456x256 H.264 clip read as the loader does vs one sequential decode | <= 1.4x |
| P6, P6b | effective-rank diagnostics' share of evaluation time | <= 5 % |
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from r3d.config import ConfigError

from .common import bench_config
from .figures import FIGURES, run_bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short settings for every figure")
    ap.add_argument("--out", default="bench.json", help="JSON file for the figures (default: %(default)s)")
    ap.add_argument("--only", nargs="+", metavar="ID", help=f"run only these figures ({', '.join(FIGURES.names())})")
    ap.add_argument("--config", help="benchmark model config (default: configs/synthetic.yaml)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default: %(default)s; one thread is steadier on a shared machine)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of the benchmark model")
    args = ap.parse_args(argv)
    if args.only:  # `--only P1 key=value`: argparse hands the override to --only
        args.overrides += [o for o in args.only if "=" in o]
        args.only = [o for o in args.only if "=" not in o]
    torch.set_num_threads(args.threads)
    try:
        cfg = bench_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"r3d benchmarks ({'quick' if args.quick else 'full'}): torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        result = run_bench(cfg, quick=args.quick, only=args.only, on_figure=lambda f: print(f.line(), flush=True))
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    result["command"] = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    missed = [f["id"] for f in result["figures"] if f["passed"] is False]
    print(f"{len(result['figures'])} figures in {time.perf_counter() - t0:.0f} s; missed: {', '.join(missed) or 'none'}"
          f"; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
