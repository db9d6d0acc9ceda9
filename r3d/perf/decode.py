"""P5 (issue #9): RGB decode rate through the loader against the decoder's own sequential rate on the same file.

A (the loader): every training sample's window of a video read the way `AnticipationDataset.__getitem__` reads it
(`DatasetInfo.read_rgb` -> `r3d.data.io.read_rgb_frames`: open the file, one sorted batched decord `get_batch` of the
window's frames), counted in delivered frames per second. B (the floor): `ffmpeg -f null` decode of the whole file
when an ffmpeg binary is installed, else decord's own sequential `get_batch` of all frames, in frames per second.
Videos alternate A and B (`timing.interleaved`, one round per video and repetition); the figure is the median paired
ratio rate_A / rate_B. The detail also gives the loader path reading the whole file in one call ("dense"), which
separates the decoder's speed from the cost of random access, and the loader path with decord's `num_threads=1`
("one_thread", r3d's setting before issue #9; see `r3d.data.io.DECODE_THREADS`).

Why A sits below B on the benchmark's clips: a window is 8 frames spread over 2 s (every 2nd frame at 8 fps), inside
an mp4v stream with a keyframe every 12 frames, so each window decodes from the keyframe before it (~1.5–2.5 decoded
frames per delivered frame), and each read opens the file and seeks (~2 ms against ~0.07 ms to decode a 64×64 frame).
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..config import Config
from .common import dataset_root
from .timing import Figure, Measured, interleaved, paired_ratio

TARGET = 0.7


def sequential_rate(path: Path, num_frames: int, ffmpeg: Optional[str]) -> float:
    """Frames per second of decoding the whole file: `ffmpeg -f null` when `ffmpeg` is a binary path, else decord's
    sequential `get_batch` of every frame (through `read_rgb_frames`, so widths decord2 cannot read fall back to
    PyAV)."""
    t0 = time.perf_counter()
    if ffmpeg:
        subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"], check=True,
                       stdout=subprocess.DEVNULL)
    else:  # the loader's reader on every frame: one sequential decord get_batch (PyAV where decord2 fails)
        from ..data.io import read_rgb_frames

        read_rgb_frames(path, np.arange(num_frames))
    return num_frames / (time.perf_counter() - t0)


def measure(cfg: Config, quick: bool = True, repeats: Optional[int] = None, workdir: Optional[str] = None) -> Figure:
    """P5: frames/s delivered by the loader's RGB reads vs the sequential decode floor of the same files (≥ 0.7x)."""
    from ..data.dataset import AnticipationDataset
    from ..data.io import read_rgb_frames

    reps = int(repeats or (2 if quick else 3))
    nvid = 4 if quick else 10
    ffmpeg = shutil.which("ffmpeg")
    with dataset_root(cfg, workdir=workdir) as c:
        ds = AnticipationDataset(c, c.data.train_split, train=False)
        windows: Dict[str, List[np.ndarray]] = {}
        for item in ds.items:
            windows.setdefault(item.segment.video_id, []).append(item.frame_idx)
        vids = sorted(windows)[:nvid]
        info = {v: ds._probe(v) for v in vids}
        fns = {}
        for v in vids:
            path = Path(ds.info.video_path(v))
            n_del = sum(len(w) for w in windows[v])

            def loader(v=v, n=n_del) -> Measured:
                t0 = time.perf_counter()
                for w in windows[v]:
                    ds.info.read_rgb(v, w)
                return Measured(n / (time.perf_counter() - t0))

            def one_thread(v=v, path=path, n=n_del) -> Measured:  # decord num_threads=1: the setting before #9
                t0 = time.perf_counter()
                for w in windows[v]:
                    read_rgb_frames(path, w, num_threads=1)
                return Measured(n / (time.perf_counter() - t0))

            def dense(path=path, n=info[v].num_frames) -> Measured:
                t0 = time.perf_counter()
                read_rgb_frames(path, np.arange(n))
                return Measured(n / (time.perf_counter() - t0))

            fns[f"{v}/loader"] = loader
            fns[f"{v}/dense"] = dense
            fns[f"{v}/one_thread"] = one_thread
            fns[f"{v}/floor"] = lambda path=path, n=info[v].num_frames: Measured(sequential_rate(path, n, ffmpeg))
        s = interleaved(fns, reps, warmup=1).samples
    pick = lambda kind: [x for v in vids for x in s[f"{v}/{kind}"]]  # noqa: E731  (rounds of all videos, paired)
    floor = "ffmpeg -f null" if ffmpeg else "decord sequential"
    return Figure(
        id="P5", what=f"RGB frames/s, loader reads vs {floor}",
        value=paired_ratio(pick("loader"), pick("floor")), target=TARGET, better=">=", unit="x",
        detail={"median_fps": {k: round(statistics.median(pick(k)), 1)
                               for k in ("loader", "one_thread", "dense", "floor")},
                "dense_ratio": round(paired_ratio(pick("dense"), pick("floor")), 3),
                "one_thread_ratio": round(paired_ratio(pick("one_thread"), pick("floor")), 3),
                "windows_per_video": round(statistics.mean(len(windows[v]) for v in vids), 1),
                "frames_per_window": int(c.data.num_frames), "videos": len(vids), "rounds": reps, "floor": floor,
                "video_size": f"{info[vids[0]].width}x{info[vids[0]].height}", "root": str(c.data.root)})
