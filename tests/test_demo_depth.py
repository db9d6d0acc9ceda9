"""The depth settings a model is trained with travel in its checkpoint: the demo feeds the model the same depth
tensor as the dataset did, wherever the clip lives."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_RUN
from r3d.config import load_config
from r3d.data.clip import clip_depth_settings
from r3d.data.dataset import AnticipationDataset
from r3d.data.formats import build_info
from r3d.engine.builder import checkpoint_depth
from r3d.engine.demo import run_demo
from r3d.engine.stream import StreamingAnticipator
from r3d.engine.trainer import train
from test_stream import one_thread  # noqa: F401  (autouse: batch-1 frames, one intra-op thread)


@pytest.fixture(scope="module")
def deep_run(tiny_root, tmp_path_factory):
    """A tiny dataset whose dataset.yaml sets depth_max: 6.0 and depth_min: 0.5, and a 1-epoch model trained on it."""
    base = tmp_path_factory.mktemp("deep")
    root = base / "root"
    shutil.copytree(tiny_root, root)
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    meta.update(depth_max=6.0, depth_min=0.5)
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta))
    cfg = load_config(None, [*TINY_RUN, f"data.root={root}", f"work_dir={base / 'run'}", "train.epochs=1"])
    train(cfg)
    return root, base / "run", cfg


def test_checkpoint_records_the_resolved_depth_settings(deep_run):
    root, run, cfg = deep_run
    assert cfg.data.depth_max is None  # the config leaves it to dataset.yaml ...
    meta = json.loads((run / "model.json").read_text())
    assert meta["depth"] == {"depth_scale": 0.001, "depth_min": 0.5, "depth_max": 6.0}  # ... model.json resolves it
    # a clip elsewhere (no dataset.yaml next to it) is read with the trained range; flags still win
    s = clip_depth_settings(None, checkpoint_depth(meta))
    assert (s["depth_scale"], s["depth_min"], s["depth_max"]) == (0.001, 0.5, 6.0)
    s = clip_depth_settings(None, checkpoint_depth(meta), depth_max=5.0)
    assert s["depth_max"] == 5.0
    # an older checkpoint without the record falls back to its config, then to r3d's defaults
    assert checkpoint_depth({"config": {"data": {"depth_max": 5.5}}}) == \
        {"depth_scale": 0.001, "depth_min": 0.2, "depth_max": 5.5}


def test_demo_on_a_clip_outside_the_dataset_feeds_the_dataset_depth(deep_run, tmp_path, monkeypatch):
    root, run, cfg = deep_run
    ds = AnticipationDataset(cfg, cfg.data.val_split, False, build_info(cfg))
    sample = ds[0]
    vid, frames = sample["video_id"], sample["frame_idx"].tolist()
    elsewhere = tmp_path / "recordings"  # not a ROOT: no dataset.yaml anywhere near the clip
    elsewhere.mkdir()
    shutil.copy(root / "videos" / f"{vid}.mp4", elsewhere / "clip.mp4")
    shutil.copytree(root / "depth" / vid, elsewhere / "clip_depth")

    seen = []  # the depth tensor of every frame the demo pushes, in frame order
    original = StreamingAnticipator.preprocess

    def record(self, rgb_frame, depth_frame):
        out = original(self, rgb_frame, depth_frame)
        seen.append(out.get("depth"))
        return out

    monkeypatch.setattr(StreamingAnticipator, "preprocess", record)
    doc = run_demo(run, elsewhere / "clip.mp4", elsewhere / "clip_depth", out=None, progress=False)
    assert doc["depth_settings"]["depth_max"] == 6.0 and doc["depth_settings"]["depth_min"] == 0.5
    streamed = torch.stack([seen[k] for k in frames])  # (T, 1, S, S)
    torch.testing.assert_close(streamed, sample["depth"], rtol=0, atol=1e-6)
    # with r3d's default range (what the demo used before the range travelled with the checkpoint) it would differ
    seen.clear()
    run_demo(run, elsewhere / "clip.mp4", elsewhere / "clip_depth", out=None, progress=False, depth_min=0.2,
             depth_max=4.5)
    assert float(np.abs((torch.stack([seen[k] for k in frames]) - sample["depth"]).numpy()).max()) > 0.05
