"""The validator's first checks: ROOT layout, dataset.yaml, class lists and annotation CSVs -> `DatasetInfo` + splits.

The folder format is read here piece by piece, so that a bad file or row is recorded and the rest is still read:
a bad CSV row drops that row (`read_segments(problems=...)`), not its split, and unreadable class lists leave the
class ids unchecked instead of stopping. Any other `data.format` is read by its adapter (`build_info`), whose errors
are recorded per split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from ..annotations import Segment, actions_from_segments, read_actions, read_classes, read_segments
from ..dataset_yaml import read_dataset_yaml
from ..errors import DataError
from ..formats import build_info
from ..info import DatasetInfo
from .report import ERROR, INFO, WARNING, Checker, where_of

CLASS_FILES = ("verb_classes.csv", "noun_classes.csv", "actions.csv")


def read_root(ck: Checker, root: Path, cfg: Mapping) -> Tuple[Optional[DatasetInfo], Dict[str, List[Segment]]]:
    """layout, dataset.yaml, classes and annotations: the DatasetInfo and the readable segments of each split
    (None when the ROOT cannot be read at all)."""
    ck.count("layout")
    if not root.is_dir():
        ck.add("layout", ERROR, root, f"{root}: dataset ROOT not found; pass the folder that holds annotations/ and "
                                      f"the videos/, depth/ the model reads")
        return None, {}
    if cfg["data"]["format"] != "folder":
        return _read_by_adapter(ck, root, cfg)
    ann = root / "annotations"
    if not ann.is_dir():
        ck.add("layout", ERROR, ann, f"{ann}: not found; a ROOT needs annotations/ with train.csv, val.csv, "
                                     f"verb_classes.csv and noun_classes.csv")
        return None, {}
    _folders(ck, root, cfg["model"]["modalities"])
    ck.count("dataset.yaml")
    meta = ck.guard("dataset.yaml", read_dataset_yaml, root / "dataset.yaml") or {}
    ck.count("classes", 2)
    verbs = ck.guard("classes", read_classes, ann / "verb_classes.csv")
    nouns = ck.guard("classes", read_classes, ann / "noun_classes.csv")
    nv = len(verbs) if verbs is not None else None
    nn_ = len(nouns) if nouns is not None else None
    actions: Optional[List[Tuple[int, int]]] = None
    if (ann / "actions.csv").is_file() and verbs is not None and nouns is not None:
        ck.count("classes")
        actions = ck.guard("classes", read_actions, ann / "actions.csv", nv, nn_)
    data = cfg["data"]
    labelled = {data["train_split"], data["val_split"]}
    splits: Dict[str, List[Segment]] = {}
    for name in _split_names(ann, data):
        path = ann / f"{name}.csv"
        ck.count("annotations")
        if not path.is_file():
            level = ERROR if name in labelled else INFO
            ck.add("annotations", level, path, f"{path}: annotation file not found; it is the split named by "
                                               f"data.train_split / data.val_split (or point those keys elsewhere)")
            continue
        problems: List[DataError] = []
        segs = ck.guard("annotations", read_segments, path, nv, nn_, name in labelled, problems=problems)
        for e in problems:
            ck.add("annotations", ERROR, where_of(e), str(e))
        if segs:
            splits[name] = segs
    if actions is None:
        actions = actions_from_segments(splits.get(data["train_split"], []))
    info = DatasetInfo(root=root, name=str(meta.get("name") or root.name), verb_classes=verbs or [],
                       noun_classes=nouns or [], actions=actions, splits=dict(splits), fps=meta.get("fps"))
    ck.guard("dataset.yaml", info.resolve_depth_settings, cfg)
    return info, splits


def _folders(ck: Checker, root: Path, modalities: List[str]) -> None:
    """videos/ is needed by a model that uses RGB; depth/ missing means depth is missing for every video. A ROOT of
    native recordings (recordings/<video_id>.mkv|.bag) holds both in one file per video."""
    if (root / "recordings").is_dir() and any((root / "recordings").iterdir()):
        return  # each video is then checked on its own (a missing recording is a missing video)
    if "rgb" in modalities and not (root / "videos").is_dir():
        ck.add("layout", ERROR, root / "videos", f"{root / 'videos'}: not found; RGB videos go there as "
                                                 f"<video_id>.mp4 (or train a depth-only model: "
                                                 f"model.modalities=[depth])")
    if "depth" in modalities and not (root / "depth").is_dir():
        ck.add("layout", WARNING, root / "depth", f"{root / 'depth'}: not found; without it every video has no depth "
                                                  f"(the model sees depth as missing)")


def _split_names(ann: Path, data: Mapping) -> List[str]:
    names = sorted(p.stem for p in ann.glob("*.csv") if p.name not in CLASS_FILES)
    for name in (data["train_split"], data["val_split"]):
        if name not in names:
            names.append(name)
    return names


def _read_by_adapter(ck: Checker, root: Path, cfg: Mapping) -> Tuple[Optional[DatasetInfo], Dict[str, List[Segment]]]:
    """Another `data.format`: its adapter reads its own layout; each split's error is recorded."""
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
