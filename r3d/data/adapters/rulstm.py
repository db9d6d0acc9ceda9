"""RULSTM's EPIC-KITCHENS anticipation CSVs (Furnari & Farinella, "Rolling-Unrolling LSTMs for Action Anticipation
from First-Person Video", TPAMI 2020).

Documents followed: the RULSTM repository (github.com/fpv-iplab/rulstm): ``RULSTM/dataset.py`` (`SequenceDataset`
reads the CSVs with ``header=None, names=['video','start','end','verb','noun','action']`` after the id column, or
``['video','start','end']`` for the challenge files, and takes an action's start time as ``start / fps`` with
``fps=30``) and its ``data/ek55``, ``data/ek100`` files:

- ``training.csv`` / ``validation.csv``: no header, ``id,video,start_frame,end_frame,verb,noun,action`` (EK100 ids
  look like ``P01_01_0``; EK55 ones are integers); a 4-field row ``id,video,start_frame,end_frame`` is unlabelled;
- frame numbers count at 30 fps (RULSTM extracted its frames at 30 fps), so segment times are frame /
  `data.rulstm.fps`, whatever the rate of the videos r3d decodes;
- ``actions.csv``: one row per action id with its verb and noun ids. EK55's has the header ``id,action,verb,noun``
  (``action`` is a name such as ``take_pan``), so columns are found by header name; a headerless file is read as
  ``id,verb,noun,action``. Every segment's action id must be the actions.csv row of its (verb, noun).

Layout: ``ROOT/annotations/`` (or ROOT, or `data.rulstm.annotations`) holds the CSVs; videos are found as for
``ek100`` (``ROOT/P01/videos/P01_01.MP4``, ``ROOT/videos/<video>.*``, rgb_frames folders, or `data.rulstm.videos`;
a frame folder's rate comes from an ``EPIC_100_video_info.csv`` next to the CSVs, else dataset.yaml ``fps``).
Splits: ``train``/``training`` -> training.csv, ``val``/``validation`` -> validation.csv, another name X -> X.csv.
Class names come from ``EPIC_100_verb_classes.csv`` / ``EPIC_verb_classes.csv`` / ``verb_classes.csv`` (id,key) in the
same folder when one exists (nouns likewise), else from the action names (``take_pan``: verb "take", noun "pan", of
the lowest action id with that class), else ``verb_<id>``. The action vocabulary is actions.csv in id order, so r3d's
action ids are RULSTM's.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from ...registry import DATASETS
from ..annotations import Segment, read_classes
from ..errors import DataError, where
from ..dataset_yaml import PathLike, read_dataset_yaml
from .common import adapter_config, resolve_dir
from .ek100 import VIDEO_INFO, EK100Info, read_video_fps

SPLIT_FILES = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}
LABELLED, UNLABELLED = ("id", "video", "start_frame", "end_frame", "verb", "noun", "action"), \
    ("id", "video", "start_frame", "end_frame")
CLASS_FILES = {"verb": ("EPIC_100_verb_classes.csv", "EPIC_verb_classes.csv", "verb_classes.csv"),
               "noun": ("EPIC_100_noun_classes.csv", "EPIC_noun_classes.csv", "noun_classes.csv")}


def _rows(path: Path):
    """(line, stripped fields) of each non-empty CSV row."""
    if not path.is_file():
        raise DataError(f"{path}: not found; RULSTM's CSVs go in data.root/annotations, data.root, or the folder "
                        f"set by data.rulstm.annotations")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for values in reader:
            if values and any(v.strip() for v in values):
                yield reader.line_num, [v.strip() for v in values]


def _int(path: Path, line: int, column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where(path, line, column)} is '{text}', not an integer") from None


def read_rulstm_actions(path: PathLike) -> Tuple[List[Tuple[int, int]], Dict[int, str]]:
    """(the (verb, noun) pair of each action id 0..n-1, {action id: name}) from RULSTM's ``actions.csv``."""
    p = Path(path)
    rows = list(_rows(p))
    if not rows:
        raise DataError(f"{p}: empty; RULSTM's actions.csv has one `id,verb,noun,action` row per action")
    header = [h.lower() for h in rows[0][1]]
    if "id" in header:
        missing = [c for c in ("id", "verb", "noun") if c not in header]
        if missing:
            raise DataError(f"{where(p, rows[0][0])}: header {rows[0][1]} lacks {missing}; it needs id, verb, noun")
        cols, rows = {c: header.index(c) for c in ("id", "verb", "noun", "action") if c in header}, rows[1:]
    else:
        cols = {"id": 0, "verb": 1, "noun": 2, "action": 3}
    by_id: Dict[int, Tuple[int, int]] = {}
    names: Dict[int, str] = {}
    seen: Dict[Tuple[int, int], int] = {}
    for line, values in rows:
        if len(values) <= max(cols[c] for c in ("id", "verb", "noun")):
            raise DataError(f"{where(p, line)}: {len(values)} fields; expected id, verb, noun (and action)")
        aid, verb, noun = (_int(p, line, c, values[cols[c]]) for c in ("id", "verb", "noun"))
        if aid in by_id:
            raise DataError(f"{where(p, line, 'id')}: action id {aid} is used twice; ids must be unique")
        if verb < 0 or noun < 0:
            raise DataError(f"{where(p, line)}: negative verb or noun id ({verb}, {noun})")
        if (verb, noun) in seen:
            raise DataError(f"{where(p, line)}: pair (verb {verb}, noun {noun}) repeats line {seen[(verb, noun)]}")
        by_id[aid], seen[(verb, noun)] = (verb, noun), line
        if "action" in cols and cols["action"] < len(values):
            names[aid] = values[cols["action"]]
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{p}: action ids must be 0..{len(by_id) - 1} without gaps")
    return [by_id[i] for i in range(len(by_id))], names


def _class_names(folder: Path, kind: str, pairs: List[Tuple[int, int]], names: Dict[int, str]) -> List[str]:
    """Verb or noun class names: a class CSV in `folder`, else the action names, else ``<kind>_<id>``."""
    for fname in CLASS_FILES[kind]:
        if (folder / fname).is_file():
            return read_classes(folder / fname)
    part = 0 if kind == "verb" else 1
    count = max(pair[part] for pair in pairs) + 1
    out = [f"{kind}_{i}" for i in range(count)]
    filled = set()
    for aid, pair in enumerate(pairs):
        name = names.get(aid, "")
        if "_" in name and pair[part] not in filled:
            out[pair[part]] = name.split("_", 1)[part]
            filled.add(pair[part])
    return out


def read_rulstm_segments(path: PathLike, fps: float, actions: List[Tuple[int, int]], num_verbs: int,
                         num_nouns: int, require_labels: bool) -> List[Segment]:
    """Segments of one headerless RULSTM split CSV (times = frame / fps); errors name the file, line and column."""
    p = Path(path)
    action_of = {pair: aid for aid, pair in enumerate(actions)}
    out: List[Segment] = []
    seen: Dict[str, int] = {}
    for line, values in _rows(p):
        if len(values) not in (len(LABELLED), len(UNLABELLED)):
            raise DataError(f"{where(p, line)}: {len(values)} fields; RULSTM rows are "
                            f"{','.join(LABELLED)} (or the first 4 for unlabelled splits), without a header")
        fields = dict(zip(LABELLED, values))
        nid, video = fields["id"], fields["video"]
        if not nid or not video:
            raise DataError(f"{where(p, line)}: empty id or video")
        if nid in seen:
            raise DataError(f"{where(p, line, 'id')}: '{nid}' is a duplicate of line {seen[nid]}; ids must be unique")
        seen[nid] = line
        start, end = (_int(p, line, c, fields[c]) for c in ("start_frame", "end_frame"))
        if start < 0 or end < start:
            raise DataError(f"{where(p, line)}: frames {start}..{end}; need 0 <= start_frame <= end_frame")
        verb = noun = -1
        if len(values) == len(LABELLED):
            verb, noun, aid = (_int(p, line, c, fields[c]) for c in ("verb", "noun", "action"))
            for column, value, num in (("verb", verb, num_verbs), ("noun", noun, num_nouns)):
                if not 0 <= value < num:
                    raise DataError(f"{where(p, line, column)}: class id {value} is unknown (ids 0..{num - 1})")
            if action_of.get((verb, noun)) != aid:
                expected = action_of.get((verb, noun))
                raise DataError(f"{where(p, line, 'action')}: action {aid} but actions.csv gives (verb {verb}, noun "
                                f"{noun}) the id {expected}; the row and actions.csv disagree")
        elif require_labels:
            raise DataError(f"{where(p, line)}: no verb/noun/action, but split is used for training; use a "
                            f"labelled CSV (7 fields)")
        out.append(Segment(nid, video, start / fps, end / fps, verb, noun, video.split("_")[0], line, str(p)))
    if not out:
        raise DataError(f"{p}: the split has no rows")
    return out


class RulstmSplits:
    """Picklable split loader: split name -> ``<annotations>/<file>.csv`` -> segments."""

    def __init__(self, annotations: Path, fps: float, actions: List[Tuple[int, int]], num_verbs: int,
                 num_nouns: int) -> None:
        self.annotations, self.fps, self.actions = Path(annotations), fps, actions
        self.num_verbs, self.num_nouns = num_verbs, num_nouns

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        path = self.annotations / f"{SPLIT_FILES.get(split, split)}.csv"
        return read_rulstm_segments(path, self.fps, self.actions, self.num_verbs, self.num_nouns, require_labels)


@DATASETS.register("rulstm")
def rulstm(root: PathLike, cfg: Optional[Mapping] = None) -> EK100Info:
    """RULSTM: headerless id,video,start_frame,end_frame,verb,noun,action CSVs at 30 fps + actions.csv."""
    root = Path(root)
    section = adapter_config(cfg, "rulstm")
    fps = float(section["fps"])
    if not fps > 0:
        raise DataError(f"config key 'data.rulstm.fps' is {fps}; it is the positive frame rate of the frame numbers")
    ann = resolve_dir(root, section["annotations"], "data.rulstm.annotations", ("annotations",))
    videos = resolve_dir(root, section["videos"], "data.rulstm.videos") if section["videos"] else None
    meta = read_dataset_yaml(root / "dataset.yaml")
    actions, names = read_rulstm_actions(ann / "actions.csv")
    verbs, nouns = (_class_names(ann, kind, actions, names) for kind in ("verb", "noun"))
    for aid, (v, n) in enumerate(actions):
        if v >= len(verbs) or n >= len(nouns):
            raise DataError(f"{ann / 'actions.csv'}: action {aid} = (verb {v}, noun {n}) is outside the class lists "
                            f"({len(verbs)} verbs, {len(nouns)} nouns)")
    video_fps = read_video_fps(ann / VIDEO_INFO) if (ann / VIDEO_INFO).is_file() else {}
    loader = RulstmSplits(ann, fps, actions, len(verbs), len(nouns))
    return EK100Info(root=root, name=str(meta.get("name") or "RULSTM"), verb_classes=verbs, noun_classes=nouns,
                     actions=actions, split_loader=loader, fps=meta.get("fps"), video_fps=video_fps,
                     videos_dir=videos)
