"""End-to-end smoke test: a tiny generated RGB-D set, one epoch of training, then tools/test.py on the result."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from r3d.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]

TINY = ["train.epochs=1", "train.batch_size=8", "eval.batch_size=16", "data.num_workers=0", "train.log_with=none",
        "train.warmup_epochs=0", "model.dim=32", "model.head_args.depth=1"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, videos=6, val_fraction=0.34, pairs_per_video=2, size=32, seed=3, workers=1, progress=False)
    return root


@pytest.mark.slow
def test_train_then_test_cli(tiny_root, tmp_path):
    work = tmp_path / "run"
    common = [f"data.root={tiny_root}", f"work_dir={work}", "data.img_size=32", *TINY]
    r = subprocess.run([sys.executable, str(REPO / "tools/train.py"), "--config", str(REPO / "configs/synthetic.yaml"),
                        *common], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((work / "metrics.json").read_text())
    for key in ("verb", "noun", "action"):
        for m in ("top1", "top5", "mt5r"):
            assert 0.0 <= metrics[key][m] <= 100.0
        assert metrics[key]["top1"] <= metrics[key]["top5"]
    assert (work / "model.safetensors").is_file() and (work / "config.yaml").is_file()
    assert (work / "checkpoints" / "latest").read_text().strip() == "epoch_0001"

    out = tmp_path / "test.json"
    ek = tmp_path / "ek100.json"
    r = subprocess.run([sys.executable, str(REPO / "tools/test.py"), "--checkpoint", str(work), "--out", str(out),
                        "--export-ek100", str(ek)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    tested = json.loads(out.read_text())
    # Same weights, same split, same preprocessing: test.py reproduces the training run's final validation metrics.
    for key in ("verb", "noun", "action"):
        assert tested[key] == pytest.approx(metrics[key], abs=1e-6)
    from r3d.metrics.ek100 import validate_ek100_json

    assert validate_ek100_json(str(ek), 4, 4, num_actions=16) == []
    assert len(json.loads(ek.read_text())["results"]) > 0
    col = tested["collapse"]
    assert set(col["reliance"]["without"]) == {"rgb", "depth"}
