"""Example r3d plugin: importing it registers the fuser `gated` (see `gated_fuser.py` and the README)."""
from .gated_fuser import GatedFuser  # noqa: F401

__version__ = "0.1.0"
