"""Up-front dataset checks: every problem the loaders would stop on (or quietly work around) later, found in one pass.

`validate_root(root, cfg)` reads a ROOT laid out as DATA-FORMAT.md (or any registered `data.format`) the way the
dataset will, but does not stop at the first problem: each check records findings and the report prints as one table
(`tools/validate_data.py ROOT`). Findings are errors (training would stop with this `DataError`, or silently use a
wrong frame), warnings (training works, but not as you may expect: missing depth, NaN depth read as holes) or info.

The checks reuse the readers of `r3d.data` (so the messages are the ones training would print) and add the checks that
only make sense up front, because they cost a pass over every file:

- layout: ROOT/annotations (and videos/, depth/) exist.
- dataset.yaml: known keys, numbers, depth_min < depth_max.
- classes: verb/noun class lists (ids 0..n-1), actions.csv.
- annotations: every split CSV: header, timestamps, class ids, stop >= start, unique narration ids, not empty.
- narration ids: a narration id used in two splits (train/val leakage).
- videos: each annotated video exists, is not empty, opens, and its *last* frame decodes.
- frame timing: decord's frame count and fps agree with the container's frame count and duration (truncated or
  mis-muxed files) and with every frame's timestamp (variable frame rate); otherwise annotation times select the
  wrong frames.
- depth store: depth exists for each video (missing = the modality is absent), the store opens, no frame is missing.
- depth frames: as many depth frames as RGB frames (unless dataset.yaml gives depth_fps).
- depth values: 16-bit single-channel PNGs (the header of every frame), readable first/last frames, non-finite
  values in float arrays.
- segments: each segment starts inside its video; how many windows reach before the video (padded or skipped).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .annotations import Segment, read_classes, read_segments
from .errors import DataError
from .formats import DatasetInfo, read_actions, read_dataset_yaml, resolve_depth
from .io import DepthStore, PngDepthStore, VideoInfo, open_depth, probe_video, read_png16, read_rgb_frames
from .protocols import BEFORE_START, PADDED, UNOBSERVABLE, next_action_window

PathLike = Union[str, os.PathLike]

ERROR, WARNING, INFO = "error", "warning", "info"
CHECKS: Tuple[Tuple[str, str], ...] = (
    ("layout", "ROOT has annotations/, videos/, depth/"),
    ("dataset.yaml", "known keys; depth scale and range"),
    ("classes", "verb/noun class lists, actions.csv"),
    ("annotations", "split CSVs: columns, times, class ids"),
    ("narration ids", "unique across splits"),
    ("videos", "exist, open, last frame decodes"),
    ("frame timing", "frame count, fps, duration, timestamps agree"),
    ("depth store", "depth present and readable"),
    ("depth frames", "one depth frame per RGB frame"),
    ("depth values", "16-bit 1-channel PNG, finite values"),
    ("segments", "segments start inside their video"),
)
CLASS_FILES = ("verb_classes.csv", "noun_classes.csv", "actions.csv")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


@dataclass
class Finding:
    """One problem: `where` names the file (and row), `message` is one line that says what to fix."""

    check: str
    level: str
    where: str
    message: str


@dataclass
class CheckResult:
    """What one check looked at (`checked` items) and what it found."""

    name: str
    description: str
    checked: int = 0
    findings: List[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        levels = {f.level for f in self.findings}
        if ERROR in levels:
            return "ERROR"
        if WARNING in levels:
            return "warn"
        return "ok" if self.checked else "-"


@dataclass
class ValidationReport:
    """All check results of one ROOT, in the order of `CHECKS`."""

    root: Path
    checks: Dict[str, CheckResult]
    stats: Dict[str, Any] = field(default_factory=dict)

    def findings(self, level: Optional[str] = None) -> List[Finding]:
        return [f for c in self.checks.values() for f in c.findings if level is None or f.level == level]

    @property
    def errors(self) -> List[Finding]:
        return self.findings(ERROR)

    @property
    def warnings(self) -> List[Finding]:
        return self.findings(WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def table(self, width: int = 110, details: int = 5) -> str:
        """The summary table (one row per check), then up to `details` findings per check."""
        rows = [("check", "status", "checked", "errors", "warnings", "what")]
        for c in self.checks.values():
            n_err = sum(f.level == ERROR for f in c.findings)
            n_warn = sum(f.level == WARNING for f in c.findings)
            rows.append((c.name, c.status, str(c.checked), str(n_err), str(n_warn), c.description))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"dataset {self.root}"]
        for i, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        for c in self.checks.values():
            shown = [f for f in c.findings if f.level != INFO][:details]
            if not shown:
                continue
            lines.append("")
            lines.append(f"{c.name}:")
            for f in shown:
                text = f"  {f.level.upper()}: {f.message}"
                lines.append(text if len(text) <= width * 3 else text[: width * 3 - 3] + "...")
            more = sum(f.level != INFO for f in c.findings) - len(shown)
            if more > 0:
                lines.append(f"  ... and {more} more")
        info = [f for c in self.checks.values() for f in c.findings if f.level == INFO]
        if info:
            lines.append("")
            lines.extend(f"info: {f.message}" for f in info)
        n_err, n_warn = len(self.errors), len(self.warnings)
        lines.append("")
        lines.append(f"{n_err} error(s), {n_warn} warning(s)" + ("" if n_err else ": the dataset can be trained on"))
        return "\n".join(lines)


class _Checker:
    """Runs the checks of `validate_root`, collecting findings instead of stopping at the first problem."""

    def __init__(self, root: Path, cfg: Optional[Mapping], full: bool) -> None:
        self.root, self.cfg, self.full = root, cfg, full
        self.results = {name: CheckResult(name, desc) for name, desc in CHECKS}

    def add(self, check: str, level: str, where: PathLike, message: str) -> None:
        self.results[check].findings.append(Finding(check, level, str(where), message))

    def count(self, check: str, n: int = 1) -> None:
        self.results[check].checked += n

    def guard(self, check: str, fn, *args, **kwargs):
        """fn(*args) with a DataError recorded as an error of `check` (returns None then)."""
        try:
            return fn(*args, **kwargs)
        except DataError as e:
            self.add(check, ERROR, _where_of(e), str(e))
            return None


def _where_of(e: Exception) -> str:
    return str(e).split(": ", 1)[0]


def _data_cfg(cfg: Optional[Mapping], key: str, default: Any) -> Any:
    if cfg is None:
        return default
    return cfg.get("data", {}).get(key, default)


def png_header(path: PathLike) -> Tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, without decoding; DataError if not a PNG."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DataError(f"{p}: not a PNG file (bad signature or header); re-write it as a 16-bit PNG "
                        f"(r3d.data.io.write_depth_png16)")
    width, height = struct.unpack(">II", head[16:24])
    return width, height, head[24], head[25]


def png_frame_problem(path: PathLike) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """(one-line problem or None, (width, height) or None) of one depth PNG, from its IHDR header only (no decoding):
    unreadable, not a PNG, or not 16-bit single-channel. Shared by the validator and `data.on_bad_sample=skip`."""
    p = Path(path)
    try:
        w, h, bits, color = png_header(p)
    except DataError as e:
        return str(e), None
    except OSError as e:
        return f"{p}: cannot be read ({e}); re-write it", None
    if bits != 16 or color != 0:
        kind = PNG_COLOR_TYPES.get(color, f"colour type {color}")
        return (f"{p}: {bits}-bit {kind} PNG where a 16-bit single-channel depth PNG is expected (8-bit cannot hold "
                f"depth units); save uint16 depth (r3d.data.io.write_depth_png16)"), (w, h)
    return None, (w, h)


def check_png_frames(store: PngDepthStore) -> List[Tuple[Path, str]]:
    """(path, message) for every frame of a PNG depth folder that is not a 16-bit single-channel PNG (headers only)."""
    bad = []
    sizes: Dict[Tuple[int, int], Path] = {}
    for i in range(store.num_frames):
        p = store.frame_path(i)
        problem, size = png_frame_problem(p)
        if problem is not None:
            bad.append((p, problem))
        if size is not None:
            sizes.setdefault(size, p)
    if len(sizes) > 1:
        (s0, p0), (s1, p1) = list(sizes.items())[:2]
        bad.append((p1, f"{p1}: depth frame is {s1[0]}x{s1[1]} but {p0.name} is {s0[0]}x{s0[1]}; re-export the "
                        f"folder at one resolution"))
    return bad


def container_problem(path: PathLike, num_frames: int, fps: float) -> Optional[str]:
    """A one-line problem when the container's own frame count or duration (PyAV) disagrees with what decord indexes
    (`num_frames` at `fps`) — a truncated or mis-muxed file — else None. Containers that do not store a frame count
    (0) or duration are not judged."""
    import av

    p = Path(path)
    try:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            declared = int(s.frames or 0)
            duration = float(s.duration * s.time_base) if s.duration and s.time_base else None
    except Exception:  # decord opened it; PyAV may not (exotic containers): nothing to compare
        return None
    if declared > 0 and declared != num_frames:
        return (f"{p}: the container header declares {declared} frames but decord finds {num_frames}; the file is "
                f"truncated or mis-muxed: copy it again or re-encode it")
    if duration is not None and abs(duration - num_frames / fps) > 1.5 / fps:
        return (f"{p}: the stream lasts {duration:.3f} s but decord reports {num_frames} frames at {fps:.4g} fps "
                f"= {num_frames / fps:.3f} s; frame count and fps are inconsistent, so annotation times would select "
                f"the wrong frames: re-encode at a constant rate, e.g. `ffmpeg -i in -vsync cfr -r "
                f"{round(fps) or 1} out.mp4`")
    return None


def frame_timing_problem(path: PathLike, tolerance: float = 0.5) -> Optional[str]:
    """A one-line problem when decord's frame count and fps disagree with the frame timestamps, else None.

    r3d maps a time t to frame floor(t · fps), which is right only when frame k is shown at k / fps. Frame k's
    timestamp (decord `get_frame_timestamp`) must be within `tolerance` frames of that, and the last frame must end
    where `num_frames / fps` says the video ends.
    """
    import decord  # lazily, after cv2 (see r3d.data.io)

    p = Path(path)
    vr = decord.VideoReader(str(p), num_threads=1)
    n, fps = len(vr), float(vr.get_avg_fps())
    if n < 2 or not fps > 0:
        return None
    ts = np.asarray(vr.get_frame_timestamp(list(range(n))), dtype=np.float64)[:, 0]
    expected = ts[0] + np.arange(n) / fps
    dev = np.abs(ts - expected)
    k = int(dev.argmax())
    if dev[k] > tolerance / fps:
        return (f"{p}: decord reports {n} frames at {fps:.4g} fps, so frame {k} should be at {expected[k] - ts[0]:.3f}"
                f" s, but its timestamp is {ts[k] - ts[0]:.3f} s (variable frame rate or a wrong frame count); "
                f"annotation times would select the wrong frames: re-encode at a constant rate, e.g. "
                f"`ffmpeg -i in -vsync cfr -r {round(fps) or 1} out.mp4`")
    return None


def video_timing_problem(path: PathLike, probe: VideoInfo) -> Optional[str]:
    """The one-line 'frame timing' problem of a video decord opened (`probe`), or None: the container's frame count
    and duration against decord's (`container_problem`), then every frame's timestamp (`frame_timing_problem`).
    What `tools/validate_data.py` reports and what the dataset stops on (or skips) at index time."""
    try:
        return container_problem(path, probe.num_frames, probe.fps) or frame_timing_problem(path)
    except Exception as e:  # decord cannot list timestamps
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        return f"{path}: frame timestamps cannot be read ({first}); re-encode it"


def _split_names(root: Path, cfg: Optional[Mapping]) -> List[str]:
    ann = root / "annotations"
    names = sorted(p.stem for p in ann.glob("*.csv") if p.name not in CLASS_FILES)
    for key in ("train_split", "val_split"):
        name = _data_cfg(cfg, key, "train" if key == "train_split" else "val")
        if name not in names:
            names.append(name)
    return names


def validate_root(root: PathLike, cfg: Optional[Mapping] = None, full: bool = True) -> ValidationReport:
    """Run every dataset check on `root`; returns the report (never raises `DataError`).

    Args:
        root: the dataset ROOT.
        cfg: the run config (data.* keys: format, splits, depth overrides, tau_a/tau_o/num_frames/drop_style,
            model.modalities); None uses the defaults of r3d/defaults.yaml.
        full: read every depth value of float arrays (non-finite count) and every PNG header; False reads only the
            first and last frame of each store.
    """
    if cfg is None:
        from ..config import load_defaults

        cfg = load_defaults()
    root = Path(root)
    ck = _Checker(root, cfg, full)
    info, splits = _annotations(ck, root, cfg)
    report = ValidationReport(root, ck.results)
    if info is None:
        return report
    _narration_ids(ck, splits)
    videos = sorted({s.video_id for segs in splits.values() for s in segs})
    probes = _videos(ck, info, videos)
    use_depth = "depth" in cfg["model"]["modalities"]
    if use_depth:
        _depth(ck, info, probes)
    _segments(ck, info, splits, probes, cfg)
    report.stats = {"videos": len(videos), "segments": {k: len(v) for k, v in splits.items()}}
    return report


def _annotations(ck: _Checker, root: Path, cfg: Mapping) -> Tuple[Optional[DatasetInfo], Dict[str, List[Segment]]]:
    """layout, dataset.yaml, classes and annotations: the DatasetInfo and the segments of each readable split."""
    ann = root / "annotations"
    ck.count("layout")
    if not root.is_dir():
        ck.add("layout", ERROR, root, f"{root}: dataset ROOT not found; pass the folder that holds videos/, depth/ "
                                      f"and annotations/")
        return None, {}
    fmt = _data_cfg(cfg, "format", "folder")
    if fmt != "folder":  # another adapter: let it read its own layout, then check what it produced
        from .formats import build_info

        sub = dict(cfg)
        sub["data"] = dict(cfg["data"], root=str(root))
        info = ck.guard("annotations", build_info, sub)
        if info is None:
            return None, {}
        splits = {}
        for name in (cfg["data"]["train_split"], cfg["data"]["val_split"]):
            ck.count("annotations")
            segs = ck.guard("annotations", info.segments, name, name == cfg["data"]["train_split"])
            if segs is not None:
                splits[name] = segs
        return info, splits
    if not ann.is_dir():
        ck.add("layout", ERROR, ann, f"{ann}: not found; a ROOT needs annotations/ with train.csv, val.csv, "
                                     f"verb_classes.csv and noun_classes.csv (DATA-FORMAT.md)")
        return None, {}
    for sub in ("videos", "depth"):
        if not (root / sub).is_dir():
            level = ERROR if sub == "videos" else WARNING
            what = "RGB videos go there as <video_id>.mp4" if sub == "videos" else \
                "without it every video has no depth (the model sees depth as missing)"
            ck.add("layout", level, root / sub, f"{root / sub}: not found; {what}")
    ck.count("dataset.yaml")
    meta = ck.guard("dataset.yaml", read_dataset_yaml, root / "dataset.yaml") or {}
    depth = ck.guard("dataset.yaml", resolve_depth, meta, cfg, str(root / "dataset.yaml")) or \
        resolve_depth({}, None)
    ck.count("classes", 2)
    verbs = ck.guard("classes", read_classes, ann / "verb_classes.csv")
    nouns = ck.guard("classes", read_classes, ann / "noun_classes.csv")
    nv = len(verbs) if verbs is not None else None
    nn_ = len(nouns) if nouns is not None else None
    actions: Optional[List[Tuple[int, int]]] = None
    if (ann / "actions.csv").is_file() and verbs is not None and nouns is not None:
        ck.count("classes")
        actions = ck.guard("classes", read_actions, ann / "actions.csv", nv, nn_)
    labelled = {_data_cfg(cfg, "train_split", "train"), _data_cfg(cfg, "val_split", "val")}
    splits: Dict[str, List[Segment]] = {}
    for name in _split_names(root, cfg):
        path = ann / f"{name}.csv"
        ck.count("annotations")
        if not path.is_file():
            level = ERROR if name in labelled else INFO
            ck.add("annotations", level, path, f"{path}: annotation file not found; it is the split named by "
                                               f"data.train_split / data.val_split (or point those keys elsewhere)")
            continue
        segs = ck.guard("annotations", read_segments, path, nv, nn_, name in labelled)
        if segs is not None:
            splits[name] = segs
    if actions is None:
        from .formats import actions_from_segments

        actions = actions_from_segments(splits.get(_data_cfg(cfg, "train_split", "train"), []))
    info = DatasetInfo(root=root, name=str(meta.get("name") or root.name), verb_classes=verbs or [],
                       noun_classes=nouns or [], actions=actions, splits=dict(splits), **depth)
    return info, splits


def _narration_ids(ck: _Checker, splits: Mapping[str, List[Segment]]) -> None:
    first: Dict[str, Segment] = {}
    for name, segs in splits.items():
        for s in segs:
            ck.count("narration ids")
            other = first.get(s.narration_id)
            if other is not None and other.source != s.source:
                ck.add("narration ids", WARNING, s.where,
                       f"{s.where}: narration_id '{s.narration_id}' is also in {other.where}; a segment in two "
                       f"splits leaks training data into evaluation: remove one of them")
            first.setdefault(s.narration_id, s)


def _videos(ck: _Checker, info: DatasetInfo, videos: Sequence[str]) -> Dict[str, VideoInfo]:
    probes: Dict[str, VideoInfo] = {}
    for vid in videos:
        path = info.video_path(vid)
        ck.count("videos")
        probe = ck.guard("videos", probe_video, path)
        if probe is None:
            continue
        last = ck.guard("videos", read_rgb_frames, path, [probe.num_frames - 1])
        if last is None:
            continue
        probes[vid] = probe
        ck.count("frame timing")
        problem = video_timing_problem(path, probe)
        if problem:
            ck.add("frame timing", ERROR, path, problem)
    return probes


def _depth(ck: _Checker, info: DatasetInfo, probes: Mapping[str, VideoInfo]) -> None:
    for vid, probe in probes.items():
        ck.count("depth store")
        try:
            store = open_depth(info.root, vid, info.depth_scale)
        except DataError as e:
            ck.add("depth store", ERROR, _where_of(e), str(e))
            continue
        if store is None:
            loc = info.depth_location(vid)
            ck.add("depth store", WARNING, loc,
                   f"{loc}: no depth for video '{vid}' (no folder, .npz, .npy or .mkv); its samples train with depth "
                   f"marked missing: add the depth, or ignore this if it is intended")
            continue
        ck.count("depth frames")
        if info.depth_fps is None and store.num_frames != probe.num_frames:
            ck.add("depth frames", ERROR, store.path,
                   f"{store.path}: {store.num_frames} depth frames but {info.video_path(vid)} has {probe.num_frames} "
                   f"RGB frames; depth frame i must belong to RGB frame i: re-export one of them, or set depth_fps "
                   f"in dataset.yaml to match frames by time")
        ck.count("depth values")
        _depth_values(ck, store)


def _depth_values(ck: _Checker, store: DepthStore) -> None:
    """Every PNG header (full) and the first/last frames; float arrays are read whole (full) to count NaN/inf."""
    if isinstance(store, PngDepthStore):
        bad = check_png_frames(store) if ck.full else []
        for p, msg in bad:
            ck.add("depth values", ERROR, p, msg)
        if not bad:
            for i in sorted({0, store.num_frames - 1}):
                if ck.guard("depth values", read_png16, store.frame_path(i)) is None:
                    break
        return
    n = store.num_frames
    chunks = [np.arange(s, min(s + 64, n)) for s in range(0, n, 64)] if ck.full else [np.array(sorted({0, n - 1}))]
    for idx in chunks:
        if ck.guard("depth values", store.read, idx) is None:
            return
    if store.nonfinite:
        ck.add("depth values", WARNING, store.path,
               f"{store.path}: {store.nonfinite} non-finite depth values (NaN/inf) are read as 0 = no reading; "
               f"write 0 for holes if that is not what they mean")


def _segments(ck: _Checker, info: DatasetInfo, splits: Mapping[str, List[Segment]], probes: Mapping[str, VideoInfo],
              cfg: Mapping) -> None:
    d = cfg["data"]
    counts = {PADDED: 0, BEFORE_START: 0, UNOBSERVABLE: 0}
    for segs in splits.values():
        for s in segs:
            probe = probes.get(s.video_id)
            if probe is None:
                continue
            ck.count("segments")
            duration = probe.num_frames / probe.fps
            if s.start > duration + 1e-6:
                ck.add("segments", ERROR, s.where,
                       f"{s.where}: segment '{s.narration_id}' starts at {s.start:.3f} s, after the end of "
                       f"{info.video_path(s.video_id)} ({probe.num_frames} frames at {probe.fps:g} fps = "
                       f"{duration:.3f} s); fix start_timestamp or the video")
                continue
            win = next_action_window(s.start, probe.fps, int(d["num_frames"]), float(d["tau_a"]), float(d["tau_o"]),
                                     probe.num_frames, d["drop_style"])
            if win.status in counts:
                counts[win.status] += 1
    if counts[UNOBSERVABLE]:
        ck.add("segments", INFO, "segments", f"{counts[UNOBSERVABLE]} segment(s) start less than tau_a="
                                             f"{d['tau_a']} s into their video: nothing is observable, dropped")
    if counts[BEFORE_START]:
        ck.add("segments", INFO, "segments", f"{counts[BEFORE_START]} window(s) reach before the video start and "
                                             f"are dropped (data.drop_style=skip)")
    if counts[PADDED]:
        ck.add("segments", INFO, "segments", f"{counts[PADDED]} window(s) reach before the video start and are "
                                             f"padded with the first frame (data.drop_style=pad)")
