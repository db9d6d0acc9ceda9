"""r3d: RGB-D human action anticipation with collapse-aware fusion (RTF, EBR), built on timm and accelerate."""
__version__ = "0.1.0"
