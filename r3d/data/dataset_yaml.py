"""``ROOT/dataset.yaml``: the optional facts of a dataset ROOT, and the depth settings resolved from it.

Keys read by r3d (`DATASET_YAML_KEYS`): ``name``; ``fps`` (frame rate of RGB frame folders, and of depth PNG folders
when a video has no RGB); ``depth_scale`` (metres per integer depth unit), ``depth_min`` / ``depth_max`` (the valid
range in metres), ``depth_fps`` (depth frame rate when it differs from the RGB one: frames are then matched by time).
Other keys (e.g. a generator's ``synthetic:`` block) are kept as metadata; a key that looks like a misspelt known one
(``depth_sacle``) is an error naming it.

Depth settings precedence (`resolve_depth`), highest first: the `data.depth_scale` / `data.depth_min` /
`data.depth_max` config key when not null; the ROOT's dataset.yaml; the value the dataset adapter gave (e.g.
UTKinect's packed units); `DEPTH_DEFAULTS` (0.001 m per unit, 0.2 m, 4.5 m, no separate depth rate).
"""
from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from .errors import DataError

PathLike = Union[str, os.PathLike]

DEPTH_DEFAULTS: Dict[str, Optional[float]] = {"depth_scale": 0.001, "depth_min": 0.2, "depth_max": 4.5,
                                              "depth_fps": None}
DATASET_YAML_KEYS = ("name", "fps", *DEPTH_DEFAULTS)


def read_dataset_yaml(path: PathLike) -> Dict[str, Any]:
    """The optional ``dataset.yaml`` of a ROOT as a dict ({} when absent).

    Keys the loader does not use are kept as metadata, but one that looks like a misspelt known key is an error
    naming it; a known key other than ``name`` must be a number (or null).
    """
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{p}: not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, Mapping):
        raise DataError(f"{p}: the top level must be a mapping (depth_scale: 0.001, ...), got {type(data).__name__}")
    for key, value in data.items():
        if key not in DATASET_YAML_KEYS:
            close = difflib.get_close_matches(str(key), DATASET_YAML_KEYS, n=1, cutoff=0.8)
            if close:
                raise DataError(f"{p}: unknown key '{key}'; did you mean '{close[0]}'? (keys read by r3d: "
                                f"{', '.join(DATASET_YAML_KEYS)})")
            continue
        if key != "name" and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(f"{p}: key '{key}' must be a number, got {value!r}")
    return dict(data)


def resolve_depth(meta: Mapping[str, Any], cfg: Optional[Mapping] = None, source: str = "dataset.yaml",
                  fallback: Optional[Mapping[str, Optional[float]]] = None) -> Dict[str, Optional[float]]:
    """depth_scale/min/max/fps: `data.*` config values when not null, else `meta` (dataset.yaml), else `fallback`
    (the adapter's own values), else `DEPTH_DEFAULTS`. DataError naming the key for a value that is not a positive
    (depth_min: non-negative) finite number, or for depth_min >= depth_max."""
    out: Dict[str, Optional[float]] = {}
    data_cfg = cfg.get("data", {}) if cfg is not None else {}
    for key, default in DEPTH_DEFAULTS.items():
        if fallback is not None and fallback.get(key) is not None:
            default = fallback[key]
        value, origin = meta.get(key), f"{source} key '{key}'"
        if data_cfg.get(key) is not None:  # there is no data.depth_fps: that one is a property of the recording
            value, origin = data_cfg[key], f"config key 'data.{key}'"
        value = default if value is None else float(value)
        ok = value is None or (math.isfinite(value) and (value >= 0 if key == "depth_min" else value > 0))
        if not ok:
            kind = "non-negative" if key == "depth_min" else "positive"
            raise DataError(f"{origin} = {value} is not valid; it must be a {kind} number")
        out[key] = value
    if out["depth_min"] >= out["depth_max"]:
        raise DataError(f"depth_min {out['depth_min']} m must be below depth_max {out['depth_max']} m; fix "
                        f"{source} or data.depth_min / data.depth_max")
    return out
