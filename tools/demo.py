#!/usr/bin/env python
"""Streaming next-action anticipation on a recorded RGB-D clip, as if it were live.

    python tools/demo.py --checkpoint RUN_DIR --rgb CLIP.mp4 --depth DEPTH [--out pred.json] [--video overlay.mp4]
                         [--stride S] [--topk 5] [--depth-scale 0.001] [--depth-min M] [--depth-max M] [--depth-fps F]
    python tools/demo.py --sample --video overlay.mp4      # the clip and the checkpoint bundled with r3d
    python tools/demo.py --checkpoint RUN_DIR --rgb RECORDING.mkv   # Azure Kinect / Orbbec MKV or RealSense .bag

Without --checkpoint the checkpoint bundled with r3d is used (r3d/assets/sample/checkpoint: a model trained on the
synthetic benchmark, weights stored in float16 and loaded as float32; see tools/bundle_checkpoint.py).

The clip is read in time order. Every frame goes once through each modality's backbone and its features are kept in
a ring buffer; every S frames (default: the model's sampling spacing, data.tau_o / data.num_frames seconds) the model
anticipates the next action from the observation window that ends at that frame, exactly as in training.

DEPTH is a folder of 16-bit PNGs (millimetres; gaps = dropped frames), a .npz (key `depth`), a .npy, or an FFV1 .mkv.
A sensor recording (k4arecorder .mkv, realsense-viewer .bag) holds both streams: pass it as --rgb and leave out
--depth; its frames are put on a constant-rate clock and paired by the recording's own timestamps, and its depth unit
comes from the file.
RGB and depth at different frame rates (--depth-fps, or the .mkv's own rate) are matched by timestamp; frame count or
rate mismatches are reported. Frames without depth (gaps, depth ended, frames with no valid reading, or no --depth at
all) make their windows depth-missing: the checkpoint's EBR fills depth from RGB when it has EBR, else depth is zeros.
Backbones that mix neighbouring frames (inflated3d) cannot be cached per frame and are re-run over each window.

Depth settings, each from the first source that has it: (1) the --depth-* flag; (2) for the scale and the depth
frame rate, the dataset.yaml of the ROOT the depth lies in (ROOT/depth/<id>); (3) for the scale and the valid range
(depth_min, depth_max), the values the checkpoint was trained with (its model.json); (4) r3d's defaults (0.001 m per
unit, 0.2-4.5 m). The range normalises depth the way training did, so it follows the checkpoint, not the clip.

Writes pred.json: one entry per step with time (s), frame, window frames, the top-k actions (verb, noun, probability),
the effective rank of the window's rgb / depth / fused tokens, and the missing modalities; plus the alignment report
and a summary. --video writes an overlay (RGB | depth colormap, top-k bars, top-1 timeline), one frame per RGB frame.
Exit codes: 0 done, 2 bad input (missing files, a clip shorter than one observation window).
"""
import argparse
import sys

from r3d.cli import setup_logging


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder of tools/train.py, or its model.safetensors (default: the "
                                         "checkpoint bundled with r3d, trained on the synthetic benchmark)")
    ap.add_argument("--rgb", help="colour video (any container decord reads), or a sensor recording (.mkv/.bag)")
    ap.add_argument("--depth", help="PNG16 folder, .npz, .npy or FFV1 .mkv; omit for RGB-only inference (warned)")
    ap.add_argument("--sample", action="store_true", help="use the RGB-D clip bundled with r3d (r3d/assets/sample)")
    ap.add_argument("--out", default="pred.json", help="predictions JSON (default: %(default)s)")
    ap.add_argument("--video", help="also write the overlay video here (.mp4)")
    ap.add_argument("--stride", type=int, help="frames between predictions (default: the model's sampling spacing)")
    ap.add_argument("--topk", type=int, default=5, help="actions listed per prediction (default: %(default)s)")
    ap.add_argument("--depth-scale", type=float,
                    help="metres per depth unit (default: the clip ROOT's dataset.yaml, else the checkpoint's, else "
                         "0.001)")
    ap.add_argument("--depth-min", type=float,
                    help="valid depth range start in metres (default: the checkpoint's, else 0.2)")
    ap.add_argument("--depth-max", type=float,
                    help="valid depth range end in metres (default: the checkpoint's, else 4.5)")
    ap.add_argument("--depth-fps", type=float,
                    help="depth frame rate when it differs from the RGB one (frames are then matched by timestamp)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--verbose", "-v", action="store_true", help="also show INFO logs")
    args = ap.parse_args(argv)
    from r3d.data.errors import DataError  # after parsing, so that --help answers at once
    from r3d.engine.export import bundled_checkpoint
    from r3d.data.clip import sample_clip
    from r3d.engine.demo import ClipTooShort, run_demo

    setup_logging(verbose=args.verbose)
    if args.sample:
        if args.rgb or args.depth:
            ap.error("--sample replaces --rgb/--depth; give one or the other")
        args.rgb, args.depth = map(str, sample_clip())
    if not args.rgb:
        ap.error("--rgb CLIP (or --sample) is required")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        checkpoint = args.checkpoint or bundled_checkpoint()
        doc = run_demo(checkpoint, args.rgb, args.depth, out=args.out, video=args.video, stride=args.stride,
                       topk=args.topk, depth_scale=args.depth_scale, depth_min=args.depth_min,
                       depth_max=args.depth_max, depth_fps=args.depth_fps,
                       progress=not args.no_progress, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    except (ClipTooShort, DataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = doc["summary"]
    outputs = ", ".join(p for p in (s["out"], s["video"]) if p)
    print(f"{s['frames']} frames, {s['steps']} steps, {s['frames_per_second']:.1f} frames/s; wrote {outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
