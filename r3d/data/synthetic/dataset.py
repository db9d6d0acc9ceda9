"""Writing the synthetic benchmark into a dataset folder, reusing a folder already written with the same parameters.

Output: ``videos/<id>.mp4`` (mp4v), ``depth/<id>/%06d.png`` (uint16 mm), ``annotations/{train,val,verb_classes,
noun_classes,actions}.csv`` and ``dataset.yaml`` (depth facts, fps and a ``synthetic:`` block with every generator
parameter). Output is a function of the parameters only: video i (id ``v%04d``) is `plan_video` + `render_frames`
with its own generator ``np.random.default_rng([seed, i])``, so the worker count does not matter, and the CSVs, PNGs
and mp4s are byte-identical across runs. The val videos are a seeded choice.
"""
from __future__ import annotations

import csv
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from .clip import write_clip
from .modes import DEFAULT_MODE, get_mode
from .plan import CUE_MARGIN, RESPONSE_SECONDS, RenderedSegment, plan_video
from .render import DEPTH_MAX, DEPTH_MIN, render_frames
from .rule import NOUN_KEYS, RULE, VERB_KEYS, check_rule

PathLike = Union[str, os.PathLike]

GENERATOR = "r3d.data.synthetic"
GENERATOR_VERSION = 1  # bump when the rendering changes, so that older outputs are regenerated rather than reused

ANNOTATION_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                      "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                      "noun_class", "all_nouns", "all_noun_classes")


def _timestamp(cs: int) -> str:
    """Centiseconds -> ``HH:MM:SS.ss``."""
    return f"{cs // 360000:02d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _video_job(job: Tuple[int, Dict[str, Any], str]) -> Tuple[int, int, List[RenderedSegment]]:
    """Plan, render and write video `index`; returns (index, frames, segments)."""
    index, p, root = job
    cv2.setNumThreads(1)
    rng = np.random.default_rng([p["seed"], index])
    segments = plan_video(rng, p["pairs_per_video"], p["num_verbs"], p["num_nouns"], p["fps"], p["tau_a"], p["tau_o"])
    n = segments[-1].stop_frame + 1
    rgb, depth = render_frames(segments, n, fps=p["fps"], size=p["size"], depth_noise=p["depth_noise"], rng=rng,
                               mode=p.get("mode", DEFAULT_MODE), num_verbs=p["num_verbs"])
    write_clip(Path(root), _video_id(index), rgb, depth, p["fps"])
    return index, n, segments


def _video_id(index: int) -> str:
    return f"v{index:04d}"


def _annotation_rows(index: int, segments: Sequence[RenderedSegment]) -> List[List[Any]]:
    rows = []
    responses = [s for s in segments if s.kind == "response"]
    for i, s in enumerate(responses):
        verb, noun = VERB_KEYS[s.verb], NOUN_KEYS[s.noun]
        start = _timestamp(s.start_cs)
        rows.append([f"{_video_id(index)}_{i}", f"P{index % 8 + 1:02d}", _video_id(index), start, start,
                     _timestamp(s.stop_cs), s.start_frame, s.stop_frame, f"{verb} {noun}", verb, s.verb, noun, s.noun,
                     f"['{noun}']", f"[{s.noun}]"])
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _check_params(p: Mapping[str, Any]) -> None:
    check_rule(p["num_verbs"], p["num_nouns"])
    get_mode(p.get("mode", DEFAULT_MODE))
    checks = [
        ("videos", p["videos"] >= 1, "at least 1"),
        ("val_fraction", 0 <= p["val_fraction"] < 1, "in [0, 1)"),
        ("pairs_per_video", p["pairs_per_video"] >= 1, "at least 1"),
        ("fps", p["fps"] > 0, "positive"),
        ("size", p["size"] >= 16 and p["size"] % 2 == 0, "an even number of pixels >= 16"),
        ("depth_noise", 0 <= p["depth_noise"] <= 1, "in [0, 1]"),
        ("tau_a", p["tau_a"] >= 0, "non-negative"),
        ("tau_o", p["tau_o"] >= 0, "non-negative"),
        ("seed", p["seed"] >= 0, "a non-negative integer"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ValueError(f"synthetic {key} = {p[key]!r} must be {what}")


def _params(mode: str, **kw: Any) -> Dict[str, Any]:
    """The generator parameters as written to dataset.yaml (plain types, fixed order). The mode is written only when
    it is not the default, so a complementary folder's block is the one written before there were modes."""
    ints = ("videos", "pairs_per_video", "num_verbs", "num_nouns", "size", "seed")
    p: Dict[str, Any] = {"generator": GENERATOR, "version": GENERATOR_VERSION}
    if mode != DEFAULT_MODE:
        p["mode"] = str(mode)
    for key, value in kw.items():
        p[key] = int(value) if key in ints else float(value)
    _check_params(p)
    p.update(rule=RULE, cue_seconds=[p["tau_a"] + p["tau_o"] + m for m in CUE_MARGIN],
             response_seconds=list(RESPONSE_SECONDS))
    return p


def read_synthetic_params(root: PathLike) -> Optional[Dict[str, Any]]:
    """The ``synthetic:`` block of ROOT/dataset.yaml when ROOT was written by this generator, else None."""
    p = Path(root) / "dataset.yaml"
    if not p.is_file():
        return None
    try:
        meta = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        return None
    block = meta.get("synthetic") if isinstance(meta, Mapping) else None
    if isinstance(block, Mapping) and block.get("generator") == GENERATOR:
        return dict(block)
    return None


def _complete(root: Path) -> bool:
    return all((root / "annotations" / f).is_file() for f in ("train.csv", "val.csv", "actions.csv"))


def _summary_of(root: Path, seconds: float, reused: bool) -> Dict[str, Any]:
    """Counts read back from a written ROOT."""
    def rows(name: str) -> List[Dict[str, str]]:
        with open(root / "annotations" / name, newline="") as f:
            return list(csv.DictReader(f))

    train, val = rows("train.csv"), rows("val.csv")
    videos = sorted(p.stem for p in (root / "videos").glob("*.mp4"))
    frames = sum(len(os.listdir(root / "depth" / v)) for v in videos)
    return {"root": str(root), "videos": len(videos), "train_videos": len({r["video_id"] for r in train}),
            "val_videos": len({r["video_id"] for r in val}), "frames": frames, "train_segments": len(train),
            "val_segments": len(val), "seconds": round(seconds, 2), "reused": reused}


def generate(root: PathLike, *, videos: int = 160, val_fraction: float = 0.25, pairs_per_video: int = 6,
             num_verbs: int = 4, num_nouns: int = 4, fps: float = 8.0, size: int = 64, depth_noise: float = 0.0,
             seed: int = 0, tau_a: float = 1.0, tau_o: float = 2.0, mode: str = DEFAULT_MODE, workers: int = 2,
             progress: bool = True) -> Dict[str, Any]:
    """Render the synthetic benchmark into `root` (layout in the module docstring, design in the package's).

    Defaults are those of ``synthetic.*`` in r3d/defaults.yaml. A `root` that already holds this generator's complete
    output with the same parameters is reused; one with other parameters is regenerated (only videos/, depth/,
    annotations/ and dataset.yaml are removed). Any other non-empty `root` is refused.

    Args:
        root: output folder. videos: number of videos. val_fraction: fraction of the videos (seeded choice) in val.
        pairs_per_video: (cue, response) pairs per video. num_verbs / num_nouns: V and N. fps: frame rate.
        size: frame width = height. depth_noise: 0 (clean) … 1 (heavy). seed: generator seed.
        tau_a / tau_o: anticipation gap and observed window (s) that every cue must cover.
        mode: what each stream shows, a name in `MODES` ("complementary" or "redundant").
        workers: processes rendering videos (the output does not depend on it). progress: show a tqdm bar.
    Returns:
        dict with root, videos, train_videos, val_videos, frames, train_segments, val_segments, seconds, reused.
    Raises:
        FileExistsError: `root` is not empty and not a previous synthetic output.
        ValueError: a parameter is out of range, or the rule is not a bijection for num_verbs / num_nouns.
    """
    began = time.perf_counter()
    root = Path(root)
    params = _params(mode, seed=seed, videos=videos, val_fraction=val_fraction, pairs_per_video=pairs_per_video,
                     num_verbs=num_verbs, num_nouns=num_nouns, fps=fps, size=size, depth_noise=depth_noise,
                     tau_a=tau_a, tau_o=tau_o)
    if root.exists() and any(root.iterdir()):
        previous = read_synthetic_params(root)
        if previous is None:
            raise FileExistsError(f"{root}: not empty and not a synthetic r3d dataset (no dataset.yaml with a "
                                  f"'synthetic' block from {GENERATOR}); pick an empty or new folder, or remove it")
        if previous == params and _complete(root):
            return _summary_of(root, time.perf_counter() - began, reused=True)
        for sub in ("videos", "depth", "annotations"):
            shutil.rmtree(root / sub, ignore_errors=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    meta = {"name": "r3d-synthetic", "depth_scale": 0.001, "depth_min": DEPTH_MIN, "depth_max": DEPTH_MAX,
            "fps": params["fps"], "synthetic": params}
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))  # first: marks the folder as ours

    jobs = [(i, params, str(root)) for i in range(videos)]
    results: List[Tuple[int, int, List[RenderedSegment]]] = []
    bar = tqdm(total=videos, desc="synthetic videos", unit="video", disable=not progress)
    if workers > 1 and videos > 1:
        with mp.get_context("spawn").Pool(min(workers, videos)) as pool:
            for res in pool.imap_unordered(_video_job, jobs):
                results.append(res)
                bar.update()
    else:
        for job in jobs:
            results.append(_video_job(job))
            bar.update()
    bar.close()
    results.sort(key=lambda r: r[0])

    num_val = int(round(videos * val_fraction))
    if val_fraction > 0 and videos >= 2:
        num_val = min(max(num_val, 1), videos - 1)
    val_ids = set(np.random.default_rng([int(seed), videos]).permutation(videos)[:num_val].tolist())
    ann = root / "annotations"
    for split, chosen in (("train", False), ("val", True)):
        rows = [row for i, _, segs in results if (i in val_ids) == chosen for row in _annotation_rows(i, segs)]
        _write_csv(ann / f"{split}.csv", ANNOTATION_COLUMNS, rows)
    _write_csv(ann / "verb_classes.csv", ("id", "key"), list(enumerate(VERB_KEYS[:num_verbs])))
    _write_csv(ann / "noun_classes.csv", ("id", "key"), list(enumerate(NOUN_KEYS[:num_nouns])))
    pairs = [(v, n) for v in range(num_verbs) for n in range(num_nouns)]
    _write_csv(ann / "actions.csv", ("id", "verb", "noun"), [(a, v, n) for a, (v, n) in enumerate(pairs)])  # last
    return _summary_of(root, time.perf_counter() - began, reused=False)


def ensure_synthetic(root: PathLike, cfg: Mapping) -> bool:
    """Generate the benchmark into `root` from an r3d Config (``synthetic.*``, ``data.tau_a/tau_o``) unless
    ``root/annotations/train.csv`` exists. Returns True when it generated.

    Raises:
        ValueError: `root` holds this generator's output in another mode than ``synthetic.mode``.
    """
    s, d = cfg["synthetic"], cfg["data"]
    if (Path(root) / "annotations" / "train.csv").is_file():
        previous = read_synthetic_params(root)
        found = previous.get("mode", DEFAULT_MODE) if previous is not None else s["mode"]
        if found != s["mode"]:
            raise ValueError(f"{root}: holds the synthetic benchmark in mode '{found}', but synthetic.mode = "
                             f"'{s['mode']}'; set data.root to another folder (or remove this one)")
        return False
    generate(root, videos=s["videos"], val_fraction=s["val_fraction"], pairs_per_video=s["pairs_per_video"],
             num_verbs=s["num_verbs"], num_nouns=s["num_nouns"], fps=s["fps"], size=s["size"],
             depth_noise=s["depth_noise"], seed=s["seed"], tau_a=d["tau_a"], tau_o=d["tau_o"], mode=s["mode"])
    return True

