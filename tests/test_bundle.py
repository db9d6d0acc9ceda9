"""The checkpoint bundled with the package (issue 7: the README demo works right after install, without training).

- `bundle_checkpoint` stores float32 weights as float16 (half the bytes), keeps a tensor float32 when float16 would
  overflow, and records what it did in model.json; loading gives float32 weights equal to the fp16-rounded originals,
  so the bundle's outputs equal those of the original model with its weights rounded by hand.
- `bundled_checkpoint` finds the folder through importlib.resources; setup.cfg's package_data ships it in a wheel.
- tools/demo.py without --checkpoint uses the bundle (a bundle of a tiny model here; the real bundle when present).
"""
from __future__ import annotations

import configparser
import glob
import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import REPO, run_tool
from r3d.engine import export
from r3d.engine.checkpoint import config_from_meta, load_meta, load_model_weights
from r3d.data.clip import sample_clip
from r3d.models.anticipator import Anticipator
from test_stream import tiny_checkpoint

REAL_BUNDLE = REPO / "r3d" / "assets" / "sample" / "checkpoint"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(checkpoint: Path) -> Anticipator:
    meta = load_meta(checkpoint)
    return Anticipator(config_from_meta(meta), meta["num_classes"], actions=meta["actions"]).eval()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("bundle_src"))


@pytest.fixture(scope="module")
def bundle(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "checkpoint"
    return out, export.bundle_checkpoint(source, out)


def test_bundle_stores_float16_and_loads_back_as_the_rounded_float32_weights(source, bundle):
    out, record = bundle
    original, packed = load_file(str(source / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert packed.keys() == original.keys()
    floats = [k for k, v in original.items() if v.dtype == torch.float32]
    others = [k for k in original if k not in floats]
    assert len(floats) > 20 and others  # BatchNorm's int64 counters
    assert all(packed[k].dtype == torch.float16 for k in floats)
    assert all(packed[k].dtype == original[k].dtype and torch.equal(packed[k], original[k]) for k in others)
    assert record["bundle_bytes"] < 0.55 * record["source_bytes"]

    expected_err = max((original[k] - original[k].half().float()).abs().max().item() for k in floats)
    meta = json.loads((out / "model.json").read_text())
    assert meta["bundle"] == {"source": source.name, "stored_dtype": "float16", "float32_tensors": [],
                              "max_abs_rounding_error": expected_err}
    assert {k: v for k, v in meta.items() if k != "bundle"} == load_meta(source)

    model = _model(out)
    load_model_weights(model, out)
    state = model.state_dict()
    for k in floats:
        assert state[k].dtype == torch.float32 and torch.equal(state[k], original[k].half().float()), k


def test_bundle_outputs_equal_the_original_model_with_hand_rounded_weights(source, bundle):
    out, _ = bundle
    rounded, bundled = _model(source), _model(out)
    load_model_weights(rounded, source)
    with torch.no_grad():
        for p in rounded.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.half().float())
    load_model_weights(bundled, out)
    torch.manual_seed(1)
    batch = {"rgb": torch.randn(2, 8, 3, 32, 32), "depth": torch.rand(2, 8, 1, 32, 32)}
    with torch.no_grad():
        a, b = rounded(batch)["logits"], bundled(batch)["logits"]
    for key in ("verb", "noun", "action"):
        assert torch.equal(a[key], b[key]), key


def test_tensor_that_would_overflow_float16_stays_float32(source, tmp_path):
    state = load_file(str(source / "model.safetensors"))
    key = next(k for k, v in state.items() if v.dtype == torch.float32 and v.numel() > 1)
    state[key] = state[key].clone()
    state[key].view(-1)[0] = 1e5  # float16 tops out at 65504
    src = tmp_path / "src"
    src.mkdir()
    save_file(state, str(src / "model.safetensors"))
    (src / "model.json").write_text((source / "model.json").read_text())
    record = export.bundle_checkpoint(src, tmp_path / "out")
    assert record["float32_tensors"] == [key]
    packed = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert packed[key].dtype == torch.float32 and torch.equal(packed[key], state[key])


def test_bundle_tool_line_and_bad_input(source, tmp_path, capsys):
    tool = _tool("bundle_checkpoint")
    assert tool.main([str(source), "--out", str(tmp_path / "b")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {tmp_path / 'b'}: ") and "KB of float32 weights stored as float16" in line
    assert tool.main([str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert tool.main([str(source), "--out", str(source)]) == 2  # never overwrite the source
    assert "would overwrite its source checkpoint" in capsys.readouterr().err


def test_bundled_checkpoint_is_found_through_importlib_resources(monkeypatch):
    from importlib.resources import files

    folder = Path(str(files("r3d").joinpath("assets", "sample", "checkpoint")))
    if (folder / "model.safetensors").is_file():
        assert export.bundled_checkpoint() == folder
    monkeypatch.setattr(export, "BUNDLE_PARTS", ("assets", "sample", "no_such_folder"))
    with pytest.raises(FileNotFoundError, match=r"no_such_folder: no bundled checkpoint .* pass --checkpoint RUN_DIR, "
                                                r"or bundle a trained run with `python tools/bundle_checkpoint.py"):
        export.bundled_checkpoint()


def test_package_data_ships_the_sample_clip_and_the_bundle(tmp_path):
    """setup.cfg's package_data patterns, expanded the way setuptools' build_py does (glob, recursive=True), take
    every file of the sample folder, the bundle included, into the wheel."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["r3d"].replace("\n", ",").split(",") if p.strip()]
    wanted = ["assets/sample/rgb.mp4", "assets/sample/depth.npz", "assets/sample/segments.csv",
              "assets/sample/checkpoint/model.safetensors", "assets/sample/checkpoint/model.json"]
    pkg = tmp_path / "r3d"
    for rel in wanted:
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(b"x")
    shipped = {os.path.relpath(p, pkg) for pat in patterns for p in glob.glob(str(pkg / pat), recursive=True)
               if os.path.isfile(p)}
    assert set(wanted) <= shipped


def _check_pred(doc: dict, meta: dict, topk: int) -> None:
    """pred.json of a demo run: one step per stride from the first full window, top-k names from model.json."""
    assert doc["num_frames"] == 96 and doc["fps"] == 8.0
    first, stride = doc["window"]["first_frame"], doc["stride"]
    assert [s["frame"] for s in doc["steps"]] == list(range(first, 96, stride))
    assert doc["summary"]["steps"] == len(doc["steps"]) > 0
    for s in doc["steps"]:
        assert len(s["window"]) == doc["window"]["num_frames"] and s["window"][-1] == s["frame"]
        assert len(s["topk"]) == topk
        probs = [a["prob"] for a in s["topk"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
        for a in s["topk"]:
            assert meta["actions"][a["action"]] == [a["verb_id"], a["noun_id"]]
            assert a["verb"] == meta["verb_classes"][a["verb_id"]] and a["noun"] == meta["noun_classes"][a["noun_id"]]
        assert set(s["erank"]) == {"rgb", "depth", "fused"}


def test_demo_without_checkpoint_uses_the_bundle(bundle, tmp_path, monkeypatch, capsys):
    out_dir, _ = bundle
    monkeypatch.setattr(export, "bundled_checkpoint", lambda: out_dir)
    out = tmp_path / "pred.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 frames on a shared machine
    try:
        assert _tool("demo").main(["--sample", "--out", str(out), "--topk", "3", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out.strip().endswith(f"wrote {out}")
    doc = json.loads(out.read_text())
    assert doc["checkpoint"] == str(out_dir) and doc["warnings"] == []
    _check_pred(doc, load_meta(out_dir), topk=3)


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_BUNDLE / "model.safetensors").is_file(),
                    reason="no bundled checkpoint in r3d/assets/sample/checkpoint yet (python "
                           "tools/bundle_checkpoint.py RUN_DIR writes it)")
def test_readme_demo_command_runs_on_the_real_bundle(tmp_path):
    out = tmp_path / "pred.json"
    r = run_tool([REPO / "tools/demo.py", "--sample", "--out", out, "--no-progress"])
    assert r.stdout.strip().splitlines()[-1].startswith("96 frames, ")
    doc = json.loads(out.read_text())
    assert doc["checkpoint"] == str(REAL_BUNDLE) and doc["rgb"] == str(sample_clip()[0])
    meta = load_meta(REAL_BUNDLE)
    assert meta["bundle"]["stored_dtype"] in ("float16", "bfloat16", "float32")
    _check_pred(doc, meta, topk=5)
