"""Backbones built from the config: local pretrained weights arrive exactly (RGB) or summed over the input channels
(depth stem), the I3D inflation reproduces the 2-D model on a clip of identical frames, and nothing is downloaded."""
import copy

import pytest
import timm
import torch
from safetensors.torch import save_file

from r3d.config import load_defaults
from r3d.models.backbones import build_backbone
from r3d.models.backbones.inflated3d import adapt_input_conv3d, inflate_2d_to_3d

NAME = "r3d_resnet_tiny"
STEM = "conv1.0.weight"  # first conv of the deep stem (timm pretrained_cfg['first_conv'] = 'conv1.0')
IMG = 32


def _section(modality="rgb", **kw):
    section = copy.deepcopy(load_defaults().model[f"{modality}_backbone"])
    section.update(name=NAME, **kw)
    return section


def _randomised_state(model):
    """State dict with every float tensor (incl. BN γ, β and running stats) perturbed, at the scale of timm's init, so
    that each value is recognisable and activations stay finite."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in model.state_dict().items():
        if "running_var" in k:
            v = v * (0.5 + torch.rand(v.shape, generator=g))
        elif v.is_floating_point():
            v = v + 0.1 * torch.randn(v.shape, generator=g)
        out[k] = v.contiguous()
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A timm 2-D checkpoint (with its 1000-class classifier) saved as safetensors, and its tensors."""
    state = _randomised_state(timm.create_model(NAME, pretrained=False))
    path = tmp_path_factory.mktemp("weights") / f"{NAME}.safetensors"
    save_file(state, str(path))
    return str(path), state


def _clip(b=2, t=4, c=3, identical=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    if identical:
        return torch.randn(b, 1, c, IMG, IMG, generator=g).expand(b, t, c, IMG, IMG).contiguous()
    return torch.randn(b, t, c, IMG, IMG, generator=g)


def _check_loaded(model_state, ckpt_state, time_kernel=None, depth=False):
    """Every backbone tensor equals the checkpoint's (classifier dropped); 5-D convs are the 2-D ones repeated / t."""
    assert set(model_state) == {k for k in ckpt_state if not k.startswith("fc.")}
    for k, v in model_state.items():
        ref = ckpt_state[k]
        if k == STEM and depth:
            ref = ref[:, 0:1] + ref[:, 1:2] + ref[:, 2:3]  # timm's rule for in_chans=1: sum the RGB stem
        if time_kernel is not None and v.ndim == 5:
            t = time_kernel if ref.shape[-1] > 1 else 1
            assert v.shape == (*ref.shape[:2], t, *ref.shape[2:]), k
            for i in range(t):
                torch.testing.assert_close(v[:, :, i], ref / t, rtol=1e-6, atol=1e-7, msg=k)
        else:
            assert torch.equal(v, ref), k


@pytest.mark.parametrize("modality", ["rgb", "depth"])
def test_frame2d_loads_local_file_through_config(ckpt, modality):
    path, state = ckpt
    bb = build_backbone(modality, _section(modality, kind="frame2d", pretrained=True, pretrained_file=path), IMG)
    _check_loaded(bb.model.state_dict(), state, depth=modality == "depth")


@pytest.mark.parametrize("modality", ["rgb", "depth"])
def test_inflated3d_loads_2d_file_and_inflates_it(ckpt, modality):
    path, state = ckpt
    bb = build_backbone(modality, _section(modality, kind="inflated3d", pretrained_file=path, time_kernel=3), IMG)
    _check_loaded(bb.model.state_dict(), state, time_kernel=3, depth=modality == "depth")
    # stem and 3x3 convs are inflated to 3 frames, 1x1 convs (downsample projections) stay 1x1x1
    assert bb.model.conv1[0].weight.shape[2] == 3 and bb.model.layer1[0].conv1.weight.shape[2] == 3
    assert bb.model.layer2[0].downsample[1].weight.shape[2:] == (1, 1, 1)


@pytest.mark.parametrize("modality", ["rgb", "depth"])
@pytest.mark.parametrize("causal", [False, True])
def test_inflated_model_equals_2d_model_on_identical_frames(ckpt, modality, causal):
    path, _ = ckpt
    bb2 = build_backbone(modality, _section(modality, kind="frame2d", pretrained_file=path), IMG).eval()
    bb3 = build_backbone(modality, _section(modality, kind="inflated3d", pretrained_file=path, time_causal=causal),
                         IMG).eval()
    x = _clip(c=bb2.model.conv1[0].in_channels, identical=True)
    with torch.no_grad():
        y2, y3 = bb2(x), bb3(x)
    assert y3.shape == y2.shape == (2, 4, bb3.num_features) and bb3.num_features == 128
    torch.testing.assert_close(y3, y2, rtol=1e-4, atol=1e-5)  # every frame, the clip's ends included


def test_time_kernel_1_is_the_per_frame_model_on_any_clip(ckpt):
    path, _ = ckpt
    bb2 = build_backbone("rgb", _section(kind="frame2d", pretrained_file=path), IMG).eval()
    bb3 = build_backbone("rgb", _section(kind="inflated3d", pretrained_file=path, time_kernel=1), IMG).eval()
    x = _clip()
    with torch.no_grad():
        torch.testing.assert_close(bb3(x), bb2(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_tokens_mix_time_and_causal_padding_never_looks_ahead(ckpt, causal):
    path, _ = ckpt
    bb = build_backbone("rgb", _section(kind="inflated3d", pretrained_file=path, time_causal=causal), IMG).eval()
    x = _clip(t=6)
    x2 = x.clone()
    x2[:, -1] = torch.randn_like(x2[:, -1])  # change only the last frame
    with torch.no_grad():
        d = (bb(x) - bb(x2)).abs().amax(dim=(0, 2))  # (T,) change of each frame's token
    assert d[-1] > 1e-3
    if causal:
        assert d[:-1].max() < 1e-6  # earlier tokens are untouched
    else:
        assert d[-2] > 1e-3  # centred padding: frame T-2 sees frame T-1 (a per-frame model would give 0)


def test_adapt_input_conv3d_sums_exactly():
    g = torch.Generator().manual_seed(0)
    w = torch.randint(-50, 50, (8, 3, 3, 5, 5), generator=g).float()  # integers: sums are exact in float32
    one = adapt_input_conv3d(1, w)
    assert one.shape == (8, 1, 3, 5, 5)
    assert torch.equal(one, w[:, 0:1] + w[:, 1:2] + w[:, 2:3])
    assert torch.equal(adapt_input_conv3d(3, w), w)
    four = adapt_input_conv3d(4, w)  # timm's rule: repeat the channels, scale by 3/4
    assert torch.equal(four, torch.cat([w, w[:, :1]], dim=1) * 0.75)
    with pytest.raises(ValueError, match="5-D"):
        adapt_input_conv3d(1, w[:, :, 0])


def test_inflated3d_loads_a_3d_checkpoint_and_sums_its_stem_for_depth(ckpt, tmp_path):
    path, _ = ckpt
    src = build_backbone("rgb", _section(kind="inflated3d", pretrained_file=path), IMG)
    with torch.no_grad():  # make the time slices differ, so that the checkpoint is truly 3-D
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    state = {k: v.contiguous() for k, v in src.state_dict().items()}  # keys "model.conv1.0.weight", ...
    file3d = tmp_path / "inflated.safetensors"
    save_file(state, str(file3d))

    rgb = build_backbone("rgb", _section(kind="inflated3d", pretrained_file=str(file3d)), IMG)
    assert all(torch.equal(v, state[k]) for k, v in rgb.state_dict().items())
    depth = build_backbone("depth", _section("depth", kind="inflated3d", pretrained_file=str(file3d)), IMG)
    for k, v in depth.state_dict().items():
        w = state[k]
        ref = w[:, 0:1] + w[:, 1:2] + w[:, 2:3] if k == f"model.{STEM}" else w
        torch.testing.assert_close(v, ref, rtol=0, atol=1e-6, msg=k)
    assert depth.model.conv1[0].weight.shape[1] == 1

    with pytest.raises(RuntimeError, match="time_kernel"):
        build_backbone("rgb", _section(kind="inflated3d", pretrained_file=str(file3d), time_kernel=5), IMG)


@pytest.mark.parametrize("kind", ["frame2d", "inflated3d"])
def test_pretrained_without_file_is_an_error_not_a_download(kind, monkeypatch):
    def no_download(*a, **k):
        raise AssertionError("tried to fetch weights")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", no_download)
    with pytest.raises(ValueError, match="pretrained_file"):
        build_backbone("rgb", _section(kind=kind, pretrained=True), IMG)
    with pytest.raises(FileNotFoundError, match="pretrained_file"):
        build_backbone("rgb", _section(kind=kind, pretrained_file="/nonexistent/w.safetensors"), IMG)


def test_default_sections_build_every_kind_with_shape_b_t_f():
    x = {"rgb": _clip(t=3), "depth": _clip(t=3, c=1)}
    for kind in ["frame2d", "inflated3d", "linear"]:
        for m in ["rgb", "depth"]:
            bb = build_backbone(m, _section(m, kind=kind), IMG)
            y = bb(x[m])
            assert y.shape == (2, 3, bb.num_features), (kind, m)


def test_inflated3d_trains_and_freezes():
    bb = build_backbone("depth", _section("depth", kind="inflated3d"), IMG).train()
    bb(_clip(t=3, c=1)).square().mean().backward()
    assert all(p.grad is not None for p in bb.parameters())
    assert bb.model.conv1[0].weight.grad.abs().sum() > 0  # reaches the inflated stem (timm zero-inits last BN γ)
    frozen = build_backbone("depth", _section("depth", kind="inflated3d", freeze=True), IMG).train()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not any(m.training for m in frozen.model.modules())  # BatchNorm3d keeps its statistics


def test_unsupported_models_and_modules_are_named():
    with pytest.raises(TypeError, match="layer1.0.se"):
        inflate_2d_to_3d(timm.create_model("seresnet18", pretrained=False, num_classes=0))
    with pytest.raises(TypeError, match="MobileNetV3"):
        inflate_2d_to_3d(timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0))
    with pytest.raises(ValueError, match="time_kernel"):
        inflate_2d_to_3d(timm.create_model(NAME, pretrained=False), time_kernel=0)


def test_inflates_torchvision_style_resnet18():
    m2 = timm.create_model("resnet18", pretrained=False, num_classes=0).eval()
    m3 = inflate_2d_to_3d(copy.deepcopy(m2), time_kernel=3).eval()
    x = _clip(b=1, t=3, identical=True)
    with torch.no_grad():
        y2 = m2(x.flatten(0, 1))
        y3 = m3.forward_head(m3.forward_features(x.transpose(1, 2)).transpose(1, 2).flatten(0, 1))
    torch.testing.assert_close(y3, y2, rtol=1e-4, atol=1e-5)
