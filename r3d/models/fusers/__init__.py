"""Fusers: {m: (B, T, C)} per-modality tokens + presence -> fused (B, T, C) tokens (contract in `base.py`).

One file per method; importing this package registers all of them in `r3d.registry.FUSERS`:
rtf / rtf_svd (R3D's RTF + SA-Fuser), safuser / safuser_cross (AFFT's SA-Fuser), tokenfusion (R3D's swap ablation),
cen (channel exchanging), concat, sum, late, identity (unimodal).
"""
from . import cen, concat, identity, late, rtf, safuser, sum, tokenfusion  # noqa: F401  (register the built-ins)
from .base import Fuser, FuserOutput

__all__ = ["Fuser", "FuserOutput"]
