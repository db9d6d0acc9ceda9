"""The feature cache (r3d/data/features.py, r3d/engine/extract.py, tools/extract_features.py).

Checked against the end-to-end frozen-backbone path on the tiny synthetic ROOT: the cached tokens are the backbone's
tokens of the evaluation-transformed frames; the same samples (windows, presence, missing-rate draws) give the same
logits (fp32, and within bf16 tolerance under autocast); a 1-epoch training run from the cache has the same per-step
losses, weights and metrics as the end-to-end one. A cache of another backbone, weights, transform or dataset, or one
lacking a video or a frame, is refused with a one-line error naming the manifest key / video / frame and the fix;
re-running an extraction skips finished videos.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from conftest import TINY_RUN
from r3d.config import load_config
from r3d.data.dataset import AnticipationDataset
from r3d.data.errors import DataError
from r3d.data.features import FeatureCache, FeatureDataset
from r3d.data.formats import build_info
from r3d.data.io import open_depth, read_rgb_frames
from r3d.data.transforms import build_transforms
from r3d.engine.builder import build_model
from r3d.engine.extract import check_model_matches_cache, extract_features

FROZEN = ["model.rgb_backbone.freeze=true", "model.depth_backbone.freeze=true"]


def _cfg(root, *extra):
    return load_config(None, [*TINY_RUN, *FROZEN, f"data.root={root}", *extra])


def _model(cfg, info):
    """The model exactly as tools/train.py builds it (seeded random init)."""
    from accelerate.utils import set_seed

    set_seed(int(cfg.seed))
    return build_model(cfg, info)


def _batch(ds):
    return default_collate([ds[i] for i in range(len(ds))])


@pytest.fixture(scope="module")
def cache(tiny_root, tmp_path_factory):
    """A float32 cache of the tiny ROOT (train + val windows), built once for the module."""
    out = tmp_path_factory.mktemp("feature_cache") / "cache"
    summary = extract_features(_cfg(tiny_root), out, progress=False)
    assert summary["extracted"] == summary["videos"] == 6 and summary["failed"] == 0
    return out


def test_cached_tokens_are_the_backbone_tokens_of_the_eval_frames(tiny_root, cache):
    """Independent route: decode two frames with the io readers, apply the evaluation transform, run the backbone."""
    cfg = _cfg(tiny_root)
    info = build_info(cfg)
    model = _model(cfg, info).eval()
    store = FeatureCache(cache)
    vid = sorted(store.videos)[0]
    frames = store.frames(vid, "rgb")[[0, -1]]
    tf = build_transforms(cfg.data, info.depth_min, info.depth_max, train=False)
    x = tf({"rgb": read_rgb_frames(info.video_path(vid), frames),
            "depth": open_depth(info.root, vid, info.depth_scale).read(frames), "rng": None})
    with torch.no_grad():
        for m in ("rgb", "depth"):
            want = model.backbones[m](x[m][None])[0]
            torch.testing.assert_close(store.read(vid, m, frames), want, rtol=1e-5, atol=1e-5)
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["tokens"]["backbone.rgb.name"] == "r3d_resnet_tiny"
    assert manifest["tokens"]["transform.img_size"] == 32 and manifest["dtype"] == "float32"
    assert manifest["weights_source"]["rgb"] == "random init, seed 0"


@pytest.mark.parametrize("split", ["train", "val"])
def test_same_samples_and_logits_as_end_to_end_fp32(tiny_root, cache, split):
    cfg = _cfg(tiny_root)
    e2e = AnticipationDataset(cfg, split, train=False)
    cached = FeatureDataset(_cfg(tiny_root, f"data.features={cache}"), split, train=False)
    assert cached.stats == e2e.stats and len(cached) == len(e2e)
    a, b = _batch(e2e), _batch(cached)
    assert "rgb" not in b and b["feats_rgb"].shape == (len(e2e), cfg.data.num_frames, 128)
    for key in ("frame_idx", "verb", "noun", "action", "index"):
        assert torch.equal(a[key], b[key])
    model = _model(cfg, e2e.info).eval()
    with torch.no_grad():
        la, lb = model(a), model(b)
    for k in la["logits"]:
        torch.testing.assert_close(lb["logits"][k], la["logits"][k], rtol=1e-5, atol=1e-5)
    for m in ("rgb", "depth"):
        torch.testing.assert_close(lb["tokens_pre"][m], la["tokens_pre"][m], rtol=1e-5, atol=1e-5)


def test_logits_within_bf16_tolerance_under_autocast(tiny_root, cache):
    cfg = _cfg(tiny_root)
    e2e = AnticipationDataset(cfg, "val", train=False)
    cached = FeatureDataset(_cfg(tiny_root, f"data.features={cache}"), "val", train=False)
    a, b = _batch(e2e), _batch(cached)
    model = _model(cfg, e2e.info).eval()
    with torch.no_grad():
        ref = model(a)["logits"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            la, lb = model(a)["logits"], model(b)["logits"]
    for k in ref:
        assert not torch.equal(la[k].float(), ref[k])  # autocast did run in bf16
        torch.testing.assert_close(lb[k].float(), la[k].float(), rtol=2e-2, atol=3e-2)
        torch.testing.assert_close(lb[k].float(), ref[k], rtol=2e-2, atol=3e-2)


def test_bfloat16_storage_is_the_rounded_float32_tokens(tiny_root, cache, tmp_path):
    out = tmp_path / "bf16"
    extract_features(_cfg(tiny_root), out, dtype="bfloat16", splits=["val"], progress=False)
    full, half = FeatureCache(cache), FeatureCache(out)
    for vid in half.videos:
        for m in ("rgb", "depth"):
            idx = half.frames(vid, m)
            assert np.isin(idx, full.frames(vid, m)).all()
            want = full.read(vid, m, idx).to(torch.bfloat16).float()
            assert torch.equal(half.read(vid, m, idx), want)


def test_missing_modality_and_missing_rate_follow_the_end_to_end_dataset(tiny_copy, tmp_path):
    """A video without depth (present False, zeros) and seeded per-sample RGB removal: identical samples and logits."""
    vid = sorted(p.name for p in (tiny_copy / "depth").iterdir())[0]
    shutil.rmtree(tiny_copy / "depth" / vid)
    extra = ["data.missing_rate.rgb=0.5"]
    extract_features(_cfg(tiny_copy, *extra), tmp_path / "c", progress=False)
    counts = {"missing_depth_samples": 0, "dropped_rgb": 0}
    for split in ("train", "val"):
        e2e = AnticipationDataset(_cfg(tiny_copy, *extra), split, train=False)
        cached = FeatureDataset(_cfg(tiny_copy, *extra, f"data.features={tmp_path / 'c'}"), split, train=False)
        assert cached.stats == e2e.stats
        counts = {k: v + cached.stats[k] for k, v in counts.items()}
        a, b = _batch(e2e), _batch(cached)
        for m in ("rgb", "depth"):
            assert torch.equal(a["present"][m], b["present"][m])
            assert torch.equal(b[f"feats_{m}"][~b["present"][m]], torch.zeros_like(b[f"feats_{m}"][~b["present"][m]]))
        model = _model(_cfg(tiny_copy), e2e.info).eval()
        with torch.no_grad():
            la, lb = model(a)["logits"], model(b)["logits"]
        for k in la:
            torch.testing.assert_close(lb[k], la[k], rtol=1e-5, atol=1e-5)
    assert counts["missing_depth_samples"] > 0 and counts["dropped_rgb"] > 0  # both cases were exercised


def test_training_from_the_cache_reproduces_end_to_end_training(tiny_root, cache, tmp_path):
    """One epoch both ways through r3d.engine.trainer.train: same per-step losses, weights and validation metrics."""
    from accelerate.state import AcceleratorState

    from r3d.engine.trainer import train

    metrics = {}
    AcceleratorState._reset_state(True)
    try:
        for way, extra in (("e2e", []), ("cache", [f"data.features={cache}"])):
            metrics[way] = train(_cfg(tiny_root, "train.epochs=1", f"work_dir={tmp_path / way}", *extra))
            AcceleratorState._reset_state(True)
    finally:
        AcceleratorState._reset_state(True)
    logs = {w: [json.loads(line) for line in (tmp_path / w / "train_log.jsonl").read_text().splitlines()]
            for w in metrics}
    assert len(logs["e2e"]) == len(logs["cache"]) == 4
    for x, y in zip(logs["e2e"], logs["cache"]):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-5) and y["lr"] == x["lr"]
    wa, wb = load_file(str(tmp_path / "e2e" / "model.safetensors")), load_file(str(tmp_path / "cache" /
                                                                                     "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        if k.startswith("backbones."):
            assert torch.equal(wa[k], wb[k]), k  # frozen: untouched either way
        else:
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-5)
    for task in ("verb", "noun", "action"):
        assert metrics["cache"][task] == pytest.approx(metrics["e2e"][task], abs=1e-6)
    assert metrics["cache"]["data"]["train"] == metrics["e2e"]["data"]["train"]


@pytest.mark.parametrize("override, key", [
    ("model.rgb_backbone.name=resnet10t", "backbone.rgb.name"),
    ("data.img_size=48", "transform.img_size"),
    ("data.depth_max=4.0", "transform.depth_max"),
    ("data.rgb_mean=[0.5,0.5,0.5]", "transform.rgb_mean"),
])
def test_cache_of_another_backbone_or_transform_is_refused(tiny_root, cache, override, key):
    with pytest.raises(DataError) as e:
        FeatureDataset(_cfg(tiny_root, f"data.features={cache}", override), "train", train=True)
    msg = str(e.value)
    assert f"manifest key '{key}'" in msg and "re-run tools/extract_features.py" in msg and "\n" not in msg


def test_cache_of_other_weights_is_refused(tiny_root, cache):
    """Another seed gives other random backbone weights: the model check names the weights hash."""
    cfg = _cfg(tiny_root, f"data.features={cache}", "seed=1")
    ds = FeatureDataset(cfg, "train", train=True)  # the config keys match ...
    with pytest.raises(DataError, match=r"manifest key 'backbone\.rgb\.weights_sha256'.*re-run "
                                        r"tools/extract_features\.py") as e:
        check_model_matches_cache(_model(cfg, ds.info), ds)  # ... the weights do not
    assert "\n" not in str(e.value)  # tools/train.py and tools/test.py print a DataError as one line
    check_model_matches_cache(_model(_cfg(tiny_root), ds.info), ds)  # seed 0: the cache's own weights pass


def test_missing_video_in_the_cache_is_refused_naming_it(tiny_root, tmp_path):
    out = tmp_path / "val_only"
    extract_features(_cfg(tiny_root), out, splits=["val"], progress=False)
    train_videos = sorted({s.video_id for s in build_info(_cfg(tiny_root)).segments("train")})
    with pytest.raises(DataError) as e:
        FeatureDataset(_cfg(tiny_root, f"data.features={out}"), "train", train=True)
    assert f"video '{train_videos[0]}' is not in the feature cache" in str(e.value)
    assert "--splits" in str(e.value)
    FeatureDataset(_cfg(tiny_root, f"data.features={out}"), "val", train=False)  # what it has is usable


def test_missing_frames_in_the_cache_are_refused_naming_them(tiny_root, cache):
    """A run sampling other windows (longer observed window) needs frames the cache does not hold."""
    with pytest.raises(DataError, match=r"rgb frame \d+ of video '\w+'.*has no cached tokens.*data\.tau_o=1\.5"):
        FeatureDataset(_cfg(tiny_root, f"data.features={cache}", "data.tau_o=1.5"), "val", train=False)


def test_changed_source_data_is_refused(tiny_copy, tmp_path):
    extract_features(_cfg(tiny_copy), tmp_path / "c", splits=["val"], progress=False)
    vid = sorted({s.video_id for s in build_info(_cfg(tiny_copy)).segments("val")})[0]
    with open(tiny_copy / "videos" / f"{vid}.mp4", "ab") as f:
        f.write(b"\0" * 16)  # a re-rendered file: same name, other content
    with pytest.raises(DataError, match=rf"{vid}\.mp4: \d+ bytes, but the feature cache .* was extracted from"):
        FeatureDataset(_cfg(tiny_copy, f"data.features={tmp_path / 'c'}"), "val", train=False)


def test_training_needs_frozen_backbones_and_no_augmentation(tiny_root, cache):
    base = [f"data.features={cache}"]
    with pytest.raises(DataError, match=r"config key 'model\.depth_backbone\.freeze' is false.*set "
                                        r"model\.depth_backbone\.freeze=true"):
        FeatureDataset(_cfg(tiny_root, *base, "model.depth_backbone.freeze=false"), "train", train=True)
    with pytest.raises(DataError, match=r"config key 'data\.hflip'"):
        FeatureDataset(_cfg(tiny_root, *base, "data.hflip=0.5"), "train", train=True)
    # Evaluation uses the centre crop anyway, and a trained (unfrozen) checkpoint may be evaluated from its cache.
    FeatureDataset(_cfg(tiny_root, *base, "model.depth_backbone.freeze=false"), "val", train=False)


def test_window_mixing_backbone_cannot_be_cached(tiny_root, tmp_path):
    with pytest.raises(DataError, match=r"config key 'model\.rgb_backbone\.kind'.*cannot be cached per frame"):
        extract_features(_cfg(tiny_root, "model.rgb_backbone.kind=inflated3d"), tmp_path / "c", progress=False)


def test_resumed_extraction_skips_finished_videos(tiny_root, cache, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(cache, out)
    shards = sorted((out / "shards").iterdir())
    victim = shards[2]
    original = load_file(str(victim))
    victim.unlink()  # as if killed before this video's shard was renamed into place
    (out / "shards" / f".{victim.name}.tmp123").write_bytes(b"partial")
    stamps = {p.name: p.stat().st_mtime_ns for p in shards if p != victim}
    summary = extract_features(_cfg(tiny_root), out, progress=False)
    assert (summary["extracted"], summary["skipped"]) == (1, 5)
    assert summary["frames"]["rgb"] == len(FeatureCache(out).frames(victim.stem, "rgb")) > 0
    assert {p.name: p.stat().st_mtime_ns for p in shards if p != victim} == stamps  # finished shards untouched
    redone = load_file(str(victim))  # the redone video has the same tokens
    assert redone.keys() == original.keys() and all(torch.equal(redone[k], original[k]) for k in original)
    assert not list((out / "shards").glob(".*.tmp*"))  # the killed run's leftover is gone
    again = extract_features(_cfg(tiny_root), out, progress=False)
    assert (again["extracted"], again["skipped"]) == (0, 6)
    with pytest.raises(DataError, match=r"manifest key 'transform\.img_size' is 32 but this extraction has 48"):
        extract_features(_cfg(tiny_root, "data.img_size=48"), out, progress=False)
