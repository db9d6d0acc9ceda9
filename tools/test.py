#!/usr/bin/env python
"""Evaluate a trained RGB-D anticipation model.

    python tools/test.py --checkpoint RUN_DIR [--config CFG] [--out FILE] [--drop-modality depth] [key=value ...]

Writes a metrics JSON: {"verb": {"top1", "top5", "mt5r"}, "noun": {...}, "action": {...}} in percent, plus collapse
diagnostics under "collapse" (effective ranks before/after fusion, mutual gain H, modality reliance) unless
eval.collapse=false. Without --config the checkpoint's own config (RUN_DIR/model.json) is used; overrides such as
data.root=DIR evaluate it on another dataset laid out the same way.
"""
import argparse
import json
import logging
import sys

from r3d.config import ConfigError, apply_overrides, load_config
from r3d.data.errors import DataError
from r3d.engine.checkpoint import config_from_meta, load_meta
from r3d.engine.tester import test


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="run folder of tools/train.py, or its model.safetensors")
    ap.add_argument("--config", help="experiment YAML; default: the config stored with the checkpoint")
    ap.add_argument("--out", help="metrics JSON path (default: next to the checkpoint, metrics_test*.json)")
    ap.add_argument("--drop-modality", choices=["rgb", "depth"],
                    help="remove this modality for every sample (zeros + presence flag; EBR substitutes it)")
    ap.add_argument("--no-collapse", action="store_true", help="skip collapse diagnostics and reliance")
    ap.add_argument("--export-ek100", metavar="FILE", help="also write an EK100 anticipation challenge JSON (v0.2)")
    ap.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. data.root=/data/mine)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if args.config:
            cfg = load_config(args.config, args.overrides)
        else:
            cfg = apply_overrides(config_from_meta(load_meta(args.checkpoint)), args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        metrics = test(cfg, args.checkpoint, out=args.out, drop_modality=args.drop_modality,
                       collapse=False if args.no_collapse else None, export_ek100=args.export_ek100)
    except (DataError, ConfigError, FileNotFoundError, ValueError) as e:  # bad input: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if "_out" not in metrics:  # another process of `accelerate launch`: the main one reports
        return 0
    summary = {k: metrics[k] for k in ("verb", "noun", "action", "long_term") if k in metrics}
    print(json.dumps(summary, indent=1))
    print(f"wrote {metrics.get('_out')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
