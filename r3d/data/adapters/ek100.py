"""EPIC-KITCHENS-100 as published: the official annotation files and the download layout.

Documents followed:
- the annotations repository README, "File Structure" (github.com/epic-kitchens/epic-kitchens-100-annotations):
  ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv`` with 15 columns (narration_id, participant_id, video_id,
  narration_timestamp, start_timestamp, stop_timestamp, start_frame, stop_frame, narration, verb, verb_class, noun,
  noun_class, all_nouns, all_noun_classes), ``EPIC_100_test_timestamps.csv`` (the first 8, no labels),
  ``EPIC_100_verb_classes.csv`` / ``EPIC_100_noun_classes.csv`` (id, key, instances, category), the ``.pkl`` twins
  ("pandas DataFrames", indexed by narration_id, see its ``.circleci/test_pickles.py``) and
  ``EPIC_100_video_info.csv`` (video_id, duration, fps, resolution);
- the download scripts' README, "Folders structure" (github.com/epic-kitchens/epic-kitchens-download-scripts):
  ``<output>/EPIC-KITCHENS/P01/videos/P01_01.MP4`` and ``.../P01/rgb_frames/P01_01.tar`` (extracted to
  ``P01/rgb_frames/P01_01/frame_0000000001.jpg``, ...).

Layout read (`data.root` = the ``EPIC-KITCHENS`` folder; `data.ek100.annotations` / `data.ek100.videos` move the two
folders)::

    ROOT/annotations/EPIC_100_*.csv|.pkl          (or the files in ROOT itself); a .csv wins over its .pkl twin
    ROOT/P01/videos/P01_01.MP4                    RGB video (or <data.ek100.videos>/P01_01.MP4)
    ROOT/P01/rgb_frames/P01_01/frame_%010d.jpg    used when there is no video file; its fps from EPIC_100_video_info.csv
    ROOT/depth/P01_01/...                         optional depth in any r3d store; EK100 has none: RGB-only samples
    ROOT/dataset.yaml                             optional, as for the folder format (depth facts; fps of frame folders
                                                  missing from EPIC_100_video_info.csv)

Splits: ``train`` -> EPIC_100_train, ``val`` or ``validation`` -> EPIC_100_validation, ``test`` ->
EPIC_100_test_timestamps (unlabelled), another name X -> EPIC_100_X. Times are start/stop_timestamp in seconds; the
frame columns are not used (they count at each video's own rate). The action vocabulary is the (verb_class,
noun_class) pairs of the training split in order of first appearance, as for the folder format.

A ``.pkl`` is read with pandas (an error naming the file when pandas is missing). Unpickling runs code: use only the
official files. Row numbers in its errors are the line numbers of its CSV twin (header = line 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ...registry import DATASETS
from ..annotations import (LABEL_COLUMNS, SEGMENT_COLUMNS, Segment, actions_from_segments, iter_rows, read_classes,
                           read_segments)
from ..dataset_yaml import PathLike, read_dataset_yaml
from ..errors import DataError, where
from ..info import VIDEO_EXTENSIONS, DatasetInfo
from .common import adapter_config, resolve_dir, split_name

EK100_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                 "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                 "noun_class", "all_nouns", "all_noun_classes")
SPLIT_FILES = {"train": "EPIC_100_train", "val": "EPIC_100_validation", "validation": "EPIC_100_validation",
               "test": "EPIC_100_test_timestamps"}
VERB_CLASSES, NOUN_CLASSES, VIDEO_INFO = "EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", \
    "EPIC_100_video_info.csv"


def split_file(annotations: Path, split: str, files: Mapping[str, str] = SPLIT_FILES, prefix: str = "EPIC_100_",
               key: str = "data.ek100.annotations") -> Path:
    """``<annotations>/<file of split>.csv``, else its ``.pkl`` twin; DataError naming both when neither exists."""
    stem = files.get(split, f"{prefix}{split}")
    for ext in (".csv", ".pkl"):
        p = annotations / f"{stem}{ext}"
        if p.is_file():
            return p
    raise DataError(f"{annotations / stem}.csv: not found (nor {stem}.pkl) for split '{split}'; put the annotation "
                    f"files in {annotations} or set {key}")


def _cell(value: Any, isna) -> str:
    """A DataFrame cell as the text a CSV would hold (NaN/None -> empty, 3.0 -> "3")."""
    if isinstance(value, (list, tuple)):
        return str(list(value))
    if value is None or (not hasattr(value, "__len__") and isna(value)):
        return ""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def pickle_rows(path: PathLike, required: Sequence[str]) -> List[Tuple[int, Dict[str, str]]]:
    """(CSV-twin line number, {column: text}) of each row of an EK100 ``.pkl`` DataFrame (read with pandas)."""
    p = Path(path)
    try:
        import pandas as pd
    except ImportError:
        raise DataError(f"{p}: reading .pkl annotations needs pandas (`pip install pandas`); or put its CSV twin "
                        f"{p.with_suffix('.csv').name} next to it") from None
    try:
        df = pd.read_pickle(p)
    except Exception as e:  # unpickling can fail in many ways (truncated file, another pandas' internals, ...)
        raise DataError(f"{p}: not a readable pandas pickle ({type(e).__name__}: {str(e)[:120]}); use its CSV twin "
                        f"{p.with_suffix('.csv').name}") from None
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{p}: holds a {type(df).__name__}, not a pandas DataFrame; use its CSV twin")
    if "narration_id" not in df.columns and df.index.name == "narration_id":
        df = df.reset_index()
    columns = [str(c) for c in df.columns]
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f"{where(p, 1)}: missing required column(s) {missing} (columns: {columns}); use the "
                        f"official file or its CSV twin")
    return [(i + 2, {c: _cell(v, pd.isna) for c, v in zip(columns, values)})
            for i, values in enumerate(df.itertuples(index=False, name=None))]


def read_ek_segments(path: Path, num_verbs: int, num_nouns: int, require_labels: bool) -> List[Segment]:
    """Segments of one EK100 annotation file, a .csv or a .pkl (checked as `annotations.read_segments` does)."""
    if path.suffix == ".pkl":
        required = SEGMENT_COLUMNS + (LABEL_COLUMNS if require_labels else ())
        return read_segments(path, num_verbs, num_nouns, require_labels, rows=pickle_rows(path, required))
    return read_segments(path, num_verbs, num_nouns, require_labels)


def read_video_fps(path: PathLike) -> Dict[str, float]:
    """video_id -> fps from ``EPIC_100_video_info.csv`` (video_id, duration, fps, resolution)."""
    p = Path(path)
    out: Dict[str, float] = {}
    for line, row in iter_rows(p, ("video_id", "fps")):
        try:
            fps = float(row["fps"])
        except ValueError:
            fps = float("nan")
        if not (math.isfinite(fps) and fps > 0):
            raise DataError(f"{where(p, line, 'fps')} is '{row['fps']}'; write the video's frame rate (e.g. 50.0)")
        out[row["video_id"]] = fps
    return out


@dataclass
class EK100Info(DatasetInfo):
    """`DatasetInfo` with EK100's video layout (see the module docstring); `videos_dir` = data.ek100.videos."""

    videos_dir: Optional[Path] = None

    def video_path(self, video_id: str) -> Path:
        """The video file of `video_id` in the EK100 layout, else its rgb_frames folder (the .MP4 path if none)."""
        participant = video_id.split("_")[0]
        folders = [self.videos_dir] if self.videos_dir is not None else [self.root / participant / "videos",
                                                                          self.root / "videos"]
        for folder in folders:
            for ext in VIDEO_EXTENSIONS:
                p = folder / f"{video_id}{ext}"
                if p.is_file():
                    return p
        for d in [f / video_id for f in folders] + [self.root / participant / "rgb_frames" / video_id]:
            if d.is_dir():
                return d
        return folders[0] / f"{video_id}.MP4"


class EK100Splits:
    """Picklable split loader: split name -> EPIC_100 file (.csv or .pkl) -> segments."""

    def __init__(self, annotations: Path, num_verbs: int, num_nouns: int) -> None:
        self.annotations, self.num_verbs, self.num_nouns = Path(annotations), num_verbs, num_nouns

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        return read_ek_segments(split_file(self.annotations, split), self.num_verbs, self.num_nouns, require_labels)


@DATASETS.register("ek100")
def ek100(root: PathLike, cfg: Optional[Mapping] = None) -> EK100Info:
    """EPIC-KITCHENS-100: official EPIC_100_*.csv/.pkl annotations, videos or rgb_frames in the download layout."""
    root = Path(root)
    section = adapter_config(cfg, "ek100")
    ann = resolve_dir(root, section["annotations"], "data.ek100.annotations", ("annotations",))
    videos = resolve_dir(root, section["videos"], "data.ek100.videos") if section["videos"] else None
    meta = read_dataset_yaml(root / "dataset.yaml")
    verbs, nouns = read_classes(ann / VERB_CLASSES), read_classes(ann / NOUN_CLASSES)
    video_fps = read_video_fps(ann / VIDEO_INFO) if (ann / VIDEO_INFO).is_file() else {}
    loader = EK100Splits(ann, len(verbs), len(nouns))
    train = split_name(cfg)
    splits = {train: loader(train, True)}
    return EK100Info(root=root, name=str(meta.get("name") or "EPIC-KITCHENS-100"), verb_classes=verbs,
                     noun_classes=nouns, actions=actions_from_segments(splits[train]), splits=splits,
                     split_loader=loader, fps=meta.get("fps"), video_fps=video_fps, videos_dir=videos)
