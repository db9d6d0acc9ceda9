#!/usr/bin/env python
"""Train an RGB-D anticipation model.

    python tools/train.py --config configs/synthetic.yaml [key=value ...] [--resume [auto|STATE_DIR]]
    accelerate launch --num_processes 2 tools/train.py --config configs/synthetic.yaml

Writes WORK_DIR/config.yaml, WORK_DIR/checkpoints/ (resumable states), WORK_DIR/model.safetensors + model.json
(exported weights) and WORK_DIR/metrics.json (final validation metrics). Every key of r3d/defaults.yaml can be set
as key=value (e.g. model.fuser=concat train.epochs=5 work_dir=runs/concat).
"""
import argparse
import json
import logging
import sys

from r3d.config import ConfigError, load_config
from r3d.data.errors import DataError
from r3d.engine.trainer import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="experiment YAML (keys and defaults: r3d/defaults.yaml)")
    ap.add_argument("--resume", nargs="?", const="auto", default=None,
                    help="continue from WORK_DIR/checkpoints/latest (auto) or from a given state folder")
    ap.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. train.epochs=5)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        metrics = train(cfg, resume=args.resume)
    except (DataError, ConfigError, FileExistsError, FileNotFoundError) as e:  # bad input: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("verb", "noun", "action", "long_term") if k in metrics}
    print(json.dumps(summary, indent=1))
    print(f"wrote {cfg.work_dir}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
