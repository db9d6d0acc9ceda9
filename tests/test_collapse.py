"""Collapse diagnostics checked with constructed matrices and independent (numpy) computations: effective rank,
pooled / numerical rank, mutual rank gain, modality reliance on the same samples, erank vs observed fraction and the
evaluation-loop accumulator (including bf16 autocast and missing modalities)."""
import json
import math

import numpy as np
import pytest
import torch

from r3d.metrics import (
    CollapseAccumulator,
    effective_rank,
    erank_vs_observed,
    mean_effective_rank,
    modality_reliance,
    mutual_rank_gain,
    numerical_rank,
    observed_length,
    pooled_effective_rank,
)


def _np_erank(sigma):
    """exp(entropy(σ / Σσ)) with numpy, from singular values given by hand."""
    s = np.asarray(sigma, dtype=np.float64)
    s = s[s > 1e-12]
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q


def test_erank_identity_like_is_min_dim():
    assert effective_rank(torch.eye(4, 6)).item() == pytest.approx(4.0, abs=1e-5)
    assert effective_rank(torch.eye(7, 3)).item() == pytest.approx(3.0, abs=1e-5)
    # rotated identity (orthonormal rows in a random basis): same singular values
    q = torch.from_numpy(_orthogonal(6, 0)).float()
    assert effective_rank(torch.eye(4, 6) @ q).item() == pytest.approx(4.0, abs=1e-4)


def test_erank_rank_one_is_one():
    e1 = torch.zeros(5, 8)
    e1[:, 0] = torch.arange(1.0, 6.0)  # exactly rank 1, exact zeros elsewhere
    assert effective_rank(e1).item() == pytest.approx(1.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    z = torch.outer(torch.randn(10, generator=g), torch.randn(16, generator=g))
    assert effective_rank(z).item() == pytest.approx(1.0, abs=1e-3)  # float32 SVD noise ~1e-7 relative


def test_erank_known_singular_values_against_numpy():
    sigma = [3.0, 2.0, 1.0, 0.5]
    d = np.zeros((4, 6))
    d[np.arange(4), np.arange(4)] = sigma
    expected = _np_erank(sigma)
    assert effective_rank(torch.tensor(d, dtype=torch.float32)).item() == pytest.approx(expected, rel=1e-5)
    # the same spectrum hidden behind rotations on both sides
    z = _orthogonal(4, 1) @ d @ _orthogonal(6, 2)
    assert effective_rank(torch.tensor(z, dtype=torch.float32)).item() == pytest.approx(expected, rel=1e-4)
    # and through numpy's own SVD of a random matrix
    r = np.random.default_rng(3).standard_normal((9, 5))
    assert effective_rank(torch.tensor(r, dtype=torch.float32)).item() == pytest.approx(
        _np_erank(np.linalg.svd(r, compute_uv=False)), rel=1e-4)


def test_erank_bounds_batched_and_zero_matrix():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(6, 5, 12, generator=g)
    z[2] = 0.0  # an absent modality's zeroed tokens
    e = effective_rank(z)
    assert e.shape == (6,) and e.dtype == torch.float32
    for i in range(6):
        assert e[i].item() == pytest.approx(effective_rank(z[i]).item(), rel=1e-6)
    assert e[2].item() == 0.0 and not torch.isnan(e).any()
    others = torch.cat([e[:2], e[3:]])
    assert bool(((others >= 1.0) & (others <= 5.0 + 1e-5)).all())
    assert mean_effective_rank(z) == pytest.approx(e.mean().item(), rel=1e-6)


def test_erank_is_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, 8, 16, generator=g)
    zb = z.bfloat16()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        e_bf = effective_rank(zb)
        e_f32_inside = effective_rank(z)
    assert e_bf.dtype == torch.float32
    # bf16 input is upcast and computed in float32: identical to computing on its float32 copy outside autocast
    assert torch.allclose(e_bf, effective_rank(zb.float()), rtol=1e-6, atol=0)
    # float32 input is not downcast by autocast
    assert torch.allclose(e_f32_inside, effective_rank(z), rtol=1e-6, atol=0)
    # and bf16 rounding of the input moves erank only slightly
    assert torch.allclose(e_bf, effective_rank(z), rtol=1e-2)


def test_erank_gradient_is_finite():
    z = torch.randn(2, 6, 10, requires_grad=True)
    effective_rank(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_numerical_rank_and_centering():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((50, 3))
    a -= a.mean(0)  # zero-mean factors: the spread has rank 3
    x = np.ones((50, 1)) @ rng.standard_normal((1, 16)) + a @ rng.standard_normal((3, 16))
    x = torch.tensor(x, dtype=torch.float32)
    assert numerical_rank(x) == 4  # mean direction + 3
    assert numerical_rank(x, center=True) == 3
    d = torch.zeros(3, 5)
    d[0, 0], d[1, 1], d[2, 2] = 1.0, 1e-3, 1e-6
    assert numerical_rank(d, tol=1e-4) == 2
    # default tolerance σ_max · max(N, C) · eps_float32 = 5 · 1.19e-7 < 1e-6
    assert numerical_rank(d) == 3
    assert numerical_rank(torch.zeros(4, 3)) == 0


def test_pooled_effective_rank_centred_and_not():
    x = torch.tensor([[1.0, 5.0], [-1.0, 5.0]])
    # un-centred: orthogonal columns of norms √2 and 5√2 -> σ = (5√2, √2)
    assert pooled_effective_rank(x) == pytest.approx(_np_erank([5 * 2 ** 0.5, 2 ** 0.5]), rel=1e-5)
    # centred: [[1, 0], [-1, 0]] has rank 1
    assert pooled_effective_rank(x, center=True) == pytest.approx(1.0, abs=1e-6)
    assert pooled_effective_rank(torch.zeros(3, 4)) == 0.0


def test_mutual_rank_gain_hand_values():
    res = mutual_rank_gain({"rgb": 3.0, "depth": 2.0}, {"rgb": 3.5, "depth": 3.0})
    assert res["gain"] == {"rgb": pytest.approx(0.5), "depth": pytest.approx(1.0)}
    assert res["H"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert mutual_rank_gain({"rgb": 3.0, "depth": 2.0}, {"rgb": 4.0, "depth": 1.5})["H"] == 0.0
    assert mutual_rank_gain({"rgb": 3.0, "depth": 2.0}, {"rgb": 4.0, "depth": 2.0})["H"] == 0.0
    assert mutual_rank_gain({"rgb": 3.0, "depth": 2.0}, {"rgb": 2.0, "depth": 1.0})["H"] == 0.0
    with pytest.raises(ValueError):
        mutual_rank_gain({"rgb": 1.0}, {"depth": 1.0})


def test_modality_reliance_same_samples():
    full = torch.tensor([True, True, True, False])
    dropped = {"rgb": torch.tensor([True, False, False, False]), "depth": torch.tensor([True, True, True, False])}
    ids = torch.tensor([10, 11, 12, 13])
    res = modality_reliance(full, dropped, ids=ids, dropped_ids={"rgb": ids.clone(), "depth": [10, 11, 12, 13]})
    assert res["num_samples"] == 4
    assert res["top1"] == pytest.approx(75.0)
    assert res["without"]["rgb"]["top1"] == pytest.approx(25.0)
    assert res["without"]["rgb"]["drop"] == pytest.approx(50.0)
    assert res["without"]["rgb"]["relative_drop"] == pytest.approx(50.0 / 75.0)
    assert res["without"]["depth"]["relative_drop"] == pytest.approx(0.0)
    # restricted to labelled samples
    res = modality_reliance(full, dropped, valid=torch.tensor([True, True, False, False]))
    assert res["top1"] == pytest.approx(100.0) and res["without"]["rgb"]["top1"] == pytest.approx(50.0)
    # other samples / other order / missing ids / other count -> error
    with pytest.raises(ValueError, match="other samples"):
        modality_reliance(full, dropped, ids=ids, dropped_ids={"rgb": ids, "depth": torch.tensor([10, 12, 11, 13])})
    with pytest.raises(ValueError, match="other samples"):
        modality_reliance(full, {"rgb": dropped["rgb"]}, ids=["a", "b", "c", "d"],
                          dropped_ids={"rgb": ["a", "b", "c", "e"]})
    with pytest.raises(ValueError, match="not for the run without 'depth'"):
        modality_reliance(full, dropped, ids=ids, dropped_ids={"rgb": ids})
    with pytest.raises(ValueError, match="same samples"):
        modality_reliance(full, {"rgb": dropped["rgb"][:3]})


def test_observed_length():
    assert observed_length(0.3, 10) == 3  # not 4 from 0.3 · 10 = 3.0000000000000004
    assert observed_length(0.25, 10) == 3
    assert observed_length(0.01, 10) == 1
    assert observed_length(1.0, 10) == 10
    with pytest.raises(ValueError):
        observed_length(0.0, 10)


def _prefix_tokens():
    """(2, 10, 16): sample 0 has rows e_0..e_3 then zeros (prefix erank = min(n, 4));
    sample 1 has rows (t+1)·e_t (prefix singular values 1..n)."""
    z = torch.zeros(2, 10, 16)
    for t in range(4):
        z[0, t, t] = 1.0
    for t in range(10):
        z[1, t, t] = t + 1.0
    return z


def test_erank_vs_observed_known_prefix_rank():
    z = _prefix_tokens()
    fractions = [0.1, 0.25, 0.3, 0.5, 1.0]
    res = erank_vs_observed(z, fractions)
    lengths = [1, 3, 3, 5, 10]
    for f, n in zip(fractions, lengths):
        expected = (min(n, 4) + _np_erank(np.arange(1, n + 1))) / 2
        assert res[f] == pytest.approx(expected, rel=1e-5), f


def _fake_output(seed, b=3, t=6, c=8, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    pre = {m: torch.randn(b, t, c, generator=g) for m in ("rgb", "depth")}
    pre["depth"][0] = 0.0  # depth missing for the first sample: zeroed tokens
    post = {m: v + 0.5 * torch.randn(b, t, c, generator=g) for m, v in pre.items()}
    fused = torch.randn(b, t, c, generator=g)
    cast = lambda d: {k: v.to(dtype) for k, v in d.items()}  # noqa: E731
    return {"tokens_pre": cast(pre), "tokens_post": cast(post), "fused": fused.to(dtype)}


def test_accumulator_matches_direct_computation():
    outs = [_fake_output(0), _fake_output(1, b=2)]
    fractions = (0.5, 1.0)
    acc = CollapseAccumulator(observed_fractions=fractions)
    for o in outs:
        acc.update(o)
    res = acc.compute()
    cat = lambda key, m=None: torch.cat([o[key][m] if m else o[key] for o in outs])  # noqa: E731
    assert res["num_samples"] == 5
    assert res["num_present"] == {"rgb": 5, "depth": 3}  # depth missing in sample 0 of each batch
    depth_ok = torch.tensor([False, True, True, False, True])
    for kind in ("pre", "post"):
        assert res[f"erank_{kind}"]["rgb"] == pytest.approx(effective_rank(cat(f"tokens_{kind}", "rgb")).mean().item(),
                                                           rel=1e-5)
        assert res[f"erank_{kind}"]["depth"] == pytest.approx(
            effective_rank(cat(f"tokens_{kind}", "depth")[depth_ok]).mean().item(), rel=1e-5)
    assert res["erank_fused"] == pytest.approx(effective_rank(cat("fused")).mean().item(), rel=1e-5)
    ref = mutual_rank_gain(res["erank_pre"], res["erank_post"])
    assert res["gain"] == ref["gain"] and res["H"] == ref["H"]
    pooled = cat("fused").mean(1)
    assert res["pooled_rank"] == numerical_rank(pooled) == 5
    assert res["pooled_erank"] == pytest.approx(pooled_effective_rank(pooled), rel=1e-5)
    assert res["pooled_erank_centered"] == pytest.approx(pooled_effective_rank(pooled, center=True), rel=1e-5)
    assert res["pooled_rank_centered"] == 4  # 5 centred points span 4 dimensions
    curves = res["erank_vs_observed"]
    assert curves["fractions"] == [0.5, 1.0]
    direct = erank_vs_observed(cat("fused"), fractions)
    assert curves["fused"] == [pytest.approx(direct[0.5], rel=1e-5), pytest.approx(direct[1.0], rel=1e-5)]
    direct = erank_vs_observed(cat("tokens_post", "depth")[depth_ok], fractions)
    assert curves["post"]["depth"] == [pytest.approx(direct[0.5], rel=1e-5), pytest.approx(direct[1.0], rel=1e-5)]
    assert curves["pre"]["rgb"][1] == pytest.approx(res["erank_pre"]["rgb"], rel=1e-5)
    assert res["time_spent"] > 0 and acc.seconds == res["time_spent"]
    json.dumps(res)


def test_accumulator_gather_path_equals_update_path_and_bf16():
    outs = [_fake_output(2), _fake_output(3)]
    a = CollapseAccumulator(observed_fractions=(0.5,))
    for o in outs:
        a.update(o)
    b = CollapseAccumulator(observed_fractions=(0.5,))
    local = [b.per_sample(o) for o in outs]
    assert all(b.owns(k) for part in local for k in part)
    gathered = {k: torch.cat([p[k] for p in local]) for k in local[0]}
    gathered["score_action"] = torch.zeros(6, 3)  # other per-sample tensors of the evaluation loop are ignored
    ra, rb = a.compute(), b.finalize(gathered)
    for key in ("erank_pre", "erank_post", "gain", "H", "pooled_rank", "pooled_erank", "erank_vs_observed"):
        assert ra[key] == rb[key], key
    c = CollapseAccumulator()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        for o in outs:
            c.update({k: ({m: t.bfloat16() for m, t in v.items()} if isinstance(v, dict) else v.bfloat16())
                      for k, v in o.items()})
    rc = c.compute()
    assert "erank_vs_observed" not in rc
    for m in ("rgb", "depth"):
        assert rc["erank_pre"][m] == pytest.approx(ra["erank_pre"][m], rel=2e-2)
    assert all(math.isfinite(v) for v in rc["erank_post"].values())


def test_accumulator_without_fused_output():
    o = _fake_output(4)
    o["fused"] = None  # late fusion
    acc = CollapseAccumulator(observed_fractions=(1.0,))
    acc.update(o)
    res = acc.compute()
    assert res["erank_fused"] is None and res["pooled_rank"] is None
    assert res["erank_vs_observed"]["fused"] is None
    assert res["H"] is not None
