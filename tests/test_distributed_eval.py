"""tools/test.py under `accelerate launch` on a machine without GPUs: one evaluation over 2 CPU processes (gloo), whose
metrics equal a 1-process evaluation of the same weights.

4 validation samples in batches of 3: process 0 evaluates samples 0-2, process 1 sample 3 plus two padded duplicates
that `gather_for_metrics` must drop. The EK100 export lists every gathered segment with all its scores, so it shows
directly that each sample counted once and got the same scores as in one process.
"""
import json

import pytest
import torch

from conftest import REPO, TINY_RUN, accelerate_args, run_tool


@pytest.fixture(scope="module")
def random_checkpoint(tiny_root, tmp_path_factory):
    """Random weights of the tiny model for the tiny ROOT, exported like tools/train.py does."""
    from r3d.config import load_config
    from r3d.engine.builder import build_data, build_model, model_meta
    from r3d.engine.checkpoint import export_model

    out = tmp_path_factory.mktemp("eval_ckpt")
    cfg = load_config(None, [f"data.root={tiny_root}", *TINY_RUN, f"work_dir={out}"])
    data = build_data(cfg, train=False)
    torch.manual_seed(0)
    model = build_model(cfg, data.info)
    export_model(model, model_meta(cfg, data.info, model), out)
    return out


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.mark.slow
def test_two_cpu_processes_evaluate_like_one(random_checkpoint, tmp_path):
    args = [REPO / "tools/test.py", "--checkpoint", random_checkpoint, "eval.batch_size=3", "eval.collapse=true"]
    one = [*args, "--out", tmp_path / "one.json", "--export-ek100", tmp_path / "one_ek100.json"]
    two = [*args, "--out", tmp_path / "two.json", "--export-ek100", tmp_path / "two_ek100.json"]
    run_tool(one)
    r = run_tool([*accelerate_args(2), *two], timeout=300)
    assert r.stdout.count("wrote ") == 1  # the main process reports; the other stays quiet
    m1, m2 = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (m1["num_processes"], m2["num_processes"]) == (1, 2)  # one 2-process job, not two 1-process runs
    assert m1["num_samples"] == m2["num_samples"] == 4
    for key in ("verb", "noun", "action", "data"):
        assert m2[key] == m1[key], key
    # Collapse statistics are functions of per-sample tokens gathered in the same order. The padded batch computes
    # sample 3 next to other samples, so BLAS blocks its float32 products differently: each token may move by a few
    # units of float32 roundoff, u = 2**-24 ≈ 6e-8, times √K for a length-K reduction (K ≤ 576 here: the 3×3×64
    # convolutions), i.e. ≲ 1.5e-6 relative. The statistics are singular-value entropies, erank = exp(−Σ p log p) with
    # p = σ/Σσ: a relative change δ of the σ moves the entropy by at most 2δ·max|log p| ≤ 2δ·log(1e4) ≈ 18δ for the
    # non-negligible σ of these ≤ 4-sample matrices (σ below 1e-4 of the sum are under the erank's own 1e-12 floor in
    # effect). So |Δ| ≤ 18 × 1.5e-6 ≈ 3e-5 relative bounds a correct 2-process result; a sample counted twice or lost
    # changes these 4-sample statistics by whole percents.
    tol = 18 * 2 ** -24 * 576 ** 0.5 * 1.1
    f1, f2 = _flat(m1["collapse"]), _flat(m2["collapse"])
    numbers = [k for k, v in f1.items() if isinstance(v, (int, float, list)) and "seconds" not in k
               and "time" not in k]
    assert len(numbers) > 10 and set(numbers) <= set(f2)
    for k in numbers:
        assert f2[k] == pytest.approx(f1[k], rel=tol, abs=1e-6, nan_ok=True), k

    e1, e2 = (json.loads((tmp_path / f"{n}_ek100.json").read_text())["results"] for n in ("one", "two"))
    assert sorted(e2) == sorted(e1) and len(e1) == 4  # each segment once: the padded duplicates were dropped
    for seg in e1:
        for part in ("verb", "noun"):
            assert e2[seg][part].keys() == e1[seg][part].keys()
            for c, p in e1[seg][part].items():
                assert e2[seg][part][c] == pytest.approx(p, abs=1e-6)
