"""Command-line habits users bring from timm and mmaction2: -c, --work-dir, --cfg-options, --resume before an override,
and a weights file where a run folder was expected."""
from __future__ import annotations

import argparse
import json
import logging

import pytest

from conftest import TINY_RUN, run_tool
from r3d.cli import add_config_arguments, add_resume_argument, config_overrides, parse_known, setup_logging
from r3d.config import load_config


def _parse(argv):
    ap = argparse.ArgumentParser()
    add_config_arguments(ap)
    add_resume_argument(ap)
    args = parse_known(ap, argv)
    return args, config_overrides(args)


def test_aliases_give_the_same_overrides_in_order():
    args, ov = _parse(["-c", "configs/synthetic.yaml", "seed=3", "--work-dir", "runs/x", "--cfg-options",
                       "train.epochs=1", "model.dim=64"])
    assert args.config == "configs/synthetic.yaml" and args.resume is None
    assert ov == ["seed=3", "train.epochs=1", "model.dim=64", "work_dir=runs/x"]
    cfg = load_config(args.config, ov)
    assert (cfg.work_dir, cfg.train.epochs, cfg.model.dim, cfg.seed) == ("runs/x", 1, 64, 3)
    # the old spelling gives the same config
    args2, ov2 = _parse(["--config", "configs/synthetic.yaml", "work_dir=runs/x", "train.epochs=1", "model.dim=64",
                         "seed=3"])
    assert load_config(args2.config, ov2) == cfg


@pytest.mark.parametrize("argv, resume, overrides", [
    (["--resume", "train.epochs=30"], "auto", ["train.epochs=30"]),  # an override is never read as the state folder
    (["--resume", "train.epochs=30", "seed=1"], "auto", ["train.epochs=30", "seed=1"]),
    (["seed=1", "--resume"], "auto", ["seed=1"]),
    (["--resume", "auto", "model.dim=64"], "auto", ["model.dim=64"]),  # an override after an option
    (["--resume", "runs/x/checkpoints/epoch_0002"], "runs/x/checkpoints/epoch_0002", []),
])
def test_resume_cannot_swallow_an_override(argv, resume, overrides):
    args, ov = _parse(argv)
    assert args.resume == resume and ov == overrides


def test_unknown_option_is_still_an_error(capsys):
    with pytest.raises(SystemExit):
        _parse(["--work-dirr", "x"])
    assert "unrecognized arguments: --work-dirr" in capsys.readouterr().err


def test_library_info_goes_to_the_log_file_not_the_console(tmp_path, capsys):
    path = setup_logging(tmp_path / "run")
    logging.getLogger("accelerate.checkpointing").info("Saving current state to somewhere")
    logging.getLogger("r3d.train").warning("something to see")
    for h in logging.getLogger().handlers:
        h.flush()
    err = capsys.readouterr().err
    assert "Saving current state" not in err and "something to see" in err
    text = path.read_text()
    assert "Saving current state to somewhere" in text and "something to see" in text
    setup_logging(None)  # drop the file handler again


def test_train_with_mmaction_spellings_then_resume_with_an_override_then_test_a_state(tiny_root, tmp_path):
    work = tmp_path / "run"
    tiny = [f"data.root={tiny_root}", *TINY_RUN]
    r = run_tool(["tools/train.py", "-c", "configs/synthetic.yaml", "--work-dir", str(work), "--cfg-options",
                  "train.epochs=1", *tiny])
    assert json.loads((work / "metrics.json").read_text())["action"]["top1"] >= 0
    assert "Saving current state" not in r.stderr + r.stdout  # accelerate's INFO went to the log file
    assert "Saving current state" in (work / "log.txt").read_text()
    assert sum(1 for line in r.stdout.splitlines() if line.startswith("epoch 1/1: loss")) == 1
    # --resume followed by key=value: resumes the latest state and applies the override (one more epoch)
    run_tool(["tools/train.py", "-c", "configs/synthetic.yaml", "--work-dir", str(work), "--resume", "train.epochs=2",
              *tiny])
    latest = (work / "checkpoints" / "latest").read_text().strip()
    assert latest == "epoch_0002"
    # tools/test.py on a training state (no model.json next to its weights): the run's config.yaml describes it
    out = tmp_path / "m.json"
    run_tool(["tools/test.py", str(work / "checkpoints" / "epoch_0002"), "--out", str(out), "eval.collapse=false"])
    state_metrics = json.loads(out.read_text())
    run_tool(["tools/test.py", "--checkpoint", str(work), "--out", str(tmp_path / "final.json"),
              "eval.collapse=false"])
    final = json.loads((tmp_path / "final.json").read_text())
    assert state_metrics["action"] == final["action"]  # the last state's weights are the exported ones
