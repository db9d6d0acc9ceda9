"""Shared test fixtures: one tiny synthetic RGB-D ROOT (generated once per session) and helpers to run the tools.

The tiny ROOT has 6 videos of 32×32 px at 8 fps, 2 annotated segments each: 4 training videos (8 segments) and
2 validation videos (4 segments). 8 training samples split evenly into batches of 2 per process for 2 processes,
which the distributed-equivalence test relies on.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_ROOT_ARGS = dict(videos=6, val_fraction=0.34, pairs_per_video=2, size=32, seed=3)

# A model small enough that one epoch on the tiny ROOT takes about a second on one CPU core.
TINY_MODEL = ["model.dim=32", "model.head_args.depth=1", "data.img_size=32"]
TINY_RUN = ["train.batch_size=2", "eval.batch_size=2", "data.num_workers=0", "train.log_with=none",
            "eval.collapse=false", *TINY_MODEL]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A tiny synthetic ROOT (docs/data.md folder format: mp4 videos, 16-bit PNG depth, EK100-style CSVs). Read-only:
    tests that damage a dataset use `tiny_copy`."""
    from r3d.data.synthetic import generate

    root = tmp_path_factory.mktemp("tiny_synthetic")
    generate(root, workers=1, progress=False, **TINY_ROOT_ARGS)
    return root


@pytest.fixture
def tiny_copy(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny ROOT, free to damage."""
    dst = tmp_path / "root"
    shutil.copytree(tiny_root, dst)
    return dst


def single_thread_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a tool subprocess: one intra-op thread (so float reductions are ordered the same way in a
    1-process and a 2-process run), no GPU, quiet tokenizers/tqdm."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TQDM_DISABLE="1",
               PYTHONHASHSEED="0")
    env.update(extra or {})
    return env


def run_tool(args: Sequence[str], timeout: float = 300, env: Optional[Dict[str, str]] = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run `python ARGS...` from the repository root; with `check`, fail the test showing the tool's stderr."""
    r = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                       env=env or single_thread_env())
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args[:2]))} exited with {r.returncode}:\n{r.stderr[-4000:]}")
    return r


def accelerate_args(num_processes: int) -> List[str]:
    """Arguments after `python` for `accelerate launch` of N local processes on CPU (torchrun + gloo; r3d's trainer
    selects CPU when there is no GPU), on a free port."""
    return ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
