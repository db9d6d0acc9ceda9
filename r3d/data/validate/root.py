"""`validate_root`: every check of a ROOT in one pass, and the two checks across splits (narration ids, segments)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from ...config import load_defaults
from ..annotations import Segment
from ..errors import DataError
from ..protocols import BEFORE_START, PADDED, UNOBSERVABLE
from ..windows import segment_window, window_notes
from .layout import read_root
from .report import ERROR, INFO, WARNING, Checker, ValidationReport, where_of
from .streams import Clock, check_videos

PathLike = Union[str, os.PathLike]


def validate_root(root: PathLike, cfg: Optional[Mapping] = None, full: bool = True) -> ValidationReport:
    """Run every dataset check on `root`; returns the report (never raises `DataError`).

    Args:
        root: the dataset ROOT.
        cfg: the run config (data.* keys: format, splits, depth overrides, tau_a/tau_o/num_frames/drop_style;
            model.modalities: which streams the model reads); None uses the defaults of r3d/defaults.yaml.
        full: read every depth value of float arrays (non-finite count) and every PNG header; False reads only the
            first and last frame of each store.
    """
    cfg = load_defaults() if cfg is None else cfg
    root = Path(root)
    ck = Checker(full)
    info, splits = read_root(ck, root, cfg)
    report = ValidationReport(root, ck.results)
    if info is None:
        return report
    _narration_ids(ck, splits)
    videos = sorted({s.video_id for segs in splits.values() for s in segs})
    clocks = check_videos(ck, info, videos, list(cfg["model"]["modalities"]))
    _segments(ck, splits, clocks, cfg["data"])
    report.stats = {"videos": len(videos), "segments": {k: len(v) for k, v in splits.items()}}
    return report


def _narration_ids(ck: Checker, splits: Mapping[str, List[Segment]]) -> None:
    first: Dict[str, Segment] = {}
    for segs in splits.values():
        for s in segs:
            ck.count("narration ids")
            other = first.get(s.narration_id)
            if other is not None and other.source != s.source:
                ck.add("narration ids", WARNING, s.where,
                       f"{s.where}: narration_id '{s.narration_id}' is also in {other.where}; a segment in two "
                       f"splits leaks training data into evaluation: remove one of them")
            first.setdefault(s.narration_id, s)


def _segments(ck: Checker, splits: Mapping[str, List[Segment]], clocks: Mapping[str, Clock], data: Mapping) -> None:
    """Each segment starts inside its video; the windows that are dropped or padded are counted (info)."""
    counts = {PADDED: 0, BEFORE_START: 0, UNOBSERVABLE: 0}
    for segs in splits.values():
        for s in segs:
            clock = clocks.get(s.video_id)
            if clock is None:
                continue
            ck.count("segments")
            try:
                win = segment_window(s, clock.video, data, clock.path)
            except DataError as e:
                ck.add("segments", ERROR, where_of(e), str(e))
                continue
            if win.status in counts:
                counts[win.status] += 1
    for note in window_notes(counts, data):
        ck.add("segments", INFO, "segments", note)
