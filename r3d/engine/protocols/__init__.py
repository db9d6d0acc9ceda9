"""Anticipation protocols (`data.protocol`), registered in `r3d.registry.PROTOCOLS`.

| `data.protocol` | class | datasets | loss | metrics.json |
|---|---|---|---|---|
| ``next_action`` | `NextActionProtocol` | `AnticipationDataset` (τa/τo) | verb/noun/action CE | top-1/5, MT5R, collapse |
| ``long_term`` | `LongTermProtocol` | `LongTermDataset` (first α) | FUTR losses | MoC per (α, β) |
"""
from .base import AnticipationProtocol, build_protocol  # noqa: F401
from .long_term import LongTermProtocol  # noqa: F401  (registers "long_term")
from .next_action import NextActionProtocol  # noqa: F401  (registers "next_action")
