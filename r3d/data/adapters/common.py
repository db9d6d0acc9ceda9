"""Helpers shared by the dataset adapters: their config section and folders given relative to data.root."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DataError


def adapter_config(cfg: Optional[Mapping], name: str) -> Dict[str, Any]:
    """The `data.<name>` section of `cfg` (r3d/defaults.yaml's values when `cfg` is None)."""
    if cfg is None:
        from ...config import load_defaults

        cfg = load_defaults()
    return dict(cfg["data"][name])


def split_name(cfg: Optional[Mapping]) -> str:
    """`data.train_split` (``train`` when `cfg` is None)."""
    return cfg["data"]["train_split"] if cfg is not None else "train"


def resolve_dir(root: Path, value: Optional[Union[str, Path]], key: str,
                defaults: Sequence[Union[str, Path]] = ()) -> Path:
    """The folder config key `key` names (relative to `root` unless absolute), else the first of `defaults` (relative
    to `root`) that exists, else `root`. A configured folder that does not exist is a DataError naming the key."""
    if value not in (None, ""):
        p = Path(value)
        p = p if p.is_absolute() else root / p
        if not p.is_dir():
            raise DataError(f"{p}: folder not found (config key '{key}' = {value!r}); fix the key or create the "
                            f"folder")
        return p
    for d in defaults:
        if (root / d).is_dir():
            return root / d
    return root


NOUN = "person"


def verb_only_vocabulary(num_verbs: int) -> Tuple[List[str], List[Tuple[int, int]]]:
    """(noun classes, action vocabulary) for datasets labelled with one action class per segment (NTU, UTKinect):
    one noun ("person"), and action i = (verb i, noun 0), so action id = verb id."""
    return [NOUN], [(v, 0) for v in range(num_verbs)]
