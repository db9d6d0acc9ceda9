"""The fusion zoo, checked with numbers: hand-set BN γ, hand-computed BN / L1 values, constructed low-rank inputs,
attention weights and a value-path ablation, gradients of every parameter, bf16 autocast and missing modalities."""
import inspect
import sys

import pytest
import torch

from r3d.config import load_defaults
from r3d.models.fusers import Fuser, FuserOutput
from r3d.models.fusers.cen import ChannelExchange
from r3d.models.fusers.rtf import RTF, svd_channel_importance
from r3d.models.fusers.safuser import SAFuser
from r3d.models.fusers.tokenfusion import TokenFusion
from r3d.registry import FUSERS

MODS = ("rgb", "depth")
BUILTINS = sorted(n for n in FUSERS.names() if FUSERS.get(n).__module__.startswith("r3d.models.fusers."))


def _tokens(b=4, t=5, c=32, seed=0, mods=MODS):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, t, c, generator=g) for m in mods}


def _bn_train(x, gamma, beta, eps=1e-5):
    """BatchNorm over batch × time of (B, T, C), biased variance (training mode), by hand."""
    mean = x.mean(dim=(0, 1))
    var = x.var(dim=(0, 1), unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def _erank(z):
    """Mean effective rank (docs/diagnostics.md): exp(entropy of L1-normalised singular values), un-centred."""
    s = torch.linalg.svdvals(z.float())
    s = torch.where(s > 1e-12, s, torch.zeros_like(s))
    p = s / s.sum(-1, keepdim=True)
    h = -torch.where(p > 0, p * p.clamp_min(1e-30).log(), torch.zeros_like(p)).sum(-1)
    return h.exp().mean().item()


def _build(name, dim=32, **kw):
    return FUSERS.build(name, dim=dim, modalities=("rgb",) if name == "identity" else MODS, **kw)


# -- registry / config ------------------------------------------------------------------------------------------
def test_all_builtins_registered_with_a_summary_and_build_from_the_default_config():
    assert set(BUILTINS) == {"rtf", "rtf_svd", "concat", "sum", "late", "identity", "safuser", "safuser_cross",
                             "tokenfusion", "cen"}
    cfg = load_defaults()
    for name in BUILTINS:
        cls = FUSERS.get(name)
        assert issubclass(cls, Fuser) and (cls.__doc__ or "").strip().splitlines()[0]
        assert "github" in sys.modules[cls.__module__].__doc__  # the module docstring names the original code
        section = cls.config_section
        kwargs = dict(cfg.model[section]) if section else {}
        FUSERS.build(name, dim=cfg.model.dim, modalities=("rgb",) if name == "identity" else MODS, **kwargs)
        # every key of the section is a constructor argument whose default is the documented one
        params = inspect.signature(cls).parameters
        assert {k: params[k].default for k in kwargs} == kwargs, name
    assert FUSERS.get("rtf_svd")(dim=16).select == "svd"
    assert FUSERS.get("rtf_svd")(dim=16, select="bn").select == "svd"  # the alias forces the variant
    assert FUSERS.get("safuser_cross")(dim=16, mask="full").block.mask == "cross"
    assert FUSERS.get("late").separate_heads and not FUSERS.get("rtf").separate_heads
    with pytest.raises(TypeError, match="rtf_svd.*bogus"):
        FUSERS.build("rtf_svd", dim=16, bogus=1)
    with pytest.raises(ValueError, match="exactly 2 modalities"):
        FUSERS.build("rtf", dim=16, modalities=("rgb",))


# -- RTF, BN-γ variant ------------------------------------------------------------------------------------------
def _rtf_bn(c=32):
    torch.manual_seed(0)
    f = RTF(c, MODS, select="bn", ratio=0.1, fuser_block=False)  # k = int(0.1 * 32) = 3
    with torch.no_grad():
        for bn in f.norms.values():
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.randn(c) * 0.1)
        f.norms["rgb"].weight[[5, 17, 30]] = torch.tensor([0.1, -0.05, 0.2])
        f.norms["rgb"].weight[8] = 0.3  # 4th smallest |γ|: must not be selected
        f.norms["depth"].weight[[0, 9, 21]] = torch.tensor([-0.2, 0.01, 0.15])
    return f


def test_rtf_bn_blends_exactly_the_k_smallest_gamma_channels():
    f = _rtf_bn().train()
    tok = _tokens()
    out = f(tok)
    alpha = f.alpha.detach()
    bn = {m: _bn_train(tok[m], f.norms[m].weight.detach(), f.norms[m].bias.detach()) for m in MODS}
    expect_sel = {"rgb": [5, 17, 30], "depth": [0, 9, 21]}
    for m, o in (("rgb", "depth"), ("depth", "rgb")):
        sel = expect_sel[m]
        assert f.last_selected[m].shape == (4, 32)
        assert f.last_selected[m][0].nonzero().flatten().tolist() == sel
        changed = (out.tokens[m] - bn[m]).abs().amax(dim=(0, 1)) > 1e-4
        assert changed.nonzero().flatten().tolist() == sel  # only those channels change
        rest = [c for c in range(32) if c not in sel]
        torch.testing.assert_close(out.tokens[m][..., rest], bn[m][..., rest], rtol=1e-5, atol=1e-5)
        blend = alpha[sel] * bn[m][..., sel] + (1 - alpha[sel]) * bn[o][..., sel]
        torch.testing.assert_close(out.tokens[m][..., sel], blend, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.fused, (out.tokens["rgb"] + out.tokens["depth"]) / 2)


def test_rtf_bn_selection_is_fixed_at_eval_and_alpha_gets_gradient_on_selected_channels():
    f = _rtf_bn()
    f.train()
    f(_tokens(seed=1))  # some running statistics
    f.eval()
    f(_tokens(seed=2))
    first = {m: s.clone() for m, s in f.last_selected.items()}
    f(_tokens(seed=3) | {"rgb": 10 * torch.randn(4, 5, 32)})
    for m in MODS:
        assert torch.equal(first[m], f.last_selected[m])
    # α: the selected entries of the shared vector get a gradient, the others none (they are never used)
    f.train()
    out = f(_tokens(seed=4))
    w = torch.randn_like(out.fused)
    (out.fused * w).sum().backward()
    used = torch.zeros(32, dtype=torch.bool)
    used[[5, 17, 30, 0, 9, 21]] = True
    assert (f.alpha.grad[used].abs() > 0).all()
    assert (f.alpha.grad[~used] == 0).all()


def test_rtf_bn_does_not_blend_an_absent_modality_and_keeps_it_out_of_the_bn_statistics():
    f = _rtf_bn().train()
    tok = _tokens()
    present = {"rgb": torch.ones(4, dtype=torch.bool), "depth": torch.tensor([True, False, True, False])}
    tok["depth"] = tok["depth"] * present["depth"].view(4, 1, 1)
    out = f(tok, present)
    bn_rgb = _bn_train(tok["rgb"], f.norms["rgb"].weight.detach(), f.norms["rgb"].bias.detach())
    torch.testing.assert_close(out.tokens["rgb"][[1, 3]], bn_rgb[[1, 3]], rtol=1e-5, atol=1e-5)  # no blend
    assert (out.tokens["depth"][[1, 3]] == 0).all()
    torch.testing.assert_close(out.fused[[1, 3]], out.tokens["rgb"][[1, 3]])  # mean over present modalities only
    # depth BN statistics come from the two present samples only (momentum 0.1 from running_mean 0)
    torch.testing.assert_close(f.norms["depth"].running_mean, 0.1 * tok["depth"][[0, 2]].mean(dim=(0, 1)))


# -- RTF, SVD variant -------------------------------------------------------------------------------------------
def test_rtf_svd_selects_channels_outside_the_dominant_subspace_and_raises_erank():
    g = torch.Generator().manual_seed(0)
    b, t, c = 3, 8, 16
    u = torch.randn(b, t, 1, generator=g)
    v = (torch.rand(b, 1, c, generator=g) + 0.5) * torch.sign(torch.randn(b, 1, c, generator=g))
    v[..., 12:] = 0  # rank-1 signal lives on channels 0..11
    rgb = 3 * u * v
    rgb[..., 12] = 0.01 * torch.randn(b, t, generator=g)  # a small noise channel
    depth = torch.randn(b, t, c, generator=g)
    imp = svd_channel_importance(rgb, rank=64)
    assert imp.shape == (b, c) and (imp[:, 12:].amax(-1) < imp[:, :12].amin(-1)).all()
    f = RTF(c, MODS, select="svd", ratio=0.25, fuser_block=False)  # k = round(0.25 * 16) = 4
    out = f({"rgb": rgb, "depth": depth})
    for i in range(b):
        assert f.last_selected["rgb"][i].nonzero().flatten().tolist() == [12, 13, 14, 15]
    # the selected channels are α·depth + (1−α)·rgb with α = sigmoid(0) = 0.5; the rest is untouched
    torch.testing.assert_close(out.tokens["rgb"][..., 12:], 0.5 * depth[..., 12:] + 0.5 * rgb[..., 12:])
    torch.testing.assert_close(out.tokens["rgb"][..., :12], rgb[..., :12])
    before, after = _erank(rgb), _erank(out.tokens["rgb"])
    assert before < 1.1 and after > before + 0.5, (before, after)


def test_rtf_svd_importance_is_float32_under_autocast_and_falls_back_to_variance_for_one_frame():
    x = torch.randn(2, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        imp = svd_channel_importance(x.bfloat16(), rank=64)
    assert imp.dtype == torch.float32
    one = torch.randn(2, 1, 8)
    torch.testing.assert_close(svd_channel_importance(one, 64), torch.zeros(2, 8))  # q = 0: centred variance
    # with q = min(rank, T-1, C) = full, Σ_c I_c is the total energy of the centred tokens
    xc = x - x.mean(1, keepdim=True)
    torch.testing.assert_close(svd_channel_importance(x, 64).sum(-1), xc.pow(2).sum((1, 2)), rtol=1e-4, atol=1e-5)


# -- SA-Fuser masks ---------------------------------------------------------------------------------------------
def _attn_output(fuser, tokens, present=None, perturb_v_of=None):
    """Output of the block's attention (N, M, C), optionally adding 5 to the value vector of token `perturb_v_of`."""
    attn = fuser.block.block.attn
    got = {}
    h1 = attn.register_forward_hook(lambda mod, inp, out: got.__setitem__("y", out))
    h2 = None
    if perturb_v_of is not None:
        c = fuser.dim

        def bump(mod, inp, out):
            out = out.clone()
            out[:, perturb_v_of, 2 * c:] += 5.0
            return out
        h2 = attn.qkv.register_forward_hook(bump)
    fuser(tokens, present)
    h1.remove()
    if h2 is not None:
        h2.remove()
    return got["y"]


@pytest.mark.parametrize("name", ["safuser_cross", "rtf"])
def test_cross_mask_gives_zero_self_attention_and_the_own_value_does_not_reach_the_own_output(name):
    torch.manual_seed(0)
    f = _build(name, dim=16, heads=2).eval()
    tok = _tokens(c=16)
    y0 = _attn_output(f, tok)
    attn = f.block.last_attn  # (B·T, H, 2, 2)
    assert attn.shape == (20, 2, 2, 2)
    assert (attn.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert (attn[..., 0, 1] == 1).all() and (attn[..., 1, 0] == 1).all()
    y1 = _attn_output(f, tok, perturb_v_of=0)  # change the value vector of the rgb token only
    assert torch.equal(y1[:, 0], y0[:, 0])  # rgb's attention output ignores its own value
    assert (y1[:, 1] - y0[:, 1]).abs().amax() > 1e-2  # depth's does read it


def test_full_mask_attends_to_both_tokens_and_an_absent_key_is_masked_without_nan():
    torch.manual_seed(0)
    f = SAFuser(16, MODS, mask="full", heads=2).eval()
    tok = _tokens(c=16)
    y0 = _attn_output(f, tok)
    assert (f.last_attn.diagonal(dim1=-2, dim2=-1) > 0).all()
    y1 = _attn_output(f, tok, perturb_v_of=0)
    assert (y1[:, 0] - y0[:, 0]).abs().amax() > 1e-2
    # depth absent in samples 1 and 3: every query sees rgb only (cross mask: rgb falls back to itself)
    present = {"rgb": torch.ones(4, dtype=torch.bool), "depth": torch.tensor([True, False, True, False])}
    for fuser in (f, SAFuser(16, MODS, mask="cross", heads=2).eval()):
        out = fuser(tok, present)
        a = fuser.last_attn.view(4, 5, 2, 2, 2)[[1, 3]]
        assert (a[..., 1] == 0).all() and (a[..., 0] == 1).all()
        assert torch.isfinite(out.fused).all()
        torch.testing.assert_close(out.fused[[1, 3]], out.tokens["rgb"][[1, 3]])
        assert (out.tokens["depth"][[1, 3]] == 0).all()


# -- CEN --------------------------------------------------------------------------------------------------------
def test_cen_exchanges_small_gamma_channels_of_the_designated_half_and_l1_is_exact():
    c = 8
    f = ChannelExchange(c, MODS, l1=2e-4, threshold=2e-2).train()
    g_rgb = torch.tensor([1.0, 0.01, -0.015, 1.0, 0.001, 1.0, 1.0, 1.0])  # ch 4 is small but in depth's half
    g_depth = torch.tensor([0.005, 1.0, 1.0, 1.0, 1.0, 1.0, -0.001, 1.0])  # ch 0 is small but in rgb's half
    with torch.no_grad():
        f.norms["rgb"].weight.copy_(g_rgb)
        f.norms["depth"].weight.copy_(g_depth)
        f.norms["rgb"].bias.copy_(torch.linspace(-1, 1, c))
        f.norms["depth"].bias.copy_(torch.linspace(1, -1, c))
    tok = _tokens(c=c)
    out = f(tok)
    bn = {m: _bn_train(tok[m], f.norms[m].weight.detach(), f.norms[m].bias.detach()) for m in MODS}
    assert f.last_exchanged["rgb"].nonzero().flatten().tolist() == [1, 2]
    assert f.last_exchanged["depth"].nonzero().flatten().tolist() == [6]
    exp_rgb, exp_depth = bn["rgb"].clone(), bn["depth"].clone()
    exp_rgb[..., [1, 2]] = bn["depth"][..., [1, 2]]
    exp_depth[..., 6] = bn["rgb"][..., 6]
    torch.testing.assert_close(out.tokens["rgb"], exp_rgb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.tokens["depth"], exp_depth, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.fused, (exp_rgb + exp_depth) / 2, rtol=1e-5, atol=1e-5)
    # l1 · (Σ|γ_rgb[:4]| + Σ|γ_depth[4:]|) = 2e-4 · ((1 + 0.01 + 0.015 + 1) + (1 + 1 + 0.001 + 1)) = 2e-4 · 5.026
    assert out.aux_loss.item() == pytest.approx(2e-4 * 5.026, rel=1e-6)
    grad = torch.autograd.grad(out.aux_loss, f.norms["rgb"].weight)[0]
    torch.testing.assert_close(grad, torch.cat([2e-4 * torch.sign(g_rgb[:4]), torch.zeros(4)]))


# -- TokenFusion ------------------------------------------------------------------------------------------------
def _block_input(fuser, tokens, present=None):
    """The stacked (B, T, 2, C) tokens entering the SA-Fuser block (after the swap), with its gradient retained."""
    got = {}

    def pre(mod, args):
        if args[0].requires_grad:
            args[0].retain_grad()
        got["x"] = args[0]
    h = fuser.block.register_forward_pre_hook(pre)
    out = fuser(tokens, present)
    h.remove()
    return out, got["x"]


def test_tokenfusion_eval_replaces_exactly_the_bottom_quarter_by_activation():
    torch.manual_seed(0)
    c = 16
    f = TokenFusion(c, MODS, ratio=0.25).eval()
    g = torch.Generator().manual_seed(1)
    scale = {m: torch.linspace(0.1, 2.0, c)[torch.randperm(c, generator=g)] for m in MODS}
    tok = {m: torch.randn(4, 5, c, generator=g) * scale[m] for m in MODS}
    _, x = _block_input(f, tok)
    assert f.last_score_mode == "activation"
    for i, (m, o) in enumerate((("rgb", "depth"), ("depth", "rgb"))):
        score = tok[m].abs().mean(dim=(0, 1))
        bottom = sorted(score.argsort()[:4].tolist())
        assert f.last_selected[m][0].nonzero().flatten().tolist() == bottom
        keep = [k for k in range(c) if k not in bottom]
        assert torch.equal(x[:, :, i, bottom], tok[o][..., bottom])  # replaced, not blended
        assert torch.equal(x[:, :, i, keep], tok[m][..., keep])


def test_tokenfusion_gradient_score_is_the_previous_backward_and_drives_the_next_selection():
    torch.manual_seed(0)
    c = 16
    f = TokenFusion(c, MODS, ratio=0.25, dropout=0.0).train()
    tok = {m: t.requires_grad_() for m, t in _tokens(c=c).items()}
    out, x = _block_input(f, tok)
    assert f.last_score_mode == "gradient" and not f.grad_seen.any()  # first call: activation fallback
    (out.fused * torch.randn_like(out.fused)).sum().backward()
    assert f.grad_seen.all()
    for i in range(2):
        torch.testing.assert_close(f.grad_score[i], x.grad[:, :, i].abs().mean(dim=(0, 1)))
    f(_tokens(c=c, seed=5))
    for i, m in enumerate(MODS):
        expect = sorted(f.grad_score[i].argsort()[:4].tolist())
        assert f.last_selected[m][0].nonzero().flatten().tolist() == expect


# -- every built-in fuser -----------------------------------------------------------------------------------------
def _loss(out: FuserOutput):
    g = torch.Generator().manual_seed(7)
    parts = [] if out.fused is None else [(out.fused * torch.randn(out.fused.shape, generator=g)).sum()]
    parts += [(t * torch.randn(t.shape, generator=g)).sum() for t in out.tokens.values()]
    if out.aux_loss is not None:
        parts.append(out.aux_loss)
    return sum(parts)


@pytest.mark.parametrize("name", BUILTINS)
def test_gradient_reaches_every_parameter_and_the_inputs(name):
    torch.manual_seed(0)
    f = _build(name).train()
    mods = f.modalities
    tok = {m: t.requires_grad_() for m, t in _tokens(mods=mods).items()}
    out = f(tok)
    _loss(out).backward()
    for m in mods:
        assert tok[m].grad is not None and tok[m].grad.abs().sum() > 0, m
    for pname, p in f.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        if pname == "alpha":  # RTF-bn: only the selected channels' α are used, by construction
            used = f.last_selected["rgb"].any(0) | f.last_selected["depth"].any(0)
            assert (p.grad[used] != 0).all() and (p.grad[~used] == 0).all()
        elif pname == "alpha_logit":  # RTF-svd: row i is the direction into modality i
            for i, m in enumerate(mods):
                used = f.last_selected[m].any(0)
                assert (p.grad[i, used] != 0).all() and (p.grad[i, ~used] == 0).all()
        else:
            assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
def test_bf16_autocast_shapes_and_dtype(name, in_dtype):
    torch.manual_seed(0)
    f = _build(name).train()
    tok = {m: t.to(in_dtype).requires_grad_() for m, t in _tokens(mods=f.modalities).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = f(tok)
        _loss(out).backward()
    assert isinstance(out, FuserOutput)
    if name == "late":
        assert out.fused is None
    else:
        assert out.fused.shape == (4, 5, 32) and out.fused.dtype == in_dtype and torch.isfinite(out.fused).all()
    assert set(out.tokens) == set(f.modalities)
    for t in out.tokens.values():
        assert t.shape == (4, 5, 32) and t.dtype == in_dtype and torch.isfinite(t).all()
    if out.aux_loss is not None:
        assert out.aux_loss.dim() == 0 and out.aux_loss.dtype == torch.float32


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("train", [True, False])
def test_missing_modality_is_finite_and_its_content_is_ignored(name, train):
    f = _build(name).train(train)
    last = f.modalities[-1]  # depth (rgb for the unimodal identity fuser)
    tok = _tokens(mods=f.modalities)
    # every sample misses `last`: finite outputs, post-fusion tokens of `last` are zeros
    none = {m: torch.ones(4, dtype=torch.bool) for m in f.modalities}
    none[last] = torch.zeros(4, dtype=torch.bool)
    torch.manual_seed(0)
    out = f({m: t.clone().requires_grad_() for m, t in (tok | {last: torch.zeros(4, 5, 32)}).items()}, none)
    assert out.fused is None or torch.isfinite(out.fused).all()
    assert all(torch.isfinite(t).all() for t in out.tokens.values())
    assert (out.tokens[last] == 0).all()
    if train:
        _loss(out).backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in f.parameters())
    # some samples miss it: the outputs do not depend on what sits in the absent slots
    some = dict(none, **{last: torch.tensor([True, False, True, False])})
    garbage = tok[last].clone()
    garbage[[1, 3]] = 100 * torch.randn(2, 5, 32)
    torch.manual_seed(0)
    a = f(tok, some)
    torch.manual_seed(0)
    b = f(tok | {last: garbage}, some)
    if a.fused is not None:
        torch.testing.assert_close(a.fused, b.fused)
    for m in f.modalities:
        torch.testing.assert_close(a.tokens[m], b.tokens[m])


# -- RTF (bn) against R3D's forward, re-derived here from its description -------------------------------------------
def _r3d_fuser_forward(sd, rgb, depth, k, heads):
    """R3D's `CMFuser` forward in eval mode, written from scratch with functional ops on the weights in `sd`:
    per-modality BatchNorm1d over batch × time (running statistics), the k channels with the smallest |γ|
    (`torch.topk(largest=False)`), the shared-α blend in both directions, stack (B·T, 2, C), one pre-LN block whose
    attention puts −inf on the diagonal (GELU MLP, nn.LayerNorm default eps 1e-5), a final LayerNorm, mean of the two."""
    import torch.nn.functional as F

    def bn(x, p):
        return (x - sd[f"{p}.running_mean"]) / torch.sqrt(sd[f"{p}.running_var"] + 1e-5) * sd[f"{p}.weight"] \
            + sd[f"{p}.bias"]

    a, d = bn(rgb, "norms.rgb"), bn(depth, "norms.depth")
    alpha = sd["alpha"]
    ia = torch.topk(sd["norms.rgb.weight"].abs(), k, largest=False).indices
    idp = torch.topk(sd["norms.depth.weight"].abs(), k, largest=False).indices
    a2, d2 = a.clone(), d.clone()
    a2[..., ia] = alpha[ia] * a[..., ia] + (1 - alpha[ia]) * d[..., ia]
    d2[..., idp] = alpha[idp] * d[..., idp] + (1 - alpha[idp]) * a[..., idp]
    b, t, c = rgb.shape
    x = torch.stack([a2, d2], dim=2).reshape(b * t, 2, c)
    mask = torch.zeros(2, 2).masked_fill(torch.eye(2, dtype=torch.bool), float("-inf"))
    h = F.layer_norm(x, (c,), sd["block.block.norm1.weight"], sd["block.block.norm1.bias"], 1e-5)
    qkv = F.linear(h, sd["block.block.attn.qkv.weight"]).reshape(b * t, 2, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, kk, v = qkv[0], qkv[1], qkv[2]
    att = ((q @ kk.transpose(-2, -1)) * (c // heads) ** -0.5 + mask).softmax(-1)
    y = (att @ v).transpose(1, 2).reshape(b * t, 2, c)
    x = x + F.linear(y, sd["block.block.attn.proj.weight"], sd["block.block.attn.proj.bias"])
    h = F.layer_norm(x, (c,), sd["block.block.norm2.weight"], sd["block.block.norm2.bias"], 1e-5)
    h = F.gelu(F.linear(h, sd["block.block.mlp.fc1.weight"], sd["block.block.mlp.fc1.bias"]))
    x = x + F.linear(h, sd["block.block.mlp.fc2.weight"], sd["block.block.mlp.fc2.bias"])
    x = F.layer_norm(x, (c,), sd["block.norm.weight"], sd["block.norm.bias"], 1e-5)
    return x.mean(dim=1).reshape(b, t, c)


def test_rtf_bn_equals_r3d_fuser_forward_with_copied_weights():
    torch.manual_seed(0)
    c, heads = 64, 8
    fuser = RTF(c, MODS, select="bn", ratio=0.1, heads=heads).eval()
    with torch.no_grad():  # trained-looking state: distinct |γ| (no ties), non-trivial running statistics and biases
        for m in MODS:
            bn = fuser.norms[m]
            bn.weight.copy_(torch.linspace(0.05, 2.0, c)[torch.randperm(c)] * torch.sign(torch.randn(c)))
            bn.bias.normal_(0, 0.3)
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        for p in fuser.block.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tokens = _tokens(b=3, t=6, c=c)
    sd = {k: v.detach() for k, v in fuser.state_dict().items()}
    ref = _r3d_fuser_forward(sd, tokens["rgb"], tokens["depth"], int(0.1 * c), heads)
    with torch.no_grad():
        got = fuser(tokens).fused
    assert got.shape == ref.shape == (3, 6, c)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    # with AFFT's LayerNorm eps (1e-6) the same weights would miss R3D's output by more than the tolerance
    for mod in fuser.block.modules():
        if isinstance(mod, torch.nn.LayerNorm):
            assert mod.eps == 1e-5
            mod.eps = 1e-6
    with torch.no_grad():
        assert float((fuser(tokens).fused - ref).abs().max()) > 2e-6
