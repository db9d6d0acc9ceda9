"""Former name of `r3d.data.long_term_dataset`, importable until r3d.engine imports from there (then delete this)."""
from .long_term_dataset import build_long_term_datasets  # noqa: F401
