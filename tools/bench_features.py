#!/usr/bin/env python
"""P3: one training epoch from the feature cache vs one end-to-end epoch with frozen backbones (same model, seed).

    python tools/bench_features.py [--full] [--repeats N] [--threads 1] [--workers 0] [--backbone NAME] [--json FILE]

Renders a small synthetic benchmark in a temporary folder, extracts its cache, then times the two epochs interleaved
and prints the medians, their ratio (target >= 20x) and whether the validation metrics after the epoch are equal
(r3d.perf.feature_cache.measure). --backbone sets both backbones (a timm name, e.g. resnet18) instead of the default
r3d_resnet_tiny.
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="40 videos and 5 repetitions instead of 12 and 3")
    ap.add_argument("--repeats", type=int, help="repetitions of each epoch (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers of both loaders (default: %(default)s)")
    ap.add_argument("--backbone", help="timm model for both backbones (default: the config default)")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from r3d.perf.feature_cache import measure

    torch.set_num_threads(args.threads)
    overrides = [f"model.{m}_backbone.name={args.backbone}" for m in ("rgb", "depth")] if args.backbone else []
    result = measure(quick=not args.full, repeats=args.repeats, num_workers=args.workers, overrides=overrides)
    print(f"P3 epoch from the feature cache vs end to end (frozen backbones): {result['ratio']:.1f}x faster "
          f"(target >= 20x); end to end {result['end_to_end_s']:.2f} s, cache {result['cache_s']:.3f} s "
          f"(medians of {result['repeats']}, {result['train_samples']} samples); metrics equal: "
          f"{result['metrics_equal']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
