"""Per-frame token backbones. Importing this package registers the built-ins in `r3d.registry.BACKBONES` and the
built-in weight sources in `r3d.registry.WEIGHTS`."""
from . import timm_models  # noqa: F401  (registers r3d_* models in timm's registry)
from .frame2d import FrameBackbone2D  # noqa: F401
from .inflated3d import InflatedBackbone3D  # noqa: F401
from .linear import LinearDepthTokens  # noqa: F401
from .base import build_backbone  # noqa: F401
from .weights import WeightSource, WeightsRecord, weights_records  # noqa: F401
