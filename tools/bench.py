#!/usr/bin/env python
"""Measure r3d's performance figures (issue #9) and compare each with its target.

    python tools/bench.py [--quick] [--out FILE.json] [--only P1 P6] [--config CFG] [--threads 1] [key=value ...]

Prints one line per figure — id, what, measured value, target, PASS/MISS (n/a when it cannot run here) — and writes
every figure with its raw samples to a JSON file. Every ratio is A against B measured in this process, interleaved
round by round, as the median of the paired ratios (the machine is shared and noisy). `--quick` runs every figure
with short settings (≤ 5 min on 2 cores). The figures and how each is measured: r3d/perf/bench.py.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short settings for every figure (<= 5 min on 2 cores)")
    ap.add_argument("--out", default="bench.json", help="JSON file for the figures (default: %(default)s)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these figure ids (P1 ... P6)")
    ap.add_argument("--config", help="benchmark model config (default: configs/synthetic.yaml)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default: %(default)s; the machine is shared, see README)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of the benchmark model")
    args = ap.parse_args(argv)
    if args.only:  # `--only P1 key=value`: argparse hands the override to --only
        args.overrides += [o for o in args.only if "=" in o]
        args.only = [o for o in args.only if "=" not in o]

    import torch

    from r3d.perf.bench import run_bench
    from r3d.perf.common import bench_config

    torch.set_num_threads(args.threads)
    cfg = bench_config(args.config, args.overrides)
    t0 = time.perf_counter()
    print(f"r3d bench ({'quick' if args.quick else 'full'}): torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        result = run_bench(cfg, quick=args.quick, only=args.only, on_figure=lambda f: print(f.line(), flush=True))
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    result["command"] = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    missed = [f["id"] for f in result["figures"] if f["passed"] is False]
    print(f"{len(result['figures'])} figures in {time.perf_counter() - t0:.0f} s; missed: {', '.join(missed) or 'none'}"
          f"; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
