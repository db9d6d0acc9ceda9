"""The long-term protocol (docs/long_term.md; FUTR, Gong et al., CVPR 2022): the observed-frame sampler never
reaches past α (sweep + decoded pixels), targets of a hand-built video, the FUTR head's shapes, masking, loss
(hand-computed) and gradients, decoding and MoC at β (hand-computed and against `moc_at_betas`), and a 1-epoch
train + test run on a tiny generated set that writes MoC for every (α, β)."""
import itertools
import json
import math

import numpy as np
import pytest
import torch

from conftest import REPO, TINY_RUN, run_tool
from fixtures import make_root, ts, write_csv, write_depth, write_video
from r3d.config import ConfigError, apply_overrides, load_defaults
from r3d.data.long_term_dataset import (IGNORE, LongTermDataset, collate_long_term, frame_labels, query_targets,
                                        transcript)
from r3d.data.protocols import UNOBSERVABLE, frame_at, future_span, long_term_window, observed_length
from r3d.metrics.anticipation import moc_at_betas, moc_counts, moc_from_counts
from r3d.models.heads.futr import FUTRHead, futr_loss, normalize_duration, render_batch, render_future

FPS = [1.0, 7.5, 8.0, 10.0, 15.0, 24.0, 29.97, 30.0, 30000 / 1001]


def _cfg(root, *overrides):
    return apply_overrides(load_defaults(), [f"data.root={root}", "data.protocol=long_term", "model.head=futr",
                                             "data.img_size=32", "data.num_workers=0", *overrides])


# -- the sampler -----------------------------------------------------------------------------------------------------
def test_sampler_never_past_alpha_sweep():
    """For every L, fps, α, sample rate and cap: indices are strictly increasing frames < int(α·L); without a cap
    they are exactly the frames at the sample times j/sample_fps (nothing observable is left out)."""
    rng = np.random.default_rng(0)
    alphas = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.29, 0.57, *rng.uniform(0.01, 0.99, 6)]
    checked = 0
    for length, fps, sfps, alpha, cap in itertools.product(
            [1, 2, 3, 7, 10, 29, 100, 291, 997], FPS, [None, 0.5, 1.0, 2.0, 4.0, 7.0, 60.0], alphas, [0, 5]):
        win = long_term_window(length, fps, alpha, sfps, cap)
        observed = int(alpha * length)
        if observed == 0:
            assert win.indices is None and win.status == UNOBSERVABLE
            continue
        idx = win.indices
        assert idx.dtype == np.int64 and len(idx) >= 1
        assert idx.min() >= 0 and idx.max() < observed, (length, fps, sfps, alpha, cap, idx)
        assert np.all(np.diff(idx) > 0)
        if cap:
            assert len(idx) <= cap
        elif sfps is None or sfps >= fps:
            assert idx.tolist() == list(range(observed))
        else:  # every sample time j / sample_fps whose frame is observed, and no other frame
            expect, j = [], 0
            while frame_at(j / sfps, fps) < observed:
                expect.append(frame_at(j / sfps, fps))
                j += 1
            assert idx.tolist() == sorted(set(expect))
        checked += 1
    assert checked > 10000
    assert observed_length(0.3, 10) == 3 and future_span(0.3, 0.5, 10) == (3, 8)
    assert future_span(0.9, 0.5, 10) == (9, 10)  # cut at the last frame


def test_dataset_decodes_only_observed_frames(tmp_path):
    """Through the dataset: every decoded RGB and depth frame (identified by its pixel values) is one of the first
    int(α·L) frames, for every video (all depth stores) and α."""
    fx = make_root(tmp_path / "root", num_frames=30, fps=10.0)
    cfg = _cfg(fx.root, "data.rgb_mean=[0,0,0]", "data.rgb_std=[1,1,1]", "data.long_term.sample_fps=null",
               "data.long_term.test_alphas=[0.1,0.25,0.5,0.77,0.9]")
    ds = LongTermDataset(cfg, "train", train=False)
    assert len(ds) == 5 * 5 and ds.stats["videos"] == 5
    for i in range(len(ds)):
        s = ds[i]
        observed = int(s["observed_length"])
        assert observed == int(float(s["alpha"]) * 30)
        # background grey of frame k is fixtures.grey(k) = 20 + 6k (±3 after mp4v; green channel, as test_dataset)
        k_rgb = np.rint((s["rgb"][:, 1, -1, -1].numpy() * 255 - 20) / 6).astype(int)
        assert k_rgb.tolist() == list(range(observed)) == s["frame_idx"].tolist()
        if bool(s["present"]["depth"]):
            k_depth = np.rint((s["depth"][:, 0, 0, 0].numpy() * 4.5 * 1000 - 1000) / 50).astype(int)
            assert k_depth.tolist() == list(range(observed))  # fixtures.depth_bg(k) = 1000 + 50k mm


# -- targets ---------------------------------------------------------------------------------------------------------
def _hand_root(tmp_path):
    """One 20-frame video at 10 fps: A = frames 0-4, background 5-7, B = 8-15, C = 16-19."""
    root = tmp_path / "hand"
    frames = np.zeros((20, 16, 16, 3), np.uint8)
    write_video(root / "videos" / "v0.mp4", frames, 10.0)
    write_depth(root, "v0", "png", np.full((20, 8, 8), 1500, np.uint16), 10.0)
    header = ["narration_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"]
    rows = [["a", "v0", ts(0.0), ts(0.5), 0, 0], ["b", "v0", ts(0.8), ts(1.6), 1, 1],
            ["c", "v0", ts(1.6), ts(2.0), 2, 2]]
    for split in ("train", "val"):
        write_csv(root / "annotations" / f"{split}.csv", header, rows)
    write_csv(root / "annotations" / "verb_classes.csv", ["id", "key"], [[i, f"v{i}"] for i in range(3)])
    write_csv(root / "annotations" / "noun_classes.csv", ["id", "key"], [[i, f"n{i}"] for i in range(3)])
    return root


def test_targets_of_hand_built_video(tmp_path):
    cfg = _cfg(_hand_root(tmp_path), "data.long_term.sample_fps=null", "model.long_term.queries=4",
               "data.long_term.test_alphas=[0.3,0.5]")
    ds = LongTermDataset(cfg, "val", train=False)
    assert (ds.background, ds.none_id) == (3, 4)  # actions 0, 1, 2 (train pairs in order), background, NONE
    s = ds[0]  # α = 0.3: frames 0..5 observed; future = [6, 16): 2 background frames, then 8 of B
    assert s["frame_idx"].tolist() == [0, 1, 2, 3, 4, 5]
    assert s["obs_labels"].tolist() == [0, 0, 0, 0, 0, 3] and int(s["last_label"]) == 3
    assert s["future_labels"].tolist() == [3, 3] + [1] * 8
    assert s["future_classes"].tolist() == [3, 1, 4, IGNORE]
    assert s["future_durations"].tolist() == pytest.approx([0.2, 0.8, 0.0, 0.0])
    assert s["future_duration_mask"].tolist() == [True, True, False, False]
    # β = 0.1, 0.2, 0.3, 0.5 -> frames int((0.3 + β)·20) − 6 = 2, 4, 6, 10
    assert s["beta_lengths"].tolist() == [2, 4, 6, 10]
    s = ds[1]  # α = 0.5: frames 0..9; future [10, 20): 6 of B then 4 of C
    assert s["obs_labels"].tolist() == [0] * 5 + [3] * 3 + [1] * 2 and int(s["last_label"]) == 1
    assert s["future_classes"].tolist() == [1, 2, 4, IGNORE]
    assert s["future_durations"].tolist() == pytest.approx([0.6, 0.4, 0.0, 0.0])
    assert s["beta_lengths"].tolist() == [2, 4, 6, 10]
    batch = collate_long_term([ds[0], ds[1]])
    assert batch["token_mask"].tolist() == [[True] * 6 + [False] * 4, [True] * 10]
    assert batch["obs_labels"][0, 6:].tolist() == [IGNORE] * 4
    assert batch["frame_idx"][0].tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]  # padding repeats the last observed frame
    assert batch["future_length"].tolist() == [10, 10]


def test_transcript_and_query_padding():
    assert frame_labels([], 3, 10.0, lambda s: 0, 7).tolist() == [7, 7, 7]
    classes, dur = transcript(np.array([5, 5, 2, 2, 2, 5]))
    assert classes.tolist() == [5, 2, 5] and dur.tolist() == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    target, d, mask = query_targets(classes, dur, 3, 9)  # 3 segments fill all 3 slots: no NONE (FUTR cuts at Q)
    assert target.tolist() == [5, 2, 5] and mask.tolist() == [True] * 3
    target, d, mask = query_targets(np.zeros(0, np.int64), np.zeros(0), 2, 9)  # nothing left: NONE first
    assert target.tolist() == [9, IGNORE] and mask.tolist() == [False, False]


# -- the FUTR head ---------------------------------------------------------------------------------------------------
def _head(**kw):
    torch.manual_seed(0)
    args = dict(in_dim=12, num_classes={"action": 3}, queries=4, dim=16, heads=2, ffn=32, encoder_layers=1,
                decoder_layers=1, dropout=0.0, max_len=50)
    args.update(kw)
    return FUTRHead(**args)


def test_futr_head_shapes_and_padding_mask():
    head = _head().eval()
    x = torch.randn(2, 7, 12)
    mask = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])
    out = head(x, mask)
    assert out["action"].shape == (2, 4, 5) and out["duration"].shape == (2, 4)  # A + background + NONE = 5
    assert out["segmentation"].shape == (2, 7, 4)                                 # A + background = 4
    # padded tokens change nothing: sample 0 alone (4 tokens) gives the same outputs
    alone = head(x[:1, :4], None)
    for key in ("action", "duration"):
        assert torch.allclose(out[key][:1], alone[key], atol=1e-5)
    assert torch.allclose(out["segmentation"][:1, :4], alone["segmentation"], atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        head(torch.randn(1, 51, 12))


def test_futr_loss_hand_computed():
    # A = 1: class 0, background 1, NONE 2. Sample 0: future [0, 1, NONE], last observed 1 -> changed (×10);
    # sample 1: future [1, NONE, pad], last observed 1 -> not changed (×1).
    action = torch.zeros(2, 3, 3)
    action[0, 0] = torch.tensor([2.0, 0.0, 0.0])
    outputs = {"action": action, "duration": torch.tensor([[0.0, 0.0, 5.0], [3.0, -1.0, 0.0]]),
               "segmentation": torch.zeros(2, 2, 2)}
    batch = {"future_classes": torch.tensor([[0, 1, 2], [1, 2, IGNORE]]), "last_label": torch.tensor([1, 1]),
             "future_durations": torch.tensor([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]]),
             "future_duration_mask": torch.tensor([[True, True, False], [True, False, False]]),
             "obs_labels": torch.tensor([[0, 1], [1, IGNORE]])}
    ce_peak = -math.log(math.exp(2) / (math.exp(2) + 2))  # logits (2, 0, 0), target 0
    ln3 = math.log(3)
    ce = (10 * (ce_peak + ln3 + ln3) + 1 * (ln3 + ln3)) / 5   # 5 counted slots
    dur = ((0.5 - 0.25) ** 2 + (0.5 - 0.75) ** 2 + 0.0) / 3   # softmax(0, 0) = (0.5, 0.5); sample 1: (1.0)
    seg = math.log(2)                                         # uniform logits over 2 classes, 3 counted frames
    total, parts = futr_loss(outputs, batch, change_weight=10.0, duration_weight=2.0, seg_weight=0.5)
    assert float(parts["future_ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(parts["duration_mse"]) == pytest.approx(dur, rel=1e-6)
    assert float(parts["segmentation_ce"]) == pytest.approx(seg, rel=1e-6)
    assert float(total) == pytest.approx(ce + 2.0 * dur + 0.5 * seg, rel=1e-6)
    assert normalize_duration(torch.tensor([[1.0, 2.0]]), torch.tensor([[False, False]])).tolist() == [[0.0, 0.0]]


def test_gradients_reach_every_head_parameter():
    head = _head().train()
    x = torch.randn(3, 6, 12, requires_grad=True)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] * 5 + [False]])
    batch = {"future_classes": torch.tensor([[0, 3, 4, IGNORE], [1, 2, 0, 4], [3, 4, IGNORE, IGNORE]]),
             "last_label": torch.tensor([3, 1, 0]),
             "future_durations": torch.tensor([[0.5, 0.5, 0, 0], [0.2, 0.3, 0.5, 0], [1.0, 0, 0, 0]]),
             "future_duration_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]).bool(),
             "obs_labels": torch.tensor([[0, 0, 3, 3, 1, 1], [2, 2, 2, IGNORE, IGNORE, IGNORE], [3] * 5 + [IGNORE]])}
    total, _ = futr_loss(head(x, mask), batch)
    total.backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0.0]
    assert missing == []
    assert float(x.grad[1, 3:].abs().sum()) == 0.0 and float(x.grad[1, :3].abs().sum()) > 0  # padding gets none


# -- decoding and MoC ------------------------------------------------------------------------------------------------
def test_render_future_hand_computed():
    # A = 2: actions 0, 1, background 2, NONE 3. Slots: 1, background, NONE, 0 -> the sequence is [1, background];
    # durations softmax(ln 1, ln 3) = (1/4, 3/4) of 10 frames -> 3 frames (round(2.5)) then the rest.
    logits = torch.full((4, 4), -5.0)
    for q, c in enumerate([1, 2, 3, 0]):
        logits[q, c] = 5.0
    dur = torch.tensor([0.0, math.log(3.0), 7.0, 7.0])
    assert render_future(logits, dur, 10, 3).tolist() == [1, 1, 1] + [2] * 7
    # the first slot is NONE: its best other class fills the span
    first_none = logits.clone()
    first_none[0] = torch.tensor([1.0, -2.0, 0.0, 5.0])
    assert render_future(first_none, dur, 4, 3).tolist() == [0, 0, 0, 0]
    out = render_batch(torch.stack([logits, first_none]), torch.stack([dur, dur]), torch.tensor([10, 4]), 3)
    assert out.tolist() == [[1, 1, 1] + [2] * 7, [0] * 4 + [IGNORE] * 6]


def test_moc_counts_match_moc_at_betas_and_hand_values():
    # The hand example of tests/test_metrics.py (α = 0.2; L = 10 and 20; β = 0.1, 0.3), through the pooled counts.
    pred_a, gt_a = torch.tensor([1, 1, 2, 0, 0, 0, 0, 0]), torch.tensor([1, 2, 2, 0, 0, 0, 0, 0])
    pred_b, gt_b = torch.tensor([3, 1, 1, 1, 2, 2, 0, 0]), torch.tensor([3, 3, 1, 1, 2, 1, 0, 0])
    lengths = torch.tensor([[future_span(0.2, b, n)[1] - future_span(0.2, b, n)[0] for b in (0.1, 0.3)]
                            for n in (10, 20)])
    assert lengths.tolist() == [[1, 3], [2, 6]]
    hits, counts = moc_counts(torch.stack([pred_a, pred_b]), torch.stack([gt_a, gt_b]), lengths, 4)
    ref = moc_at_betas([pred_a, pred_b], [gt_a, gt_b], [10, 20], observed_fraction=0.2, betas=(0.1, 0.3))
    assert moc_from_counts(hits[:, 0], counts[:, 0]) == pytest.approx(ref[0.1]) == pytest.approx(100 * 1.5 / 2)
    # β = 0.3: class 1: A 1/1 + B 3/4 ... pooled: class 1 hits 1+2, frames 1+3; class 2: 1/2 + 1/1; class 3: 1/2
    assert moc_from_counts(hits[:, 1], counts[:, 1]) == pytest.approx(ref[0.3])
    assert ref[0.3] == pytest.approx(100 * ((1 + 2) / (1 + 3) + (1 + 1) / (2 + 1) + 1 / 2) / 3)
    # ignored target frames (padding) never count
    pad = torch.tensor([[IGNORE, 0, 0]])
    h, c = moc_counts(torch.tensor([[0, 0, 1]]), pad, torch.tensor([[3]]), 2)
    assert c[0, 0].tolist() == [2.0, 0.0] and h[0, 0].tolist() == [1.0, 0.0]
    assert math.isnan(moc_from_counts(h[:, 0] * 0, c[:, 0] * 0))


def test_long_term_needs_a_long_term_head(tmp_path):
    from r3d.engine.protocols import build_protocol

    with pytest.raises(ConfigError, match="model.head=futr"):
        build_protocol(apply_overrides(load_defaults(), ["data.protocol=long_term"]))
    with pytest.raises(ConfigError, match="data.protocol"):
        build_protocol(apply_overrides(load_defaults(), ["data.protocol=nope"]))
    cfg = _cfg(_hand_root(tmp_path), "data.long_term.betas=[0.1,0.6]")
    with pytest.raises(Exception, match="horizon"):
        LongTermDataset(cfg, "val", train=False)


# -- end to end ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_long_term_train_then_test_cli(tiny_root, tmp_path):
    """1 epoch of long-term training on the tiny synthetic set, then tools/test.py: MoC for every (α, β), the same
    numbers from both (same weights, same samples)."""
    work = tmp_path / "run"
    args = [f"data.root={tiny_root}", f"work_dir={work}", *TINY_RUN, "train.epochs=1", "train.warmup_epochs=0",
            "model.long_term.dim=32", "model.long_term.heads=2", "model.long_term.ffn=64",
            "model.long_term.encoder_layers=1", "data.long_term.sample_fps=1.0"]
    run_tool([REPO / "tools/train.py", "--config", REPO / "configs/synthetic_longterm.yaml", *args])
    metrics = json.loads((work / "metrics.json").read_text())
    lt = metrics["long_term"]
    alphas, betas = ["0.1", "0.2", "0.3", "0.5", "0.7", "0.9"], ["0.1", "0.2", "0.3", "0.5"]
    assert list(lt["moc"]) == alphas and all(list(lt["moc"][a]) == betas for a in alphas)
    for a in alphas:
        assert lt["num_samples"][a] == 2  # 2 validation videos
        for b in betas:
            assert 0.0 <= lt["moc"][a][b] <= 100.0
    assert metrics["data"]["train"]["samples"] == 4 * 3 and metrics["data"]["val"]["samples"] == 2 * 6
    out = tmp_path / "test.json"
    run_tool([REPO / "tools/test.py", "--checkpoint", work, "--out", out])
    tested = json.loads(out.read_text())["long_term"]
    for a in alphas:
        assert tested["moc"][a] == pytest.approx(lt["moc"][a], abs=1e-9)
