#!/usr/bin/env python
"""Convert a native RGB-D recording into r3d's folder layout (to annotate it and train from the folder).

    python tools/convert_recording.py IN OUT_ROOT [--video-id ID] [--fps F] [--depth-scale S] [--overwrite]

IN is an Azure Kinect / Orbbec Femto .mkv (k4arecorder) or an Intel RealSense .bag (realsense-viewer). Writes, under
OUT_ROOT: videos/ID.mp4 (H.264), depth/ID/000000.png ... (16-bit, one per video frame: the depth frame nearest in
time to that colour frame), dataset.yaml (when absent: fps, depth_scale, depth_min/depth_max) and, when absent,
header-only annotations/train.csv, val.csv, verb_classes.csv, noun_classes.csv to fill in. Existing annotation files
and an existing dataset.yaml are never changed; run it once per recording into the same OUT_ROOT.

Frame k of the output is at k / F seconds and shows the colour frame nearest that time, so dropped frames repeat a
neighbour. Depth keeps the ROOT's unit (dataset.yaml depth_scale, else millimetres): millimetre recordings are copied
bit for bit. Prints what was written, how colour and depth were paired, and anything to check. Exit codes: 0 done,
2 unreadable recording or refused output (one line naming the file and the reason).
"""
import argparse
import json
import logging
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="recording: .mkv (Azure Kinect / Orbbec Femto) or .bag (Intel RealSense)")
    ap.add_argument("out_root", help="dataset ROOT to write into (created if missing; may hold other videos)")
    ap.add_argument("--video-id", help="video id (file stem) to write (default: the recording's file stem)")
    ap.add_argument("--fps", type=float, help="output frame rate (default: OUT_ROOT/dataset.yaml fps, else the "
                                              "recording's colour rate)")
    ap.add_argument("--depth-scale", type=float, help="metres per depth unit of the recording, if it says wrongly "
                                                      "or nothing (default: what the file says, else 0.001)")
    ap.add_argument("--tolerance", type=float, help="largest colour/depth time difference paired, seconds "
                                                    "(default: half the longer frame period)")
    ap.add_argument("--crf", type=int, default=17, help="x264 quality, lower is better (default: %(default)s)")
    ap.add_argument("--overwrite", action="store_true", help="replace this video id's existing video and depth")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    from r3d.data.errors import DataError
    from r3d.data.recordings.convert import convert_recording

    try:
        res = convert_recording(args.input, args.out_root, video_id=args.video_id, fps=args.fps,
                                depth_scale=args.depth_scale, tolerance=args.tolerance, overwrite=args.overwrite,
                                crf=args.crf, progress=sys.stderr.isatty())
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
        return 0
    src, pair = res.source, res.source["pairing"]
    print(f"{src['path']} ({src['kind']}): {src['num_frames']} colour frames at {src['fps']:g} fps" if src["has_rgb"]
          else f"{src['path']} ({src['kind']}): depth only, {src['num_frames']} frames at {src['fps']:g} fps")
    print(f"  depth: {src['depth_frames']} frames at {src['depth_fps']:g} fps, {src['depth_scale']} m/unit "
          f"({src['depth_scale_source']}); paired on {src['clock']}: {pair['matched_frames']} pairs within "
          f"{pair['tolerance_s'] * 1000:.1f} ms (largest offset {pair['max_offset_s'] * 1000:.1f} ms), "
          f"{pair['unmatched_frames']} frames without depth, {pair['unused_depth_frames']} depth frames unused")
    print(f"wrote {res.frames} frames at {res.fps:g} fps as '{res.video_id}': {res.video or '(no video)'}, "
          f"{res.depth}/ ({'exact copy' if res.depth_exact else 'rescaled'} to {res.depth_scale} m/unit)")
    if res.repeated_frames or res.unused_frames:
        print(f"  {res.repeated_frames} output frames repeat a colour frame, {res.unused_frames} colour frames unused")
    if res.depth_percentiles_m:
        lo, hi = res.depth_percentiles_m
        print(f"  valid depth readings span {lo:.2f}-{hi:.2f} m (0.1-99.9 percentile)")
    print(f"dataset.yaml {res.dataset_yaml}; templates created: {', '.join(res.templates) or 'none (kept yours)'}")
    for note in res.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
