#!/usr/bin/env python
"""Evaluate a trained RGB-D anticipation model.

    python tools/test.py --checkpoint RUN_DIR [-c CFG] [--out FILE] [--drop-modality depth] [key=value ...]
    python tools/test.py RUN_DIR/checkpoints/epoch_0005            # a training state: the run's config.yaml is used

--checkpoint takes a run folder of tools/train.py, its model.safetensors (model.json next to it), or any .safetensors
weights file of an r3d model (a training state's, a copy elsewhere: the config then comes from --config or from the
config.yaml of the run it lies in). Writes a metrics JSON: {"verb": {"top1", "top5", "mt5r"}, "noun": {...},
"action": {...}} in percent, plus collapse diagnostics under "collapse" (effective ranks before/after fusion, mutual
gain H, modality reliance) unless eval.collapse=false. Overrides such as data.root=DIR evaluate it on another dataset
laid out the same way.
"""
import argparse
import json
import sys

from r3d.cli import add_config_arguments, config_overrides, parse_known, setup_logging
from r3d.config import ConfigError
from r3d.data.errors import DataError
from r3d.engine.tester import checkpoint_config, test


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", "--weights", dest="checkpoint",
                    help="run folder, training-state folder, or .safetensors weights file")
    ap.add_argument("--out", help="metrics JSON path (default: next to the checkpoint, metrics_test*.json)")
    ap.add_argument("--drop-modality", choices=["rgb", "depth"],
                    help="remove this modality for every sample (zeros + presence flag; EBR substitutes it)")
    ap.add_argument("--no-collapse", action="store_true", help="skip collapse diagnostics and reliance")
    ap.add_argument("--export-ek100", metavar="FILE", help="also write an EK100 anticipation challenge JSON (v0.2)")
    add_config_arguments(ap, work_dir=False)
    args = parse_known(ap, argv)
    if args.checkpoint is None:  # `tools/test.py RUN_DIR`: the first positional that is not key=value
        paths = [o for o in args.overrides if "=" not in o]
        if len(paths) != 1:
            ap.error("give the checkpoint: --checkpoint RUN_DIR (or one RUN_DIR positional)")
        args.checkpoint = paths[0]
        args.overrides = [o for o in args.overrides if o != paths[0]]
    setup_logging(verbose=args.verbose)
    try:
        cfg = checkpoint_config(args.checkpoint, args.config, config_overrides(args))
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
