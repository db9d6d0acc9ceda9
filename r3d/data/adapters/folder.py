"""The folder format: r3d's own layout for your recordings (``data.format=folder``, the default).

Layout of a ROOT::

    ROOT/videos/<video_id>.mp4           RGB video (any extension of `VIDEO_EXTENSIONS`), or videos/<video_id>/ with
                                         numbered images (their rate: dataset.yaml ``fps``)
    ROOT/depth/<video_id>/000000.png     16-bit depth PNG per RGB frame, or depth/<video_id>.npz / .npy / .mkv
    ROOT/annotations/train.csv, val.csv  EK100 columns: narration_id, video_id, start_timestamp, stop_timestamp,
                                         verb_class, noun_class (+ any other column)
    ROOT/annotations/verb_classes.csv, noun_classes.csv   id,key
    ROOT/annotations/actions.csv         optional: id,verb,noun (the action vocabulary)
    ROOT/dataset.yaml                    optional (`r3d.data.dataset_yaml`)

Either stream may be absent when the model does not use it: a depth-only model reads a ROOT without videos/, timed
by its depth (`DatasetInfo.timing_stream`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional

from ...registry import DATASETS
from ..annotations import Segment, actions_from_segments, read_actions, read_classes, read_segments
from ..dataset_yaml import PathLike, read_dataset_yaml
from ..errors import DataError
from ..info import DatasetInfo
from .common import split_name


class FolderSplits:
    """Picklable split loader: ``annotations/<split>.csv`` -> segments (class ids checked against the class lists)."""

    def __init__(self, annotations: PathLike, num_verbs: int, num_nouns: int) -> None:
        self.annotations = Path(annotations)
        self.num_verbs, self.num_nouns = num_verbs, num_nouns

    def __call__(self, split: str, require_labels: bool = False) -> List[Segment]:
        return read_segments(self.annotations / f"{split}.csv", self.num_verbs, self.num_nouns, require_labels)


@DATASETS.register("folder")
def folder(root: PathLike, cfg: Optional[Mapping] = None) -> DatasetInfo:
    """A ROOT in r3d's folder layout: videos/, depth/, annotations/ (+ optional actions.csv and dataset.yaml).

    A video may also be a folder of numbered images ``videos/<video_id>/`` (`r3d.data.frames`, "position"
    numbering); its frame rate is dataset.yaml's ``fps``.

    The action vocabulary is ``annotations/actions.csv`` when it exists, else the (verb, noun) pairs of the training
    split (`data.train_split`, default ``train``) in order of first appearance.
    """
    root = Path(root)
    ann = root / "annotations"
    if not ann.is_dir():
        raise DataError(f"{ann}: not found; data.root must be a ROOT with annotations/ (and videos/, depth/), or set "
                        f"data.generate_if_missing=true to render the synthetic benchmark")
    meta = read_dataset_yaml(root / "dataset.yaml")
    verbs = read_classes(ann / "verb_classes.csv")
    nouns = read_classes(ann / "noun_classes.csv")
    loader = FolderSplits(ann, len(verbs), len(nouns))
    splits: Dict[str, List[Segment]] = {}
    if (ann / "actions.csv").is_file():
        actions = read_actions(ann / "actions.csv", len(verbs), len(nouns))
    else:
        train_split = split_name(cfg)
        splits[train_split] = loader(train_split, True)
        actions = actions_from_segments(splits[train_split])
    return DatasetInfo(root=root, name=str(meta.get("name") or root.name), verb_classes=verbs, noun_classes=nouns,
                       actions=actions, splits=splits, split_loader=loader, fps=meta.get("fps"))
