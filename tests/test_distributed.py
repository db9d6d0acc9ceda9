"""accelerate, done right: 2-process DDP equals 1-process gradient accumulation, the LR schedule is sized by the global
batch, evaluation counts every sample once, and mixed precision is what the config says.

Why the distributed runs must match: accelerate shards the batches of one seeded sampler over the processes (process p
gets batches p, p+N, p+2N, ...), DDP averages the processes' gradients, and a 1-process run with N accumulation steps
averages the gradients of the same N consecutive batches. Dropout is off (each process would draw its own masks) and
every run uses one intra-op thread, so the float reductions happen in the same order. BatchNorm running statistics are
the one known difference: under DDP they follow process 0's batches (DDP broadcasts its buffers), so they are excluded
from the weight comparison — training itself uses batch statistics and is unaffected.
"""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, TINY_RUN, accelerate_args, run_tool
from r3d.engine.trainer import lr_lambda_factory

NO_DROPOUT = ["model.head_args.dropout=0.0", "model.safuser.dropout=0.0", "model.rtf.dropout=0.0", "data.hflip=0"]
LR, MIN_LR = 0.001, 1e-5


def _steps(work):
    return [json.loads(line) for line in (work / "train_log.jsonl").read_text().splitlines()]


def _is_bn_statistic(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.fixture(scope="module")
def ddp_runs(tiny_root, tmp_path_factory):
    """(1 process, batch 2, 2 accumulation steps) and (2 processes, batch 2 each): 2 epochs on 8 samples."""
    base = tmp_path_factory.mktemp("ddp")
    common = [f"data.root={tiny_root}", "train.epochs=2", "train.warmup_epochs=1", f"train.lr={LR}",
              f"train.min_lr={MIN_LR}", *TINY_RUN, *NO_DROPOUT, "eval.batch_size=3"]
    one, two = base / "one", base / "two"
    run_tool([REPO / "tools/train.py", *common, f"work_dir={one}", "train.grad_accum=2"])
    r = run_tool([*accelerate_args(2), REPO / "tools/train.py", *common, f"work_dir={two}"], timeout=600)
    return one, two, r


@pytest.mark.slow
def test_two_processes_equal_one_process_with_accumulation(ddp_runs):
    one, two, _ = ddp_runs
    states = [json.loads((w / "checkpoints" / "epoch_0002" / "r3d_state.json").read_text()) for w in (one, two)]
    assert [s["num_processes"] for s in states] == [1, 2]  # one DDP job, not two separate 1-process runs
    s1, s2 = _steps(one), _steps(two)
    # 8 samples / global batch 4 = 2 optimiser steps per epoch in both runs.
    assert [s["step"] for s in s1] == [s["step"] for s in s2] == [1, 2, 3, 4]
    for a, b in zip(s1, s2):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5), (a, b)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-12)
    w1, w2 = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert set(w1) == set(w2)
    params = [k for k in w1 if not _is_bn_statistic(k)]
    assert len(params) > 50
    worst = max((w1[k].double() - w2[k].double()).abs().max().item() for k in params if w1[k].numel())
    assert worst <= 1e-5
    # The comparison is not vacuous: the loss moves by far more than the tolerance between steps.
    assert max(s["loss"] for s in s1) - min(s["loss"] for s in s1) > 1e-3


@pytest.mark.slow
def test_lr_schedule_is_sized_by_the_global_batch(ddp_runs):
    """Warm-up 1 epoch then cosine, per optimiser step; 2 steps per epoch because the global batch is 2 x 2."""
    one, two, _ = ddp_runs
    fn = lr_lambda_factory(total_steps=4, warmup_steps=2, base_lr=LR, min_lr=MIN_LR)
    expected = [LR * fn(s) for s in range(4)]  # LR used by steps 1..4
    assert expected[:2] == pytest.approx([LR / 2, LR])  # linear warm-up: (s + 1) / warmup
    assert expected[3] == pytest.approx(MIN_LR + (LR - MIN_LR) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    for run in (one, two):
        assert [s["lr"] for s in _steps(run)] == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_distributed_evaluation_counts_each_sample_once(ddp_runs, tmp_path):
    """The 2-process run validated 4 samples in batches of 3: process 0 got samples 0-2, process 1 sample 3 padded
    with two duplicates. gather_for_metrics must drop those, so one process evaluating the same exported weights
    reproduces the 2-process metrics exactly."""
    _, two, _ = ddp_runs
    run_tool([REPO / "tools/test.py", "--checkpoint", two, "--no-collapse", "--out", tmp_path / "single.json"])
    single = json.loads((tmp_path / "single.json").read_text())
    multi = json.loads((two / "metrics.json").read_text())
    for key in ("verb", "noun", "action"):
        assert multi[key] == single[key]


def test_find_unused_parameters_only_with_modality_dropout(monkeypatch):
    """DDP's unused-parameter search (an extra graph traversal every step) is on only when a branch can be skipped."""
    import r3d.engine.trainer as trainer
    from r3d.config import load_config

    seen = {}

    def fake(cfg, find_unused):
        seen["find_unused"] = find_unused
        raise RuntimeError("stop")

    monkeypatch.setattr(trainer, "make_accelerator", fake)
    for p, expected in ((0.0, False), (0.3, True)):
        cfg = load_config(None, [f"model.modality_dropout={p}", "work_dir=/nonexistent/r3d-test"])
        with pytest.raises(RuntimeError, match="stop"):
            trainer.train(cfg)
        assert seen["find_unused"] is expected


def test_bf16_autocast_reaches_the_model_and_svds_stay_fp32(tmp_path, tiny_root):
    """train.mixed_precision=bf16: the model's layers compute in bf16 on CPU, the effective-rank SVDs in fp32."""
    from accelerate.state import AcceleratorState

    from r3d.config import load_config
    from r3d.engine.trainer import make_accelerator
    from r3d.metrics.collapse import effective_rank

    AcceleratorState._reset_state(True)
    try:
        cfg = load_config(None, ["train.mixed_precision=bf16", f"work_dir={tmp_path}", "train.log_with=none"])
        acc = make_accelerator(cfg, find_unused=False)
        inner = torch.nn.Linear(8, 8)
        seen = []
        inner.register_forward_hook(lambda m, i, o: seen.append(o.dtype))  # prepare() casts the outer output to fp32
        model = acc.prepare(torch.nn.Sequential(inner))
        z = torch.randn(4, 6, 8)
        with acc.autocast():
            assert model(z).dtype == torch.float32
            er = effective_rank(z.to(torch.bfloat16))
        assert seen == [torch.bfloat16]
        assert er.dtype == torch.float32
        assert torch.allclose(er, effective_rank(z.to(torch.bfloat16).float()), atol=0)
    finally:
        AcceleratorState._reset_state(True)


def test_fp16_without_gpu_is_an_error(tmp_path):
    """fp16 on CPU would silently run in fp32 under accelerate: refuse it with the fix."""
    from r3d.config import load_config
    from r3d.engine.trainer import make_accelerator

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is valid")
    cfg = load_config(None, ["train.mixed_precision=fp16", f"work_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"train\.mixed_precision=fp16 needs a GPU.*use bf16"):
        make_accelerator(cfg, find_unused=False)
