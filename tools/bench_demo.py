#!/usr/bin/env python
"""Benchmark the streaming demo: frames per second, and the cost of a 64-frame versus an 8-frame history.

    python tools/bench_demo.py [--checkpoint RUN_DIR] [--config configs/synthetic.yaml] [--threads 2] [--frames 48]

1. Streaming rate of the model (default: configs/synthetic.yaml with random weights; or --checkpoint): every frame is
   pushed (transform + one backbone pass per modality) and every `stride` frames (the model's sampling spacing) the
   fusion and head run over the window — what tools/demo.py does, without decoding and drawing.
2. End to end on the bundled sample clip: tools/demo.py's `run_demo` with decoding and the overlay video.
3. History cost: the same model built with data.num_frames = 8 and 64 (data.tau_o scaled so the spacing between
   sampled frames stays the same), at the demo's stride and with one prediction per frame (stride 1, the worst
   case). Streaming pays one backbone pass per frame plus the fusion and head over T tokens, so the 64/8 cost ratio
   should stay close to 1; re-encoding the window every step (what a cache-less demo does) costs up to 64/8 = 8 times
   more. These two models have random weights (a checkpoint's head has positions for its own T only).

Timings are the best of --repeats runs (the two histories interleaved); inputs are random frames of the model's input
size (the cost does not depend on the pixels). On a shared machine the figures move with the load, which is printed;
for batch-1 frames one torch thread is often faster than two on a busy machine (compare --threads 1).
"""
import argparse
import os
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder to benchmark (default: random weights of --config)")
    ap.add_argument("--config", default="configs/synthetic.yaml", help="model config without --checkpoint")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=48, help="timed frames per measurement (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per figure, best kept (default: %(default)s)")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the run on the bundled sample clip")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from r3d.config import apply_overrides, load_config
    from r3d.engine.checkpoint import config_from_meta, export_model, load_meta
    from r3d.engine.stream import StreamingAnticipator, run_demo, sample_clip
    from r3d.models.anticipator import Anticipator, count_parameters

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.checkpoint:
        meta = load_meta(args.checkpoint)
        cfg = config_from_meta(meta)
    else:
        cfg = load_config(args.config)
        v, n = int(cfg.synthetic.num_verbs), int(cfg.synthetic.num_nouns)
        actions = [[a, b] for a in range(v) for b in range(n)]
        meta = {"config": cfg.to_dict(), "num_classes": {"verb": v, "noun": n, "action": len(actions)},
                "verb_classes": [str(i) for i in range(v)], "noun_classes": [str(i) for i in range(n)],
                "actions": actions}
    fps = float(cfg.synthetic.fps)
    rng = np.random.default_rng(0)
    size = int(cfg.data.img_size)
    rgb = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 4.0, (16, size, size)).astype(np.float32)

    def build(c):
        model = Anticipator(c, meta["num_classes"], actions=meta["actions"])
        if args.checkpoint and c is cfg:
            from r3d.engine.checkpoint import load_model_weights

            load_model_weights(model, args.checkpoint)
        return StreamingAnticipator(model, c, fps, meta["verb_classes"], meta["noun_classes"], meta["actions"])

    def stream_seconds(engine, frames: int, stride: int) -> float:
        """Seconds for `frames` pushes with a prediction every `stride` frames, after filling one window."""
        engine.reset()
        first = engine.first_ready_frame()
        for k in range(first):
            engine.push(rgb[k % 16], depth[k % 16])
        t0 = time.perf_counter()
        for k in range(first, first + frames):
            engine.push(rgb[k % 16], depth[k % 16])
            if (k - first) % stride == 0:
                engine.predict()
        return time.perf_counter() - t0

    def scratch_seconds(engine, frames: int) -> float:
        """Seconds for `frames` predictions that re-encode the whole window (no cache): model(batch) each step."""
        m, t = engine.model, engine.num_frames
        x = {"rgb": torch.stack([engine.preprocess(rgb[i % 16], None)["rgb"] for i in range(t)])[None],
             "depth": torch.stack([engine.preprocess(None, depth[i % 16])["depth"] for i in range(t)])[None]}
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(frames):
                m(x)
        return time.perf_counter() - t0

    def best(run, warm_up) -> float:
        warm_up()
        return min(run() for _ in range(args.repeats))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    base = build(cfg)
    print(f"model: {'checkpoint ' + args.checkpoint if args.checkpoint else args.config + ' (random weights)'}; "
          f"{count_parameters(base.model) / 1e6:.2f} M parameters, modalities {base.modalities}, "
          f"{cfg.model.rgb_backbone.name} {size}x{size}, T={base.num_frames}, spacing {base.spacing:g} s; "
          f"torch threads {torch.get_num_threads()}, load average {load:.1f}")
    if torch.get_num_threads() > 1 and load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} exceeds the {os.cpu_count()} cores: with several torch threads the "
              f"timings mostly measure waiting for the other processes; compare with --threads 1")
    stride = base.default_stride()
    sec = best(lambda: stream_seconds(base, args.frames, stride), lambda: stream_seconds(base, 4, stride))
    print(f"streaming: {args.frames / sec:.1f} frames/s (one backbone pass per frame and modality, fusion + head "
          f"every {stride} frames; {1000 * sec / args.frames:.1f} ms/frame)")

    if not args.no_end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = args.checkpoint
            if not ckpt:
                ckpt = tmp
                export_model(base.model, meta, tmp)
            rgb_path, depth_path = sample_clip()
            doc = run_demo(ckpt, rgb_path, depth_path, out=None, video=os.path.join(tmp, "overlay.mp4"),
                           progress=False)
            s = doc["summary"]
            print(f"end to end on the bundled clip (decode + overlay video): {s['frames_per_second']:.1f} frames/s "
                  f"({s['frames']} frames, {s['steps']} steps)")

    spacing = base.spacing
    engines = {h: build(apply_overrides(cfg, [f"data.num_frames={h}", f"data.tau_o={h * spacing}"])) for h in (8, 64)}
    n_scratch = max(4, args.frames // 4)
    runs = {h: [] for h in engines}
    for e in engines.values():  # warm-up
        stream_seconds(e, 4, 1), scratch_seconds(e, 1)
    for _ in range(args.repeats):  # interleaved, so that both histories see the same machine load
        for h, e in engines.items():
            runs[h].append([stream_seconds(e, args.frames, stride) / args.frames,
                            stream_seconds(e, args.frames, 1) / args.frames, scratch_seconds(e, n_scratch) / n_scratch])
    cost = {h: [min(r[i] for r in runs[h]) for i in range(3)] for h in runs}
    for h in engines:
        print(f"history {h:2d} frames ({h * spacing:g} s): streaming {1000 * cost[h][0]:.1f} ms/frame "
              f"(stride {stride}), {1000 * cost[h][1]:.1f} ms/step (stride 1); re-encoding the window "
              f"{1000 * cost[h][2]:.1f} ms/step")
    r = [cost[64][i] / cost[8][i] for i in range(3)]
    print(f"cost ratio 64/8-frame history: streaming {r[0]:.2f} per frame at stride {stride}, {r[1]:.2f} with a "
          f"prediction every frame (re-encoding the window every step instead: {r[2]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
