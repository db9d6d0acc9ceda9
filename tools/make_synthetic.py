#!/usr/bin/env python
"""Render the embedded synthetic RGB-D anticipation benchmark into a folder (the folder format of docs/data.md).

    python tools/make_synthetic.py --out data/synthetic [--mode redundant] [--videos 160] [--seed 0] [--depth-noise 0.5]

Each video is a series of (random cue, rule-determined response) pairs; only responses are annotated. An object's
colour shows the cue's noun in RGB and its motion toward/away from the camera the cue's verb in depth.
--mode complementary (default): that is all, so an RGB-D model can anticipate the response while RGB-only and
depth-only models are capped near 1/V and 1/N. --mode redundant: each stream also shows the other half of the cue
(RGB: the verb as the grey level of the object's core; depth: the noun as the silhouette of a body behind the object,
invisible in RGB), so either stream alone determines the response and a fused model can learn to ignore depth
(r3d/data/synthetic/). Defaults are those of `synthetic.*` in r3d/defaults.yaml. Re-running with the same flags reuses
the folder; other flags regenerate it; a non-empty folder that is not a synthetic output is refused.
"""
import argparse
import json
import sys

from r3d.config import load_defaults
from r3d.data.synthetic import MODES, generate


def main(argv=None) -> int:
    d = load_defaults()
    s = d.synthetic
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (the dataset ROOT; created if missing)")
    ap.add_argument("--mode", choices=list(MODES), default=s.mode,
                    help="what each stream shows: " + "; ".join(f"{m.name}: {m.summary}" for m in MODES.values())
                         + " (default: %(default)s)")
    ap.add_argument("--videos", type=int, default=s.videos, help="number of videos (default: %(default)s)")
    ap.add_argument("--val-fraction", type=float, default=s.val_fraction,
                    help="fraction of the videos listed in val.csv, the rest in train.csv (default: %(default)s)")
    ap.add_argument("--pairs-per-video", type=int, default=s.pairs_per_video,
                    help="cue/response pairs per video; each pair gives one annotated segment (default: %(default)s)")
    ap.add_argument("--num-verbs", type=int, default=s.num_verbs,
                    help="verb classes, shown in depth as motions (push, pull, tap, toss, shake, hold) and in "
                         "redundant mode also in RGB as grey levels (default: %(default)s)")
    ap.add_argument("--num-nouns", type=int, default=s.num_nouns,
                    help="noun classes, shown in RGB as object colours (red, green, blue, yellow, ...) and in "
                         "redundant mode also in depth as silhouettes (square, plus, hbar, vbar, ...; "
                         "default: %(default)s)")
    ap.add_argument("--fps", type=float, default=s.fps, help="frame rate of RGB and depth (default: %(default)s)")
    ap.add_argument("--size", type=int, default=s.size,
                    help="frame width and height in pixels, even, >= 16 (default: %(default)s)")
    ap.add_argument("--depth-noise", type=float, default=s.depth_noise,
                    help="Kinect-like depth noise, 0 = clean ... 1 = heavy: gaussian, quantisation, holes "
                         "(default: %(default)s)")
    ap.add_argument("--seed", type=int, default=s.seed,
                    help="generator seed; the same seed gives the same bytes (default: %(default)s)")
    ap.add_argument("--tau-a", type=float, default=d.data.tau_a,
                    help="anticipation gap (s) the cues are laid out for (default: data.tau_a = %(default)s)")
    ap.add_argument("--tau-o", type=float, default=d.data.tau_o,
                    help="observed window (s) every cue covers (default: data.tau_o = %(default)s)")
    ap.add_argument("--workers", type=int, default=2,
                    help="processes rendering videos; does not change the output (default: %(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        summary = generate(args.out, videos=args.videos, val_fraction=args.val_fraction,
                           pairs_per_video=args.pairs_per_video, num_verbs=args.num_verbs, num_nouns=args.num_nouns,
                           fps=args.fps, size=args.size, depth_noise=args.depth_noise, seed=args.seed,
                           tau_a=args.tau_a, tau_o=args.tau_o, mode=args.mode, workers=args.workers,
                           progress=not args.quiet)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
