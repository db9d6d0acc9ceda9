"""Depth-only datasets: a ROOT without videos/ serves a depth-only model, timed by its depth (PNG folder + dataset.yaml
fps, or the store's own rate), and the validator, the dataset, training and testing agree on it.

The reference is the same tiny synthetic ROOT *with* its videos: its depth PNGs hold one frame per RGB frame at the
RGB rate, so a depth-timed index must pick exactly the frames the RGB-timed one picks."""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import REPO, TINY_RUN, run_tool
from r3d.data.dataset import build_datasets
from r3d.data.errors import DataError
from r3d.data.depth_writers import write_depth_ffv1
from r3d.data.io import read_png16
from r3d.data.validate import validate_root
from test_bad_input import cfg_for, one_line

DEPTH_ONLY = "model.modalities=[depth]"


@pytest.fixture
def no_videos(tiny_copy):
    """The tiny ROOT without videos/ (dataset.yaml keeps `fps: 8.0`)."""
    shutil.rmtree(tiny_copy / "videos")
    return tiny_copy


def test_depth_timed_index_equals_the_rgb_timed_one(tiny_root, no_videos):
    ref_train, ref_val, _ = build_datasets(cfg_for(tiny_root, DEPTH_ONLY))
    train, val, _ = build_datasets(cfg_for(no_videos, DEPTH_ONLY))
    for ref, ds in ((ref_train, train), (ref_val, val)):
        assert len(ds) == len(ref) == ds.stats["segments"] and ds.stats["skipped_bad"] == 0
        for i, (a, b) in enumerate(zip(ref.items, ds.items)):
            assert ds.probe(b.segment.video_id).stream == "depth" and ref.probe(a.segment.video_id).stream == "rgb"
            assert a.frame_idx.tolist() == b.frame_idx.tolist() == b.depth_idx.tolist() == a.depth_idx.tolist()
            s, r = ds[i], ref[i]
            assert torch.equal(s["depth"], r["depth"]) and not bool(s["present"]["rgb"])
    # the sampled depth is the PNG written on disk: depth frame k of the window, in millimetres / depth_max 4.5 m
    s, item = train[0], train.items[0]
    k = int(item.depth_idx[-1])
    png = read_png16(no_videos / "depth" / item.segment.video_id / f"{k:06d}.png").astype(np.float64) / 1000.0
    assert float(s["depth"][-1, 0].max()) == pytest.approx(float(png[(png >= 0.2) & (png <= 4.5)].max()) / 4.5,
                                                           rel=1e-6)


def test_depth_only_root_needs_a_depth_rate_and_rgb_models_need_videos(no_videos):
    (no_videos / "dataset.yaml").write_text("name: no-rate\n")
    with pytest.raises(DataError) as e:
        build_datasets(cfg_for(no_videos, DEPTH_ONLY))
    assert f"{no_videos / 'depth' / 'v0000'}: video 'v0000' has no RGB, so its depth frames set the time" in one_line(e)
    assert f"write `fps: <rate>` in {no_videos / 'dataset.yaml'}" in one_line(e)
    (no_videos / "dataset.yaml").write_text("depth_fps: 8.0\n")  # depth_fps serves as well
    assert len(build_datasets(cfg_for(no_videos, DEPTH_ONLY))[0]) == 8
    with pytest.raises(DataError, match=r"videos/v0000\.mp4: video not found"):
        build_datasets(cfg_for(no_videos))
    shutil.rmtree(no_videos / "depth" / "v0003")  # neither RGB nor depth: one line naming both places
    with pytest.raises(DataError) as e:
        build_datasets(cfg_for(no_videos, DEPTH_ONLY))
    assert (f"{no_videos / 'videos' / 'v0003.mp4'}: video not found, and no depth for video 'v0003' at "
            f"{no_videos / 'depth' / 'v0003'}[.npz|.npy|.mkv]") in one_line(e)


def test_npz_and_mkv_depth_carry_their_own_rate(tiny_root, no_videos):
    """Depth stored as npz with a scalar `fps` key, or as an FFV1 mkv, times a video without RGB when dataset.yaml
    gives no rate (v0000 as mkv, the others as npz)."""
    (no_videos / "dataset.yaml").unlink()
    for folder in sorted(p for p in (no_videos / "depth").iterdir() if p.is_dir()):
        frames = np.stack([read_png16(p) for p in sorted(folder.glob("*.png"))])
        if folder.name == "v0000":
            write_depth_ffv1(no_videos / "depth" / "v0000.mkv", frames, 8.0)
        else:
            np.savez(no_videos / "depth" / f"{folder.name}.npz", depth=frames, fps=np.float64(8.0))
        shutil.rmtree(folder)
    ref, _, _ = build_datasets(cfg_for(tiny_root, DEPTH_ONLY))
    train, _, _ = build_datasets(cfg_for(no_videos, DEPTH_ONLY))
    assert [it.frame_idx.tolist() for it in train.items] == [it.frame_idx.tolist() for it in ref.items]
    assert torch.equal(train[0]["depth"], ref[0]["depth"]) and torch.equal(train[5]["depth"], ref[5]["depth"])
    assert train.depth_stores["v0000"].kind == "mkv" and train.probe("v0000").stream == "depth"
    np.savez(no_videos / "depth" / "v0002.npz", depth=np.zeros((3, 4, 4), np.uint16), fps=np.float64(-1.0))
    with pytest.raises(DataError, match=r"v0002\.npz: key 'fps' is -1\.0; it must be one positive number"):
        build_datasets(cfg_for(no_videos, DEPTH_ONLY))


def test_skipping_every_segment_names_the_real_reason(no_videos):
    """An RGB-D model on a ROOT without videos/ under data.on_bad_sample=skip: the error says every segment was bad
    and why, not that tau_a / tau_o / drop_style are off."""
    with pytest.raises(DataError) as e:
        build_datasets(cfg_for(no_videos, "data.on_bad_sample=skip"))
    msg = one_line(e)
    assert "has no usable samples: all 8 segments skipped as bad input, first reason: " in msg
    assert f"{no_videos / 'videos' / 'v0000.mp4'}: video not found" in msg and "tau_a" not in msg


def test_depth_only_root_validates_trains_and_tests(no_videos, tmp_path):
    """The validator, tools/train.py and tools/test.py on a depth-only ROOT with model.modalities=[depth]."""
    report = validate_root(no_videos, cfg_for(no_videos, DEPTH_ONLY))
    assert report.errors == [] and report.warnings == [], report.table()
    assert report.checks["videos"].checked == 6 and report.checks["segments"].checked == 12
    rgbd = validate_root(no_videos, cfg_for(no_videos))
    assert {f.check for f in rgbd.errors} == {"layout", "videos"}
    work = tmp_path / "run"
    run_tool([REPO / "tools/train.py", "--config", REPO / "configs/synthetic.yaml", f"data.root={no_videos}",
              f"work_dir={work}", DEPTH_ONLY, "train.epochs=1", "data.generate_if_missing=false", *TINY_RUN])
    trained = json.loads((work / "metrics.json").read_text())
    out = tmp_path / "test.json"
    run_tool([REPO / "tools/test.py", "--checkpoint", work, "--out", out, "--no-collapse"])
    tested = json.loads(out.read_text())
    for key in ("verb", "noun", "action"):
        assert tested[key]["top1"] == pytest.approx(trained[key]["top1"], abs=1e-6)
