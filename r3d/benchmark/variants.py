"""The benchmark's variants (named config overrides) and presets (which variants, noise levels, seeds, epochs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..config import ConfigError, flatten, load_config, parse_override

VARIANTS: Dict[str, Tuple[str, ...]] = {
    "concat": ("model.fuser=concat",),
    "sum": ("model.fuser=sum",),
    "late": ("model.fuser=late",),
    "safuser": ("model.fuser=safuser",),  # AFFT: modality token + full attention
    "safuser_cross": ("model.fuser=safuser_cross",),  # R3D's block without RTF: cross-only mask
    "tokenfusion": ("model.fuser=tokenfusion",),
    "cen": ("model.fuser=cen",),
    "rtf_bn": ("model.fuser=rtf", "model.rtf.select=bn"),
    "rtf_svd": ("model.fuser=rtf", "model.rtf.select=svd"),
    "rtf_ebr": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true"),
    "rtf_kd": ("model.fuser=rtf", "model.rtf.select=bn", "model.kd.enabled=true"),  # cross-modal KD, rgb teaches depth
    "rtf_mdrop": ("model.fuser=rtf", "model.rtf.select=bn", "model.modality_dropout=0.25"),  # modality dropout p=0.25
    "rtf_mdrop50": ("model.fuser=rtf", "model.rtf.select=bn", "model.modality_dropout=0.5"),  # the same at p=0.5
    # r3d's own remedies (r3d/models/regularizers/unimodal.py, missing_view.py) and combinations of the published ones
    "rtf_uni": ("model.fuser=rtf", "model.rtf.select=bn", "model.unimodal.weight=1.0"),
    "rtf_mdrop_uni": ("model.fuser=rtf", "model.rtf.select=bn", "model.modality_dropout=0.25",
                      "model.unimodal.weight=1.0"),
    "rtf_mview": ("model.fuser=rtf", "model.rtf.select=bn", "model.missing_view.weight=0.5"),
    "rtf_ebr_mview": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true", "model.missing_view.weight=0.5"),
    "rtf_ebr_mview25": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true",
                        "model.missing_view.weight=0.25"),  # the same at weight 0.25
    "rtf_ebr_gview": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true",
                      "model.missing_view.weight=0.5", "model.missing_view.gate=probe"),  # each view's CE gated
    "rtf_ebr_gview_mean": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true",
                           "model.missing_view.weight=0.5", "model.missing_view.gate=probe",
                           "model.missing_view.probe_input=mean"),  # the gate's probes on time-averaged tokens
    "rtf_ebr_gview_top1": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true",
                           "model.missing_view.weight=0.5", "model.missing_view.gate=probe_top1",
                           "model.missing_view.probe_input=mean"),  # all or nothing, probes on averaged tokens
    "rtf_ebr_mdrop": ("model.fuser=rtf", "model.rtf.select=bn", "model.ebr.enabled=true",
                      "model.modality_dropout=0.25"),
    "rgb_only": ("model.modalities=[rgb]",),
    "depth_only": ("model.modalities=[depth]",),
}
UNIMODAL = {"rgb_only": "rgb", "depth_only": "depth"}  # reference variants and the stream each one is trained on
PLAIN_FUSERS = ("concat", "sum", "late", "safuser", "safuser_cross", "tokenfusion", "cen")  # no anti-collapse remedy
RTF_VARIANTS = ("rtf_bn", "rtf_svd")  # judged against every baseline
ERANK_REFERENCES = ("safuser_cross", "concat")  # RTF's fused erank is compared with these


def is_baseline(variant: str) -> bool:
    """Every variant that is not RTF (rtf_* includes RTF + EBR) is a baseline RTF must beat, unimodal ones included."""
    return not variant.startswith("rtf")


@dataclass
class GridSpec:
    """What to run. `overrides` apply to every run (before the variant's own); `videos` / `epochs` set
    synthetic.videos / train.epochs when not None."""

    variants: List[str]
    noise: List[float]
    seeds: List[int]
    config: str = "configs/synthetic.yaml"
    overrides: List[str] = field(default_factory=list)
    videos: Optional[int] = None
    epochs: Optional[int] = None
    preset: str = "custom"
    command: str = ""
    frozen: bool = False

    def base_overrides(self) -> List[str]:
        out: List[str] = list(FROZEN_OVERRIDES) if self.frozen else []
        if self.videos is not None:
            out.append(f"synthetic.videos={int(self.videos)}")
        if self.epochs is not None:
            out.append(f"train.epochs={int(self.epochs)}")
        return out + list(self.overrides)


# The frozen-feature protocol (R3D trains fusion and head on frozen backbone tokens): both backbones frozen at their
# seeded random init, their per-frame tokens extracted once per (noise level, seed, modalities) into OUT/features/ and
# read from there (`r3d.data.features`); feat_norm=batchnorm standardises the frozen channels, which otherwise share an
# offset that LayerNorm keeps (measured at noise 0, seed 0: concat 22 % action top-1 without it in 60 epochs,
# 82 % with it in 30).
FROZEN_OVERRIDES = ("model.rgb_backbone.freeze=true", "model.depth_backbone.freeze=true", "model.feat_norm=batchnorm",
                    "data.num_workers=0")
FULL = dict(variants=["concat", "sum", "late", "safuser", "safuser_cross", "tokenfusion", "cen", "rtf_bn", "rtf_svd",
                      "rtf_ebr", "rgb_only", "depth_only"],
            noise=[0.0, 0.5, 1.0], seeds=[0, 1, 2], videos=None, epochs=None, overrides=[])
# Measured: 580 CPU-seconds in all (2 datasets, 6 runs; 16.6 min wall while sharing 2 cores with other jobs at ~57 %
# of them), i.e. roughly 5-8 minutes on 2 idle cores. 32×32 frames, 48 videos (216 train / 72 val segments), 4 epochs.
QUICK = dict(variants=["concat", "rtf_bn", "rgb_only"], noise=[0.0, 1.0], seeds=[0], videos=48, epochs=4,
             overrides=["synthetic.size=32", "data.img_size=32", "train.log_with=none"])
# Every variant, 3 noise levels x 3 seeds, from cached tokens: 126 runs of 40-100 s of training (30 epochs)
# instead of ~10 min each.
FROZEN = dict(variants=list(VARIANTS), noise=[0.0, 0.5, 1.0], seeds=[0, 1, 2], videos=None, epochs=30,
              overrides=["train.log_with=none"], frozen=True)
PRESETS = {"full": FULL, "quick": QUICK, "frozen": FROZEN}


def default_variant(config: str) -> Optional[str]:
    """The variant that `config` itself trains (its overrides leave the config unchanged), or None: r3d's default
    for `configs/synthetic.yaml`. Derived from the config, so the claims follow a change of the default."""
    try:
        base = load_config(config)
    except (ConfigError, FileNotFoundError, OSError):
        return None
    for name, overrides in VARIANTS.items():
        if load_config(config, list(overrides)) == base:
            return name
    return None


def check_grid_overrides(overrides: List[str], variants: List[str]) -> None:
    """Refuse a grid-wide key=value that one of `variants` also sets to another value: the variant's own keys are
    applied after the grid's and would silently win (ConfigError naming both). Values are compared as parsed."""
    for given in overrides:
        for key, value in flatten(parse_override(given)).items():
            for name in variants:
                for own in VARIANTS.get(name, ()):
                    own_value = flatten(parse_override(own)).get(key, value)
                    if own_value != value:
                        raise ConfigError(f"override '{given}' sets config key '{key}', which variant '{name}' sets "
                                          f"itself ('{own}') and would win; run a variant that leaves '{key}' alone")


def variant_overrides(name: str) -> List[str]:
    """The config overrides of a named variant."""
    if name not in VARIANTS:
        raise KeyError(f"unknown benchmark variant '{name}'; known: {', '.join(VARIANTS)}")
    return list(VARIANTS[name])
