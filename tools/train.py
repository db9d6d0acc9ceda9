#!/usr/bin/env python
"""Train an RGB-D anticipation model.

    python tools/train.py -c configs/synthetic.yaml [--work-dir DIR] [key=value ...] [--resume [auto|STATE_DIR]]
    accelerate launch --multi_gpu --num_processes 2 tools/train.py -c configs/synthetic.yaml    # 2 processes (CPU: gloo)

Writes WORK_DIR/config.yaml (the resolved config), WORK_DIR/checkpoints/ (resumable states), WORK_DIR/model.safetensors
+ model.json (exported weights and what rebuilds them), WORK_DIR/metrics.json (final validation metrics) and
WORK_DIR/log.txt (every log line). Every key of r3d/defaults.yaml can be set as key=value (or after --cfg-options),
e.g. model.fuser=concat train.epochs=5. On a machine without GPUs, `accelerate launch` needs --multi_gpu to start
several processes (they then run on CPU with the gloo backend).
"""
import argparse
import json
import sys

from r3d.cli import add_config_arguments, add_resume_argument, config_overrides, parse_known, setup_logging
from r3d.config import ConfigError, load_config
from r3d.data.errors import DataError
from r3d.engine.trainer import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(ap)
    add_resume_argument(ap)
    args = parse_known(ap, argv)
    setup_logging(verbose=args.verbose)
    try:
        cfg = load_config(args.config, config_overrides(args))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.work_dir, verbose=args.verbose)
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
