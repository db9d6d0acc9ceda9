#!/usr/bin/env python
"""Run the backbones once and store per-frame tokens, so that training and testing skip decoding and backbones.

    python tools/extract_features.py --config CFG --out DIR [key=value ...]
    python tools/extract_features.py --checkpoint RUN_DIR --out DIR [--config CFG] [key=value ...]
    python tools/train.py --config CFG data.features=DIR model.rgb_backbone.freeze=true \\
        model.depth_backbone.freeze=true [key=value ...]

Tokens (before the model's projection) are computed with the evaluation transform (centre crop, no flip) for every
frame that a window of the extracted splits samples (default: data.train_split and data.val_split; --all-frames: every
frame of those videos), and written as one safetensors shard per video under DIR/shards plus DIR/manifest.json
(backbone names, weight hashes, transform keys, config hash, dtype, r3d version). The backbone weights are those
training starts from (pretrained_file, or the seeded random init), or those of --checkpoint (without --config, its
own config is used). Running it again on the same DIR skips finished videos. Training or testing with
data.features=DIR refuses a cache made by another backbone, weights or transform, naming the manifest key.
"""
import argparse
import json
import logging
import sys

from r3d.cli import add_config_arguments, config_overrides, parse_known, setup_logging
from r3d.config import ConfigError, apply_overrides, load_config
from r3d.data.errors import DataError
from r3d.engine.checkpoint import config_from_meta, load_meta
from r3d.engine.extract import extract_features


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder or model.safetensors whose backbone weights to use")
    ap.add_argument("--out", required=True, help="cache folder (created; resumed when it holds the same tokens)")
    ap.add_argument("--splits", nargs="+", help="annotation splits to cover (default: data.train_split data.val_split)")
    ap.add_argument("--all-frames", action="store_true", help="store every frame, not only those the windows sample")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                    help="stored token type (default: %(default)s; tokens are read back as float32)")
    ap.add_argument("--chunk", type=int, default=64, help="frames per backbone call (default: %(default)s)")
    add_config_arguments(ap, work_dir=False)  # --config: default with --checkpoint is the checkpoint's own config
    args = parse_known(ap, argv)
    setup_logging(verbose=args.verbose, console_level=logging.INFO)  # extraction reports its progress as INFO lines
    overrides = config_overrides(args)
    try:
        if args.config or not args.checkpoint:
            cfg = load_config(args.config, overrides)
        else:
            cfg = apply_overrides(config_from_meta(load_meta(args.checkpoint)), overrides)
        summary = extract_features(cfg, args.out, checkpoint=args.checkpoint, splits=args.splits,
                                   all_frames=args.all_frames, dtype=args.dtype, chunk=args.chunk)
    except (DataError, ConfigError, FileNotFoundError, ValueError) as e:  # bad input: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
