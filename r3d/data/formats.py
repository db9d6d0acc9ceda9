"""`build_info`: the `DatasetInfo` of `data.root`, read by the adapter that `data.format` names.

Importing this module registers the built-in adapters (`r3d.data.adapters`); plugins register theirs through
`custom_imports`. Every dataset, the validator and the feature extractor get their `DatasetInfo` here, and this is the
one place the depth settings are resolved (`DatasetInfo.resolve_depth_settings`: `data.depth_*` config keys >
ROOT/dataset.yaml > the adapter's values > defaults).
"""
from __future__ import annotations

from typing import Mapping

from ..registry import DATASETS
from . import adapters  # noqa: F401  (registers the built-in adapters)
from .info import DatasetInfo


def build_info(cfg: Mapping) -> DatasetInfo:
    """The `DatasetInfo` of `data.root` built by the adapter named in `data.format`, its depth settings resolved."""
    info = DATASETS.build(cfg["data"]["format"], cfg["data"]["root"], cfg)
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"dataset adapter '{cfg['data']['format']}' returned {type(info).__name__}, not DatasetInfo")
    info.resolve_depth_settings(cfg)
    return info
