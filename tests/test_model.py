"""The assembled anticipator: stages, missing-modality handling, action-from-product, unimodal and late fusion."""
import pytest
import torch
import torch.nn.functional as F

from r3d.config import load_config
from r3d.engine.losses import anticipation_loss
from r3d.models.anticipator import Anticipator

NUM = {"verb": 3, "noun": 4, "action": 5}
ACTIONS = [[0, 0], [1, 1], [2, 2], [0, 3], [1, 0]]
TINY = ["model.dim=16", "model.head_args.depth=1", "data.img_size=32", "data.num_frames=4"]


def _batch(b=2, t=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"rgb": torch.randn(b, t, 3, size, size, generator=g), "depth": torch.rand(b, t, 1, size, size, generator=g),
            "present": {"rgb": torch.ones(b, dtype=torch.bool), "depth": torch.ones(b, dtype=torch.bool)},
            "verb": torch.tensor([0, 2]), "noun": torch.tensor([3, 1]), "action": torch.tensor([3, 7])}


def _model(*overrides):
    torch.manual_seed(0)
    return Anticipator(load_config(None, [*TINY, *overrides]), NUM, ACTIONS)


@pytest.mark.parametrize("fuser", ["rtf", "concat", "late", "safuser"])
def test_forward_shapes_and_loss(fuser):
    model = _model(f"model.fuser={fuser}")
    out = model(_batch())
    assert {k: v.shape for k, v in out["logits"].items()} == {"verb": (2, 3), "noun": (2, 4), "action": (2, 5)}
    for m in ("rgb", "depth"):
        assert out["tokens_pre"][m].shape == (2, 4, 16) and out["tokens_post"][m].shape == (2, 4, 16)
    loss, parts = anticipation_loss(out, _batch(), {"verb": 1.0, "noun": 1.0, "action": 1.0})
    # Action label 7 is outside the 5-class vocabulary (an unseen pair): ignored, not a crash.
    ref = F.cross_entropy(out["logits"]["action"][:1], torch.tensor([3]))
    assert float(parts["action"]) == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()


def test_stages_compose_to_forward():
    model = _model().eval()
    batch = _batch()
    with torch.no_grad():
        direct = model(batch)["logits"]
        feats = model.encode_frames(batch)
        staged = model.forward_tokens(model.project(feats), batch["present"])["logits"]
        cached = model({"feats_rgb": feats["rgb"], "feats_depth": feats["depth"], "present": batch["present"]})
    for k in direct:
        torch.testing.assert_close(direct[k], staged[k])
        torch.testing.assert_close(direct[k], cached["logits"][k])


def test_missing_modality_is_zeros_plus_mask():
    model = _model("model.fuser=concat").eval()
    batch = _batch()
    batch["present"]["depth"] = torch.tensor([True, False])
    other = dict(batch, depth=batch["depth"].clone())
    other["depth"][1] = 123.0  # whatever the absent input holds must not matter
    with torch.no_grad():
        a, b = model(batch), model(other)
    assert torch.equal(a["tokens_pre"]["depth"][1], torch.zeros(4, 16))
    torch.testing.assert_close(a["logits"]["action"], b["logits"]["action"])


def test_action_from_product_is_log_pv_plus_log_pn():
    model = _model("model.action_from=product").eval()
    with torch.no_grad():
        out = model(_batch())["logits"]
    lv, ln = F.log_softmax(out["verb"], -1), F.log_softmax(out["noun"], -1)
    expected = torch.stack([lv[:, v] + ln[:, n] for v, n in ACTIONS], 1)
    torch.testing.assert_close(out["action"], expected)


def test_unimodal_model_builds_only_its_backbone():
    model = _model("model.modalities=[depth]")
    assert list(model.backbones) == ["depth"]
    out = model({k: v for k, v in _batch().items() if k != "rgb"})
    assert out["logits"]["action"].shape == (2, 5) and out["fused"].shape == (2, 4, 16)


def test_late_fusion_averages_present_heads():
    model = _model("model.fuser=late").eval()
    batch = _batch()
    batch["present"]["rgb"] = torch.tensor([False, True])
    with torch.no_grad():
        out = model(batch)
        tokens = model.project(model.encode_frames(batch))
        post = out["tokens_post"]
        rgb_only = model.heads["rgb"](post["rgb"])["verb"]
        depth_only = model.heads["depth"](post["depth"])["verb"]
    torch.testing.assert_close(out["logits"]["verb"][0], depth_only[0])
    torch.testing.assert_close(out["logits"]["verb"][1], (rgb_only[1] + depth_only[1]) / 2)
    assert tokens["rgb"].shape == (2, 4, 16)


def test_feat_norm_batchnorm_standardises_present_backbone_channels():
    """model.feat_norm=batchnorm: each backbone channel is standardised over batch x time before the projection, with
    absent samples kept out of the statistics; the default (none) leaves the model's parameters as they were."""
    assert not any(k.startswith("feat_norms") for k in _model().state_dict())
    model = _model("model.feat_norm=batchnorm", "model.fuser=concat").train()
    g = torch.Generator().manual_seed(1)
    feats = {m: 50.0 + 3.0 * torch.randn(4, 4, model.backbones[m].num_features, generator=g) for m in model.modalities}
    present = {"rgb": torch.ones(4, dtype=torch.bool), "depth": torch.tensor([True, True, False, True])}
    feats["depth"][2] = 1e6  # an absent sample's input must not enter the statistics
    tokens = model.project(feats, present)
    for m in model.modalities:
        bn = model.feat_norms[m]
        x = feats[m][present[m]].reshape(-1, feats[m].shape[-1])
        mean, var = x.mean(0), x.var(0, unbiased=False)
        expected = model.proj[m]((feats[m] - mean) / torch.sqrt(var + bn.eps))
        keep = present[m]
        torch.testing.assert_close(tokens[m][keep], expected[keep], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(bn.running_mean, 0.9 * torch.zeros_like(mean) + 0.1 * mean)
    with pytest.raises(ValueError, match="model.feat_norm"):
        _model("model.feat_norm=layer")
