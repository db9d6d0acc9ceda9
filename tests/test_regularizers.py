"""EBR, cross-modal KD and modality dropout: checked with numbers (gradients, hand-set weights), not "it runs"."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from r3d.models.regularizers.dropout import ModalityDropout
from r3d.models.regularizers.ebr import ExplicitBasisReallocation
from r3d.models.regularizers.kd import CrossModalKD

MODS = ["rgb", "depth"]


def _tokens(b=4, t=3, c=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, t, c, generator=g) for m in MODS}


def _present(b=4, **absent):
    p = {m: torch.ones(b, dtype=torch.bool) for m in MODS}
    for m, idx in absent.items():
        p[m][idx] = False
    return p


@pytest.mark.parametrize("lam", [0.01, 0.5])
def test_grl_gives_projector_minus_lambda_times_the_discriminator_loss_gradient(lam):
    torch.manual_seed(0)
    ebr = ExplicitBasisReallocation(MODS, dim=8, g_dim=6, hidden=10, lam=lam).train()
    tokens, present = _tokens(), _present()
    _, _, losses, stats = ebr(tokens, present)
    params = list(ebr.projector.parameters())
    g_grl = torch.autograd.grad(losses["ebr_md"], params)
    # The same loss without the GRL: CE of ψ on the projected tokens, as ψ itself minimises it.
    feats = torch.cat([ebr.projector[m](tokens[m]).reshape(-1, 6) for m in MODS])
    labels = torch.cat([torch.full((12,), i) for i in range(2)])
    plain = F.cross_entropy(ebr.discriminator(feats), labels)
    g_plain = torch.autograd.grad(plain, params)
    for a, b in zip(g_grl, g_plain):
        torch.testing.assert_close(a, -lam * b, rtol=1e-5, atol=1e-7)
    assert stats["ebr_md"] == pytest.approx(plain.item(), rel=1e-5)
    assert 0.0 <= float(stats["ebr_disc_acc"]) <= 1.0


def test_discriminator_gets_plus_lambda_gradient():
    torch.manual_seed(1)
    ebr = ExplicitBasisReallocation(MODS, dim=8, g_dim=6, hidden=10, lam=0.3).train()
    tokens, present = _tokens(seed=1), _present()
    _, _, losses, _ = ebr(tokens, present)
    params = list(ebr.discriminator.parameters())
    g = torch.autograd.grad(losses["ebr_md"], params)
    feats = torch.cat([ebr.projector[m](tokens[m]).reshape(-1, 6) for m in MODS]).detach()
    labels = torch.cat([torch.full((12,), i) for i in range(2)])
    g_ref = torch.autograd.grad(0.3 * F.cross_entropy(ebr.discriminator(feats), labels), params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def _set_linear(seq: nn.Sequential, first: torch.Tensor, second: torch.Tensor) -> None:
    with torch.no_grad():
        seq[0].weight.copy_(first)
        seq[0].bias.zero_()
        seq[2].weight.copy_(second)
        seq[2].bias.zero_()


def test_substitution_decodes_the_other_embedding_with_the_missing_modalitys_own_decoder():
    c, d, h = 2, 2, 2
    ebr = ExplicitBasisReallocation(MODS, dim=c, g_dim=d, hidden=h, lam=0.0).eval()
    eye = torch.eye(2)
    # Hand-set weights with positive inputs so GELU acts on known values: projectors are identity, the depth decoder
    # doubles, the rgb decoder triples (both through GELU at the hidden layer).
    for m in MODS:
        _set_linear(ebr.projector[m], eye, eye)
    _set_linear(ebr.decoder["rgb"], eye, 3 * eye)
    _set_linear(ebr.decoder["depth"], eye, 2 * eye)
    rgb = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # (B=2, T=1, C=2)
    depth = torch.tensor([[[5.0, 6.0]], [[7.0, 8.0]]])
    present = {"rgb": torch.tensor([True, True]), "depth": torch.tensor([True, False])}
    z_hat, new_present, _, stats = ebr({"rgb": rgb, "depth": depth * present["depth"].view(-1, 1, 1)}, present)
    g_rgb = F.gelu(rgb)  # projector: Linear(eye) → GELU → Linear(eye)
    expected_depth_sample1 = 2 * F.gelu(g_rgb[1])  # depth's decoder on rgb's embedding
    torch.testing.assert_close(z_hat["depth"][1], expected_depth_sample1)
    torch.testing.assert_close(z_hat["depth"][0], 2 * F.gelu(F.gelu(depth[0])))  # present: its own h⁻¹(h(z))
    torch.testing.assert_close(z_hat["rgb"], 3 * F.gelu(g_rgb))
    assert new_present["depth"].tolist() == [True, True]
    assert float(stats["ebr_substituted"]) == 1.0


def test_ranking_uses_only_pairs_where_both_are_present():
    mods = ["rgb", "depth", "ir"]
    ebr = ExplicitBasisReallocation(mods, dim=4, g_dim=4, hidden=4, lam=0.0).eval()
    for m in mods:
        _set_linear(ebr.projector[m], torch.eye(4), torch.eye(4))
    base = torch.tensor([1.0, 0.5, 0.2, 0.1])
    tokens = {"rgb": base.expand(2, 1, 4).clone(),
              "depth": torch.stack([base, torch.tensor([0.1, 0.2, 0.3, 4.0])]).view(2, 1, 4),
              "ir": torch.tensor([0.1, 3.0, 0.1, 0.1]).expand(2, 1, 4).clone()}
    # Sample 1's depth is absent: its (dissimilar) tokens must not enter the rgb-depth similarity.
    present = {"rgb": torch.tensor([True, True]), "depth": torch.tensor([True, False]), "ir": torch.tensor([True, True])}
    tokens["depth"] = tokens["depth"] * present["depth"].view(-1, 1, 1)
    ebr.begin_calibration()
    ebr(tokens, present)
    info = ebr.end_calibration()
    assert info["similarity"]["rgb"]["depth"] == pytest.approx(1.0, abs=1e-6)  # only sample 0: identical
    assert info["ranking"]["rgb"] == ["depth", "ir"]
    g_rgb, g_ir = F.normalize(F.gelu(base), dim=0), F.normalize(F.gelu(tokens["ir"][0, 0]), dim=0)
    assert info["similarity"]["rgb"]["ir"] == pytest.approx(float(g_rgb @ g_ir), abs=1e-5)


def test_interleaving_period_switches_the_discriminator_loss():
    ebr = ExplicitBasisReallocation(MODS, dim=8, lam=0.1, period=2).train()
    on = []
    for epoch in range(6):
        ebr.set_epoch(epoch)
        on.append("ebr_md" in ebr(_tokens(), _present())[2])
    assert on == [True, True, False, False, True, True]


@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_kd_sends_no_gradient_into_the_teacher(loss):
    kd = CrossModalKD("rgb", "depth", loss=loss).train()
    rgb_enc, depth_enc = nn.Linear(4, 8), nn.Linear(4, 8)
    x = torch.randn(3, 2, 4)
    tokens = {"rgb": rgb_enc(x), "depth": depth_enc(x)}
    _, _, losses, _ = kd(tokens, _present(3))
    losses["kd"].backward()
    assert all(p.grad is None for p in rgb_enc.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in depth_enc.parameters())
    s, t = tokens["depth"].detach(), tokens["rgb"].detach()
    ref = F.mse_loss(s, t) if loss == "mse" else (1 - F.cosine_similarity(s, t, dim=-1)).mean()
    assert float(losses["kd"].detach()) == pytest.approx(float(ref.detach()), rel=1e-5)


def test_kd_kl_uses_the_head_without_teacher_gradient():
    kd = CrossModalKD("rgb", "depth", loss="kl", temperature=2.0).train()
    head_lin = nn.Linear(8, 5)

    def head(z):
        return {"verb": head_lin(z.mean(1))}

    rgb_enc, depth_enc = nn.Linear(4, 8), nn.Linear(4, 8)
    x = torch.randn(3, 2, 4)
    tokens = {"rgb": rgb_enc(x), "depth": depth_enc(x)}
    out = kd.head_losses(tokens, _present(3), head)
    t = F.softmax(head_lin(tokens["rgb"].mean(1)).detach() / 2, -1)
    s = F.log_softmax(head_lin(tokens["depth"].mean(1)) / 2, -1)
    ref = (t * (t.log() - s)).sum(-1).mean() * 4
    assert float(out["kd"].detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    out["kd"].backward()
    assert all(p.grad is None for p in rgb_enc.parameters())


def test_modality_dropout_rate_and_never_drops_everything():
    torch.manual_seed(0)
    md = ModalityDropout(MODS, p=0.5).train()
    b = 4000
    tokens = {m: torch.ones(b, 2, 3) for m in MODS}
    out_t, out_p, _, stats = md(tokens, _present(b))
    both_dropped = ~out_p["rgb"] & ~out_p["depth"]
    assert not both_dropped.any()
    # P(drop rgb) = P(rgb dropped, depth kept) + half of P(both drawn) = 0.25 + 0.125
    assert float((~out_p["rgb"]).float().mean()) == pytest.approx(0.375, abs=0.03)
    for m in MODS:
        assert torch.equal(out_t[m].sum((1, 2)) == 0, ~out_p[m])
    md.eval()
    same_t, same_p, _, _ = md(tokens, _present(b))
    assert all(bool(same_p[m].all()) for m in MODS) and same_t is tokens


def test_unimodal_supervision_adds_each_streams_own_ce_through_the_shared_head():
    """loss = fused CE + w · Σ_m CE(head(tokens_m)) over the samples where m is present, computed here by hand."""
    from r3d.config import load_config
    from r3d.engine.losses import anticipation_loss
    from r3d.models.anticipator import Anticipator

    torch.manual_seed(0)
    w = 0.5
    cfg = load_config(None, ["model.dim=16", "model.head_args.depth=1", "data.img_size=16", "model.fuser=concat",
                             f"model.unimodal.weight={w}"])
    nc = {"verb": 3, "noun": 2, "action": 4}
    model = Anticipator(cfg, nc, actions=[[0, 0], [1, 1], [2, 0], [2, 1]]).train()
    b, t = 4, 8
    feats = {m: torch.randn(b, t, model.backbones[m].num_features) for m in ("rgb", "depth")}
    present = {"rgb": torch.tensor([True, True, True, True]), "depth": torch.tensor([True, False, True, True])}
    batch = {"verb": torch.tensor([0, 1, 2, 0]), "noun": torch.tensor([1, 0, 1, 0]),
             "action": torch.tensor([3, 1, 3, 0])}
    out = model.forward_tokens(model.project(feats, present), present)
    total, parts = anticipation_loss(out, batch, {"verb": 1.0, "noun": 1.0, "action": 1.0})
    assert set(out["aux_logits"]) == {"unimodal_rgb", "unimodal_depth"}
    assert out["aux_logits"]["unimodal_depth"]["logits"]["verb"].shape == (3, 3)  # the sample without depth is out

    def ce(logits, labels):
        return sum(F.cross_entropy(logits[k], labels[k]) for k in ("verb", "noun", "action"))

    keep = present["depth"]
    ref = ce(out["logits"], batch) + w * (ce(out["aux_logits"]["unimodal_rgb"]["logits"], batch)
                                          + ce(out["aux_logits"]["unimodal_depth"]["logits"],
                                               {k: v[keep] for k, v in batch.items()}))
    assert float(total.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    assert float(parts["unimodal_depth"]) > 0
    # the depth stream's projection gets a gradient from its own prediction alone
    model.zero_grad()
    out["aux_logits"]["unimodal_depth"]["logits"]["verb"].sum().backward()
    assert model.proj["depth"][0].weight.grad.abs().sum() > 0 and model.proj["rgb"][0].weight.grad is None
    model.eval()  # inactive in eval: no extra predictions
    assert model.forward_tokens(model.project(feats, present), present)["aux_logits"] == {}


def test_missing_view_drops_exactly_one_present_stream_per_sample():
    """Each sample with two streams loses one of them in its view (each stream about half the time); a sample with
    one stream has no view."""
    from r3d.models.regularizers.missing_view import MissingModalityView

    torch.manual_seed(0)
    mv = MissingModalityView(MODS, weight=0.5)
    b = 4000
    present = _present(b, depth=[0, 1, 2])
    valid, now = mv.drop_one(present)
    assert valid.tolist() == [False] * 3 + [True] * (b - 3)
    assert now.shape == (2, b - 3) and bool((now.sum(0) == 1).all())
    assert float((~now[0]).float().mean()) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("fuser", ["concat", "late"])
def test_missing_view_adds_the_ce_of_a_second_fused_pass_and_leaves_the_first_as_it_was(fuser):
    """loss = fused CE + w · CE(fuser + head on the sample with one stream removed), computed here by hand; the
    complete sample's prediction is exactly that of the same model without the view."""
    from r3d.config import load_config
    from r3d.engine.losses import anticipation_loss
    from r3d.models.anticipator import Anticipator

    w = 0.5
    base = ["model.dim=16", "model.head_args.depth=1", "model.head_args.dropout=0", "data.img_size=16",
            f"model.fuser={fuser}"]  # no dropout: the passes are compared number for number
    nc = {"verb": 3, "noun": 2, "action": 4}
    acts = [[0, 0], [1, 1], [2, 0], [2, 1]]
    torch.manual_seed(0)
    model = Anticipator(load_config(None, [*base, f"model.missing_view.weight={w}"]), nc, actions=acts).train()
    torch.manual_seed(0)
    plain = Anticipator(load_config(None, base), nc, actions=acts).train()
    b, t = 4, 8
    feats = {m: torch.randn(b, t, model.backbones[m].num_features) for m in ("rgb", "depth")}
    present = {"rgb": torch.tensor([True, True, True, True]), "depth": torch.tensor([True, False, True, True])}
    batch = {"verb": torch.tensor([0, 1, 2, 0]), "noun": torch.tensor([1, 0, 1, 0]),
             "action": torch.tensor([3, 1, 3, 0])}
    torch.manual_seed(1)
    out = model.forward_tokens(model.project(feats, present), present)
    ref_out = plain.forward_tokens(plain.project(feats, present), present)
    for k in ("verb", "noun", "action"):
        torch.testing.assert_close(out["logits"][k], ref_out["logits"][k])
    view = out["aux_logits"]["missing_view"]
    assert view["valid"].tolist() == [True, False, True, True]  # the sample without depth has no second view
    assert view["logits"]["action"].shape == (3, 4)
    # the same view by hand: redraw the removed streams with the same seed, run the fuser and head on them
    torch.manual_seed(1)
    valid, now = model.regularizers[0].drop_one(present)
    tokens = model.project(feats, present)
    tokens = {m: tokens[m] * present[m].view(b, 1, 1).float() for m in ("rgb", "depth")}
    view_t = {m: tokens[m][valid] * now[i].view(-1, 1, 1).float() for i, m in enumerate(("rgb", "depth"))}
    _, by_hand = model.fuse_and_predict(view_t, {m: now[i] for i, m in enumerate(("rgb", "depth"))})  # no other regs

    def ce(logits, labels):
        return sum(F.cross_entropy(logits[k], labels[k]) for k in ("verb", "noun", "action"))

    sub = {k: v[valid] for k, v in batch.items()}
    total, parts = anticipation_loss(out, batch, {"verb": 1.0, "noun": 1.0, "action": 1.0})
    assert float(total.detach()) == pytest.approx(float((ce(out["logits"], batch) + w * ce(by_hand, sub)).detach()), rel=1e-5)
    assert float(parts["missing_view"]) == pytest.approx(float(ce(by_hand, sub).detach()), rel=1e-5)
    model.eval()  # inactive in eval: no extra predictions
    assert model.forward_tokens(model.project(feats, present), present)["aux_logits"] == {}


@pytest.mark.parametrize("key", ["model.unimodal.weight", "model.missing_view.weight"])
def test_next_action_only_remedies_are_rejected_by_the_long_term_protocol(key):
    from r3d.config import ConfigError, load_config
    from r3d.engine.protocols.base import build_protocol

    cfg = load_config(None, ["data.protocol=long_term", "model.head=futr", f"{key}=0.5"])
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        build_protocol(cfg)


def test_missing_view_runs_through_ebr_which_fills_the_removed_stream():
    """With EBR on, the view is the regularisers + fuser + head on the sample with one stream removed: EBR fills that
    stream from the other's embedding, as it does for a missing stream at test time."""
    from r3d.config import load_config
    from r3d.models.anticipator import Anticipator

    cfg = load_config(None, ["model.dim=16", "model.head_args.depth=1", "model.head_args.dropout=0", "data.img_size=16",
                             "model.fuser=concat", "model.ebr.enabled=true", "model.missing_view.weight=0.5"])
    torch.manual_seed(0)
    model = Anticipator(cfg, {"verb": 3, "noun": 2, "action": 4}, actions=[[0, 0], [1, 1], [2, 0], [2, 1]]).train()
    ebr, view = model.regularizers
    assert isinstance(ebr, ExplicitBasisReallocation)
    b, t = 3, 8
    feats = {m: torch.randn(b, t, model.backbones[m].num_features) for m in ("rgb", "depth")}
    present = _present(b)
    tokens = model.project(feats, present)
    torch.manual_seed(1)
    out = model.forward_tokens(tokens, present)
    torch.manual_seed(1)
    valid, now = view.drop_one(present)
    view_t = {m: tokens[m][valid] * now[i].view(-1, 1, 1) for i, m in enumerate(MODS)}
    view_p = {m: now[i] for i, m in enumerate(MODS)}
    filled_t, filled_p, _, stats = ebr(view_t, view_p)
    assert float(stats["ebr_substituted"]) == b and all(bool(filled_p[m].all()) for m in MODS)
    _, by_hand = model.fuse_and_predict(filled_t, filled_p)
    for k in ("verb", "noun", "action"):
        torch.testing.assert_close(out["aux_logits"]["missing_view"]["logits"][k], by_hand[k])


@pytest.mark.parametrize("gate,probe_input", [("probe", "frames"), ("probe", "mean"), ("probe_top1", "mean")])
def test_missing_view_probe_gate_weighs_each_view_sample_by_its_kept_streams_probe(gate, probe_input):
    """The view's CE on head k is Σ_i g_ik · CE_ik / (labelled samples), with g the kept stream's probe probability of
    the true label above chance, clipped to [0, 1] (gate=probe), or 1 where the probe ranks the true label first and
    0 elsewhere (gate=probe_top1), computed here by hand; the probes learn from detached tokens only, so their CE moves
    nothing but the probes."""
    from r3d.config import load_config
    from r3d.engine.losses import anticipation_loss
    from r3d.models.anticipator import Anticipator

    w = 0.5
    nc = {"verb": 3, "noun": 2, "action": 4}
    cfg = load_config(None, ["model.dim=16", "model.head_args.depth=1", "model.head_args.dropout=0", "data.img_size=16",
                             "model.fuser=concat", f"model.missing_view.weight={w}", f"model.missing_view.gate={gate}",
                             f"model.missing_view.probe_input={probe_input}"])
    torch.manual_seed(0)
    model = Anticipator(cfg, nc, actions=[[0, 0], [1, 1], [2, 0], [2, 1]]).train()
    view = model.regularizers[0]
    assert set(view.probes) == set(MODS) and view.probes["rgb"]["verb"].out_features == 3
    assert view.probes["rgb"]["verb"].in_features == (16 * 8 if probe_input == "frames" else 16)  # C or T·C
    b, t = 6, 8
    feats = {m: torch.randn(b, t, model.backbones[m].num_features) for m in MODS}
    present = _present(b, depth=[1])
    batch = {"verb": torch.tensor([0, 1, 2, 0, 1, 2]), "noun": torch.tensor([1, 0, 1, 0, 1, 0]),
             "action": torch.tensor([3, 1, 3, 0, -1, 2])}  # one sample without an action label
    tokens = model.project(feats, present)
    torch.manual_seed(1)
    out = model.forward_tokens(tokens, present)
    entry = out["aux_logits"]["missing_view"]
    assert entry["valid"].tolist() == [True, False, True, True, True, True]
    torch.manual_seed(1)
    valid, now = view.drop_one(present)
    tok = {m: tokens[m] * present[m].view(b, 1, 1).float() for m in MODS}
    loss_view, gates = 0.0, []
    for k, kk in nc.items():
        y = batch[k][valid]
        ce = F.cross_entropy(entry["logits"][k].float(), y.clamp_min(0), reduction="none")
        g = torch.zeros(len(y))
        for i, m in enumerate(MODS):  # the probe by hand: the tokens in order, or their time-mean, through the Linear
            lin = view.probes[m][k]
            x = tok[m][valid].flatten(1) if probe_input == "frames" else tok[m][valid].mean(1)
            p = F.softmax(x @ lin.weight.t() + lin.bias, -1)
            if gate == "probe":
                gm = ((p[torch.arange(len(y)), y.clamp_min(0)] - 1 / kk) / (1 - 1 / kk)).clamp(0, 1)
            else:
                gm = (p.argmax(-1) == y).float()
            g = torch.maximum(g, gm * now[i].float())
        g = g.detach()
        torch.testing.assert_close(entry["sample_weights"](k, y), g)
        assert float(g.min()) >= 0 and float(g.max()) <= 1
        gates.append(g)
        lab = y >= 0
        loss_view = loss_view + (ce * g * lab).sum() / lab.sum()
    gates = torch.cat(gates)
    assert bool((gates > 0).any()) and bool((gates < 1).any())  # the gate is neither all on nor all off here
    if gate == "probe":
        assert bool(((gates > 0) & (gates < 1)).any())  # the soft gate takes values between 0 and 1
    total, parts = anticipation_loss(out, batch, {"verb": 1.0, "noun": 1.0, "action": 1.0})
    assert float(parts["missing_view"]) == pytest.approx(float(loss_view.detach()), rel=1e-5)
    for m in MODS:
        assert f"missing_view_probe_{m}" in parts
    # the probes' CE reaches the probes and nothing upstream of them
    sum(v.float().sum() for n in ("missing_view_probe_rgb", "missing_view_probe_depth")
        for v in out["aux_logits"][n]["logits"].values()).backward()
    assert model.proj["rgb"][0].weight.grad is None and model.proj["depth"][0].weight.grad is None
    assert view.probes["depth"]["noun"].weight.grad.abs().sum() > 0


def test_missing_view_gate_none_is_the_ungated_view_and_an_unknown_gate_is_refused():
    from r3d.config import load_config
    from r3d.models.anticipator import Anticipator
    from r3d.models.regularizers.missing_view import MissingModalityView

    nc = {"verb": 3, "noun": 2, "action": 4}
    base = ["model.dim=16", "model.head_args.depth=1", "data.img_size=16", "model.missing_view.weight=0.5"]
    model = Anticipator(load_config(None, base), nc, actions=[[0, 0], [1, 1], [2, 0], [2, 1]]).train()
    assert model.regularizers[0].probes is None
    feats = {m: torch.randn(2, 8, model.backbones[m].num_features) for m in MODS}
    out = model.forward_tokens(model.project(feats))
    assert set(out["aux_logits"]) == {"missing_view"} and "sample_weights" not in out["aux_logits"]["missing_view"]
    with pytest.raises(ValueError, match="model.missing_view.gate must be one of none, probe, probe_top1, got 'prob'"):
        Anticipator(load_config(None, [*base, "model.missing_view.gate=prob"]), nc, actions=[[0, 0], [1, 1], [2, 0],
                                                                                          [2, 1]])
    with pytest.raises(ValueError, match="needs the token width"):
        MissingModalityView(MODS, 0.5, gate="probe")
    with pytest.raises(ValueError, match="probe_input must be one of mean, frames, got 'max'"):
        MissingModalityView(MODS, 0.5, gate="probe", dim=4, num_classes=nc, probe_input="max")
    view = MissingModalityView(MODS, 0.5, gate="probe", dim=4, num_classes=nc, probe_input="frames", num_frames=8)
    with pytest.raises(ValueError, match=r"reads 8 tokens per sample \(data.num_frames\), got 5"):
        view.probe(torch.randn(2, 5, 4), "rgb")


def test_sample_weights_scale_each_samples_ce_and_keep_the_labelled_count_as_divisor():
    from r3d.engine.losses import anticipation_loss

    logits = {"verb": torch.randn(4, 3)}
    batch = {"verb": torch.tensor([0, 2, -1, 1])}
    wts = torch.tensor([1.0, 0.0, 0.7, 0.5])
    loss, _ = anticipation_loss({"logits": logits}, batch, {"verb": 1.0}, sample_weights=lambda k, y: wts)
    ce = F.cross_entropy(logits["verb"], batch["verb"].clamp_min(0), reduction="none")
    assert float(loss) == pytest.approx(float((ce[0] * 1.0 + ce[3] * 0.5) / 3), rel=1e-6)
