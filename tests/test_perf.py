"""Performance work (issue #9): the interleaved-median timing helper on a fake clock, the bench's JSON, and
correctness of everything the tuning touched — batched effective rank vs a per-sample loop and numpy, observed-fraction
curves vs re-running the model on truncated windows, frame-local fusers, modality reliance from the full pass's
tokens vs separate removed-modality passes, and the decord thread setting. No timing assertions."""
import json
import math

import numpy as np
import pytest
import torch

from r3d.config import load_config
from r3d.metrics.collapse import CollapseAccumulator, effective_rank, observed_length, token_sets
from benchmarks.timing import Figure, Measured, interleaved, paired_ratio

TINY = ["model.dim=32", "model.head_args.depth=1", "data.img_size=32", "data.num_frames=5", "model.rtf.heads=4",
        "model.safuser.heads=4", "model.tokenfusion.heads=4"]


# -- timing helper ---------------------------------------------------------------------------------------------------
class FakeClock:
    """A clock that only moves when a fake job runs: job `name` takes `cost[name][call]` seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_interleaved_alternates_order_discards_warmup_and_pairs_rounds():
    clock = FakeClock()
    calls = []
    costs = {"a": iter([9.0, 2.0, 4.0, 6.0]), "b": iter([9.0, 1.0, 2.0, 3.0])}  # first of each = warm-up

    def job(name):
        def run():
            calls.append(name)
            clock.now += next(costs[name])
        return run

    t = interleaved({"a": job("a"), "b": job("b")}, repeats=3, warmup=1, clock=clock)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # order reversed every round, warm-up included
    assert t.samples == {"a": [2.0, 4.0, 6.0], "b": [1.0, 2.0, 3.0]}
    assert t.median("a") == 4.0 and t.ratio("a", "b") == 2.0
    # a function that reports its own measurement overrides the clock; plain return values do not
    t2 = interleaved({"x": lambda: Measured(0.25), "y": lambda: 7.0}, repeats=2, warmup=0, clock=FakeClock())
    assert t2.samples == {"x": [0.25, 0.25], "y": [0.0, 0.0]}
    with pytest.raises(ValueError):
        interleaved({"a": lambda: None}, repeats=0)


def test_paired_ratio_is_the_median_of_round_ratios_not_the_ratio_of_medians():
    a, b = [10.0, 1.0, 3.0], [5.0, 1.0, 1.0]  # round ratios 2, 1, 3 -> median 2; medians 3 / 1 = 3
    assert paired_ratio(a, b) == 2.0
    assert math.isnan(paired_ratio([], []))
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])


def test_figure_status_line_and_json():
    cost = Figure("P1", "cost", 1.02, 1.03)
    rate = Figure("P4", "rate", 25.0, 30.0, better=">=", unit=" fr/s")
    na = Figure("P3", "cache", None, 20.0, better=">=", note="P3 not available: no module")
    assert (cost.status, rate.status, na.status) == ("PASS", "MISS", "N/A")
    assert Figure("P1", "at target", 1.03, 1.03).passed is True
    assert "PASS" in cost.line() and "1.020x" in cost.line() and "P3 not available" in na.line()
    d = json.loads(json.dumps(rate.to_dict()))
    assert d["passed"] is False and d["status"] == "MISS" and d["better"] == ">=" and d["value"] == 25.0
    with pytest.raises(ValueError):
        Figure("P9", "bad", 1.0, 1.0, better="<")


# -- effective rank: batched == per sample == numpy ------------------------------------------------------------------
def _np_erank(z):
    s = np.linalg.svd(np.asarray(z, np.float64), compute_uv=False)
    s = s[s > 1e-12]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


@pytest.mark.parametrize("shape", [(7, 8, 128), (5, 3, 16), (4, 20, 6), (3, 5, 5)])
def test_batched_erank_equals_per_sample_loop_exactly_and_numpy(shape):
    g = torch.Generator().manual_seed(sum(shape))
    z = torch.randn(*shape, generator=g)
    z[0] = 0.0  # an absent modality's zeroed tokens
    batched = effective_rank(z)
    loop = torch.stack([effective_rank(z[i]) for i in range(shape[0])])
    assert torch.equal(batched, loop)  # the same LAPACK call per matrix: bit for bit
    assert batched[0].item() == 0.0
    ref = torch.tensor([_np_erank(z[i]) for i in range(shape[0])], dtype=torch.float32)
    assert torch.allclose(batched, ref, rtol=1e-5, atol=0)


def _fake_out(b=4, t=6, c=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    pre = {m: torch.randn(b, t, c, generator=g) for m in ("rgb", "depth")}
    pre["depth"][1] = 0.0
    post = {m: v + 0.3 * torch.randn(b, t, c, generator=g) for m, v in pre.items()}
    post["depth"][1] = 0.0
    return {"tokens_pre": pre, "tokens_post": post, "fused": torch.randn(b, t, c, generator=g)}


def test_accumulator_statistics_equal_per_sample_numpy_reference():
    out = _fake_out()
    fractions = (0.1, 0.3, 0.5, 0.9, 1.0)
    res = CollapseAccumulator(observed_fractions=fractions).per_sample(out)
    for name, z in token_sets(out).items():
        full = [_np_erank(z[i]) for i in range(z.shape[0])]
        assert res[f"col_{name}"].tolist() == pytest.approx(full, rel=1e-5)
        for j, f in enumerate(fractions):
            n = observed_length(f, z.shape[1])
            want = [_np_erank(z[i, :n]) for i in range(z.shape[0])]
            assert res[f"col_obs_{name}"][:, j].tolist() == pytest.approx(want, rel=1e-5, abs=1e-6), (name, f)
    assert torch.allclose(res["col_pool_fused"], out["fused"].mean(1))


def test_accumulator_uses_the_prefix_function_for_truncated_windows_only():
    out = _fake_out(t=4)
    asked = []

    def prefix(n):
        asked.append(n)
        rank1 = torch.zeros(4, n, 12)
        rank1[:, :, 0] = 1.0  # every truncated window is rank 1
        return {name: rank1 for name in token_sets(out)}

    res = CollapseAccumulator(observed_fractions=(0.25, 0.5, 1.0)).per_sample(out, prefix)
    assert asked == [1, 2]  # n = T (4) comes from the full window, never from prefix
    assert torch.allclose(res["col_obs_fused"][:, :2], torch.ones(4, 2))
    assert torch.equal(res["col_obs_fused"][:, 2], res["col_fused"])


# -- frame-local fusers and the observed-fraction windows ------------------------------------------------------------
def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.05 if "running_var" in name
                        else 0.5 * torch.randn(t.shape, generator=g))
    return module


FUSER_NAMES = ["concat", "sum", "late", "safuser", "safuser_cross", "cen", "rtf", "rtf_svd", "tokenfusion"]


@pytest.mark.parametrize("name", FUSER_NAMES)
def test_frame_local_flag_matches_what_the_fuser_does(name):
    import r3d.models.fusers  # noqa: F401  (registers the built-in fusers)
    from r3d.registry import FUSERS

    kwargs = {"heads": 4} if name in ("safuser", "safuser_cross", "rtf", "rtf_svd", "tokenfusion") else {}
    fuser = _randomize(FUSERS.build(name, dim=16, modalities=("rgb", "depth"), **kwargs), 1).eval()
    g = torch.Generator().manual_seed(2)
    tokens = {m: torch.randn(3, 6, 16, generator=g) for m in ("rgb", "depth")}
    full = fuser(tokens)
    same = True
    for n in (1, 3, 5):
        cut = fuser({m: z[:, :n] for m, z in tokens.items()})
        for a, b in [(cut.fused, None if full.fused is None else full.fused[:, :n])] + \
                [(cut.tokens[m], full.tokens[m][:, :n]) for m in tokens]:
            if a is not None and not torch.allclose(a, b, atol=1e-5):
                same = False
    if fuser.frame_local:
        assert same, f"{name} says frame_local but its output on a truncated window differs"
    if name in ("rtf_svd", "tokenfusion"):
        assert not fuser.frame_local and not same  # selection over all tokens of the window (and batch)


def _tiny_model(overrides, seed=0):
    from benchmarks.common import build_random_model

    cfg = load_config(None, [*TINY, *overrides])
    return cfg, build_random_model(cfg, seed).eval()


def _inputs(cfg, b=3, seed=5):
    from benchmarks.common import random_batch

    return random_batch(cfg, b, seed)


@pytest.mark.parametrize("overrides, method", [
    (["model.fuser=rtf"], "slice"),
    (["model.fuser=rtf_svd"], "refuse"),
    (["model.fuser=tokenfusion"], "refuse"),
    (["model.fuser=rtf", "model.rgb_backbone.kind=inflated3d", "model.depth_backbone.kind=inflated3d"], "reencode"),
    (["model.fuser=rtf", "model.rgb_backbone.kind=inflated3d", "model.rgb_backbone.time_causal=true",
      "model.depth_backbone.kind=linear"], "slice"),
])
@torch.no_grad()
def test_observed_fraction_curves_equal_running_the_model_on_truncated_windows(overrides, method):
    from r3d.engine.evaluate import observed_prefix

    cfg, model = _tiny_model(overrides)
    _randomize(model.fuser, 3)
    batch = _inputs(cfg)
    out = model(batch)
    got_method, prefix = observed_prefix(model, batch, out)
    assert got_method == method
    fractions = (0.2, 0.4, 0.6, 1.0)
    acc = CollapseAccumulator(observed_fractions=fractions)
    res = acc.per_sample(out, prefix)
    t = cfg.data.num_frames
    for j, f in enumerate(fractions):  # independent route: the model on the first n frames of each window
        n = observed_length(f, t)
        ref = token_sets(model({**batch, "rgb": batch["rgb"][:, :n], "depth": batch["depth"][:, :n]}))
        for name, z in ref.items():
            assert torch.allclose(res[f"col_obs_{name}"][:, j], effective_rank(z), rtol=1e-4, atol=1e-5), \
                (name, f, method)


# -- modality reliance from the full pass's tokens -------------------------------------------------------------------
class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, cfg, n):
        from benchmarks.common import random_batch

        self.b = random_batch(cfg, n, seed=11)
        self.b["present"]["depth"][1] = False  # one sample already without depth (missing_rate-style)
        self.b["depth"][1] = 0.0
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {k: ({m: t[i] for m, t in v.items()} if isinstance(v, dict) else v[i]) for k, v in self.b.items()}


@pytest.mark.parametrize("overrides", [["model.fuser=concat"], ["model.fuser=rtf", "model.ebr.enabled=true"]])
def test_reliance_from_full_pass_tokens_equals_separate_removed_modality_passes(overrides):
    from accelerate import Accelerator

    from r3d.engine.evaluate import correct_top1, evaluate, predict
    from r3d.metrics.collapse import modality_reliance

    cfg, model = _tiny_model(overrides)
    loader = torch.utils.data.DataLoader(_ListDataset(cfg, 10), batch_size=4)
    acc = Accelerator(cpu=True)
    full = predict(model, loader, acc, reliance=True)
    assert set(full.without) == {"rgb", "depth"}
    separate = {}
    for m in ("rgb", "depth"):
        p = predict(model, loader, acc, drop_modality=m)  # the old route: decode + backbones again, m zeroed
        assert torch.equal(p.index, full.index)
        assert torch.allclose(full.without[m], p.scores["action"], atol=1e-5), m
        separate[m] = correct_top1(p)
    res = evaluate(model, loader, acc, collapse=True, reliance=True, observed_fractions=(0.5, 1.0))
    ref = modality_reliance(correct_top1(full), separate, valid=full.labels["action"] >= 0)
    assert res["collapse"]["reliance"] == ref
    assert res["collapse"]["erank_vs_observed"]["method"] == "slice"


# -- decode settings -------------------------------------------------------------------------------------------------
def test_rgb_frames_with_the_default_decoder_threads_are_bit_identical(tmp_path):
    import av
    import cv2
    import decord

    from r3d.data.io import DECODE_THREADS, read_rgb_frames

    # 64 px: a width decord2 3.4.0 decodes itself (at 16-48 px its get_batch fails and r3d falls back to PyAV)
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (64, 64))
    rng = np.random.default_rng(0)
    for k in range(12):
        frame = np.full((64, 64, 3), 20 * k, np.uint8)
        frame[16:48, 8 + 3 * k:40 + 3 * k] = rng.integers(0, 256, 3, dtype=np.uint8)  # a moving coloured block
        writer.write(frame)
    writer.release()
    n = len(decord.VideoReader(str(path), num_threads=1))
    assert n == 12
    idx = np.array([n - 1, 3, 0, 3, 7])
    got = read_rgb_frames(path, idx)
    one = decord.VideoReader(str(path), num_threads=1).get_batch(sorted(set(idx.tolist()))).asnumpy()
    pos = {int(i): k for k, i in enumerate(sorted(set(idx.tolist())))}
    assert DECODE_THREADS != 1  # the default differs from the single-thread reference compared against here
    assert np.array_equal(got, one[[pos[int(i)] for i in idx]])
    with av.open(str(path)) as c:  # independent decoder
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert np.array_equal(got, np.stack([frames[int(i)] for i in idx]))


# -- the benchmarks' entry point and P5 -------------------------------------------------------------------------------
def test_p5_clip_windows_and_sequential_decode(tmp_path):
    from benchmarks import decode
    from r3d.data.io import probe_video

    clip = decode.write_clip(tmp_path / "c.mp4", seconds=4.0, gop_seconds=2.0)
    assert decode.decode_all(clip) == 4 * decode.FPS  # every frame of the generated clip decodes
    assert decode.clip_windows(4 * decode.FPS) == []  # the first window ends at 5 s
    windows = decode.clip_windows(12 * decode.FPS)  # windows end at 5, 8 and 11 s
    assert len(windows) == 3
    # 8 frames spaced 2 s / 8 = 0.25 s, the last at 5 s: frame floor(30 * t) for t = 3.25, 3.5, ..., 5.0
    assert windows[0].tolist() == [97, 105, 112, 120, 127, 135, 142, 150]
    assert windows[2].tolist() == [f + 6 * decode.FPS for f in windows[0].tolist()]
    probe = probe_video(clip)
    assert (probe.width, probe.height, round(probe.fps)) == (decode.WIDTH, decode.HEIGHT, decode.FPS)


def test_bench_entry_point_writes_figures_json(tmp_path, monkeypatch):
    from benchmarks import __main__ as tool
    from benchmarks import decode as decode_mod

    real = decode_mod.measure
    monkeypatch.setattr(decode_mod, "measure", lambda cfg, quick=True: real(cfg, quick, repeats=1, seconds=8.0))
    out = tmp_path / "bench.json"
    assert tool.main(["--quick", "--only", "P5", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["quick"] is True and doc["seconds"] >= 0 and doc["machine_before"]["cpus"] >= 1
    (fig,) = doc["figures"]
    assert fig["id"] == "P5" and fig["better"] == "<=" and fig["target"] == 1.4
    assert fig["status"] in ("PASS", "MISS") and fig["value"] > 0
    ratios = fig["detail"]["ratio_by_gop_s"]
    assert set(ratios) == {"2", "8"} and fig["value"] == pytest.approx(max(ratios.values()), abs=1e-3)
    assert fig["detail"]["frames"] == {"2": 240, "8": 240} and fig["detail"]["windows"]["2"] == 1  # ends at 5 s

    def broken(cfg, quick=True):
        raise RuntimeError("decoder exploded\nsecond line")

    monkeypatch.setattr(decode_mod, "measure", broken)
    assert tool.main(["--only", "P5", "--out", str(out)]) == 0
    (fig,) = json.loads(out.read_text())["figures"]
    assert fig["status"] == "N/A" and fig["value"] is None and "RuntimeError: decoder exploded" in fig["note"]
    assert tool.main(["--only", "P0", "--out", str(out)]) == 2
