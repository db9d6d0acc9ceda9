"""Anticipation heads. Importing this package registers the built-ins in `r3d.registry.HEADS`."""
from .causal_transformer import CausalTransformerHead  # noqa: F401
from .futr import FUTRHead  # noqa: F401
