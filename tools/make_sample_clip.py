#!/usr/bin/env python
"""Render the sample RGB-D recording bundled with r3d (r3d/assets/sample/), used by `tools/demo.py --sample`.

    python tools/make_sample_clip.py [--out r3d/assets/sample] [--seconds 12] [--seed 7] [--depth-noise 0]

Writes rgb.mp4 (64×64 mp4v at 8 fps), depth.npz (key `depth`, (T, 64, 64) uint16 millimetres, compressed) and
segments.csv (the rendered cue/response segments: what a model trained on the synthetic benchmark should anticipate),
all from `r3d.data.synthetic.render_recording` with the benchmark's default classes, τa and τo. The output is a
function of the arguments only.
"""
import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from r3d.data.io import PngDepthStore
from r3d.data.synthetic import NOUN_KEYS, VERB_KEYS, render_recording

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "r3d" / "assets" / "sample"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: the package's sample folder)")
    ap.add_argument("--seconds", type=float, default=12.0, help="clip length in seconds (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7, help="renderer seed (default: %(default)s)")
    ap.add_argument("--depth-noise", type=float, default=0.0,
                    help="Kinect-like depth noise 0..1 (holes, jitter); noisy depth compresses badly "
                         "(default: %(default)s)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rgb, depth_dir, segments = render_recording(tmp, seconds=args.seconds, seed=args.seed,
                                                    depth_noise=args.depth_noise, name="sample")
        store = PngDepthStore(depth_dir, depth_scale=0.001)
        raw = np.stack([np.round(d * 1000).astype(np.uint16) for d in store.read(np.arange(store.num_frames))])
        shutil.copyfile(rgb, out / "rgb.mp4")
    np.savez_compressed(out / "depth.npz", depth=raw)
    with open(out / "segments.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "start_s", "stop_s", "verb", "noun"])
        for s in segments:
            w.writerow([s.kind, f"{s.start:.2f}", f"{s.stop:.2f}", VERB_KEYS[s.verb], NOUN_KEYS[s.noun]])
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {out}: {raw.shape[0]} frames of {raw.shape[2]}x{raw.shape[1]}, {len(segments)} segments, "
          f"{size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
