#!/usr/bin/env python
"""Check a dataset ROOT up front: every problem training would stop on, in one table.

    python tools/validate_data.py ROOT [--config CFG] [--quick] [key=value ...]
    python tools/validate_data.py ROOT model.modalities=[depth]      # a depth-only ROOT (no videos/)

Reads ROOT the way training does (data.format, splits, depth overrides, the window keys and model.modalities come
from the config; defaults: r3d/defaults.yaml) and prints one row per check (layout, class lists, annotations, videos,
frame timing, depth store/frames/values, depth range, segments) followed by the first findings of each, every one
naming the file or CSV row and the fix. A bad annotation row drops only that row, so every other problem is still
found. "depth range" samples the depth the model would see and reports how much of it survives depth_scale,
depth_min and depth_max, with the measured span. Exit status: 0 when there is no error (warnings allowed), 1
otherwise, 2 for a bad config.
"""
import argparse
import logging
import sys

from r3d.config import ConfigError, load_config
from r3d.data.validate import validate_root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="dataset ROOT (annotations/, and videos/ and/or depth/ for the model's modalities)")
    ap.add_argument("--config", help="experiment YAML whose data.* keys describe the dataset")
    ap.add_argument("--quick", action="store_true", help="read only the first and last depth frame of each video")
    ap.add_argument("--details", type=int, default=5, help="findings listed per check (default 5)")
    ap.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. data.drop_style=skip)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = validate_root(args.root, cfg, full=not args.quick)
    print(report.table(details=args.details))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
