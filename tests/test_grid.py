"""The benchmark grid: CSV aggregation (mean ± std by hand), resumability with stand-in train/test functions (no model
is trained), the "did RTF beat every baseline" verdicts on constructed numbers, results.md computed from the CSV, and
one tiny end-to-end run of tools/benchmark.py (slow)."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from r3d import benchmark as G
from r3d.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs/synthetic.yaml")


def _row(variant, noise, seed, top1, **extra):
    r = {"variant": variant, "noise": G.noise_tag(noise), "seed": seed, "action_top1": top1}
    r.update(extra)
    return r


def _write(path, rows):
    for r in rows:
        G.append_row(path, r)
    return G.read_rows(path)


# -- CSV and aggregation ---------------------------------------------------------------------------------------------
def test_csv_round_trip_and_mean_std(tmp_path):
    path = tmp_path / "runs.csv"
    rows = _write(path, [_row("concat", 0.0, 0, 10.0, erank_fused=2.0), _row("concat", 0.0, 1, 12.0, erank_fused=3.0),
                         _row("concat", 0.0, 2, 14.0, erank_fused=None), _row("concat", 0.5, 0, 7.0),
                         _row("rtf_bn", 0.0, 0, 20.0, obs_fractions=[0.5, 1.0], obs_H=[0.25, float("nan")])])
    assert next(csv.reader(open(path))) == G.COLUMNS
    assert len(rows) == 5 and rows[0]["noise"] == "0.0" and rows[0]["erank_pre_rgb"] == ""
    agg = G.aggregate(rows)
    s = agg[("concat", "0.0")]["action_top1"]
    assert (s.mean, s.n) == (12.0, 3) and s.std == pytest.approx(2.0)  # sample std of 10, 12, 14
    e = agg[("concat", "0.0")]["erank_fused"]
    assert (e.mean, e.n) == (2.5, 2) and e.std == pytest.approx(math.sqrt(0.5))  # the empty cell is not a value
    one = agg[("concat", "0.5")]["action_top1"]
    assert (one.mean, one.std, one.n) == (7.0, 0.0, 1)
    assert agg[("concat", "0.5")]["H"].mean is None
    assert G.num_list(rows[4]["obs_H"]) == [0.25, None]
    assert G.fmt_stat(s) == "12.00 ± 2.00" and G.fmt_stat(agg[("concat", "0.5")]["H"]) == "—"
    assert G.fmt_stat(one) == "7.00"  # one seed: no spread to show


def test_append_after_a_cut_line_and_foreign_header(tmp_path):
    path = tmp_path / "runs.csv"
    G.append_row(path, _row("concat", 0.0, 0, 10.0))
    with open(path, "a") as f:
        f.write("sum,0.0")  # a kill in the middle of a write: no newline, too few fields
    G.append_row(path, _row("sum", 0.0, 0, 11.0))
    rows = G.read_rows(path)
    assert [(r["variant"], r["action_top1"]) for r in rows] == [("concat", "10.0"), ("sum", "11.0")]
    # an older CSV with fewer columns keeps its header; unknown keys are dropped
    old = tmp_path / "old.csv"
    old.write_text("variant,noise,seed,action_top1\n")
    G.append_row(old, _row("cen", 1.0, 2, 5.0, erank_fused=3.0))
    assert old.read_text().splitlines() == ["variant,noise,seed,action_top1", "cen,1.0,2,5.0"]


def test_learning_speed_columns_come_from_the_epoch_log(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"epoch": 1, "train/loss": 2.0, "val/action/top1": 40.0}, {"epoch": 2, "train/loss": 1.5},
             {"epoch": 3, "val/action/top1": 85.0}, {"epoch": 4, "val/action/top1": 79.0}]
    (run / "epoch_log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"epoch": 5, "val')
    assert G.val_history(run / "epoch_log.jsonl") == [40.0, None, 85.0, 79.0]  # the cut last line is dropped
    cfg = load_config(None, ["model.modalities=[rgb]"])
    row = G.row_from_metrics(G.Run("rgb_only", 0.0, 0), cfg, {}, {}, 1.0, run)
    assert row["val_top1_by_epoch"] == [40.0, None, 85.0, 79.0]
    assert row[f"epochs_to_{G.LEARNED_AT:.0f}"] == 3  # the first epoch at or above 80 %
    G.append_row(tmp_path / "runs.csv", row)
    back = G.read_rows(tmp_path / "runs.csv")[0]
    assert back["val_top1_by_epoch"] == "40.0 nan 85.0 79.0" and back["epochs_to_80"] == "3"
    (run / "epoch_log.jsonl").write_text(json.dumps({"epoch": 1, "val/action/top1": 90.0}) + "\n")
    row = G.row_from_metrics(G.Run("rgb_only", 0.0, 0), cfg, {}, {}, 1.0, run)
    assert "val_top1_by_epoch" not in row  # validated once (at the end): no learning curve to report


def test_mean_curve_over_seeds():
    rows = [_row("rtf_bn", 0.0, 0, 1.0, obs_fractions="0.5 1.0", obs_H="0.2 0.6"),
            _row("rtf_bn", 0.0, 1, 1.0, obs_fractions="0.5 1.0", obs_H="0.4 nan")]
    fr, h = G.mean_curve(rows, "obs_H")
    assert fr == [0.5, 1.0] and h[0] == pytest.approx(0.3) and h[1] == pytest.approx(0.6)


# -- verdicts ----------------------------------------------------------------------------------------------------------
def _seeds(variant, noise, values, **cols):
    return [_row(variant, noise, s, v, **{k: c[s] for k, c in cols.items()}) for s, v in enumerate(values)]


def test_rtf_beats_every_baseline_paired_by_seed(tmp_path):
    rows = _write(tmp_path / "r.csv", _seeds("rtf_bn", 0.0, [50.0, 52.0, 54.0])
                  + _seeds("concat", 0.0, [40.0, 41.0, 42.0])
                  + _seeds("sum", 0.0, [47.0, 48.0, 49.0]) + _seeds("rgb_only", 0.0, [25.0, 25.0, 25.0])
                  + _seeds("rtf_svd", 0.0, [99.0, 99.0, 99.0]))  # another RTF variant is not a baseline
    v = G.rtf_verdict(rows, "rtf_bn", 0.0)
    assert [c.other for c in v.comparisons] == ["concat", "sum", "rgb_only"]
    assert v.beat_all and v.closest.other == "sum"
    # paired differences vs sum: 3, 4, 5 → mean 4, sample std 1
    assert (v.closest.diff, v.closest.std, v.closest.n, v.closest.paired) == (4.0, 1.0, 3, True)
    assert "**yes**" in v.text() and "sum, +4.00 ± 1.00" in v.text()


def test_rtf_loss_and_tie(tmp_path):
    rows = _write(tmp_path / "r.csv", _seeds("rtf_bn", 0.5, [50.0, 52.0, 54.0])
                  + _seeds("safuser", 0.5, [53.0, 55.0, 57.0])  # d = −3 ± 0 → loss
                  + _seeds("cen", 0.5, [49.0, 53.0, 53.0])  # d = 1, 1, −1 ... → mean 0.33, std 1.15 → tie
                  + _seeds("concat", 0.5, [40.0, 40.0, 40.0]))  # win
    v = G.rtf_verdict(rows, "rtf_bn", "0.5")
    verdicts = {c.other: c.verdict for c in v.comparisons}
    assert verdicts == {"safuser": "loss", "cen": "tie", "concat": "win"}
    assert not v.beat_all
    cen = next(c for c in v.comparisons if c.other == "cen")
    assert cen.diff == pytest.approx(1 / 3) and cen.std == pytest.approx(math.sqrt(4 / 3))
    text = v.text()
    assert "**no**" in text and "lost to safuser (-3.00 ± 0.00)" in text and "tied with (within one std) cen" in text
    assert "beat concat (+12.00 ± 2.00)" in text


def test_exact_tie_with_one_seed_and_unpaired_comparison(tmp_path):
    rows = _write(tmp_path / "r.csv", [_row("rtf_svd", 1.0, 0, 30.0), _row("concat", 1.0, 0, 30.0),
                                       _row("sum", 1.0, 5, 20.0), _row("sum", 1.0, 6, 24.0)])
    v = G.rtf_verdict(rows, "rtf_svd", 1.0)
    c = {x.other: x for x in v.comparisons}
    assert c["concat"].verdict == "tie" and c["concat"].diff == 0.0 and c["concat"].std == 0.0
    # no common seed with sum: difference of means (30 − 22), std √(0² + (2√2)²)
    assert not c["sum"].paired and c["sum"].diff == 8.0 and c["sum"].std == pytest.approx(math.sqrt(8.0))
    assert not v.beat_all
    assert G.compare(rows, "rtf_svd", "late", 1.0) is None
    assert G.rtf_verdict(rows, "rtf_bn", 1.0).comparisons == ()


def test_results_summary_per_noise_level(tmp_path):
    rows = _write(tmp_path / "r.csv", _seeds("rtf_bn", 0.0, [30.0, 31.0]) + _seeds("rtf_svd", 0.0, [20.0, 22.0])
                  + _seeds("concat", 0.0, [25.0, 25.0]) + _seeds("rtf_bn", 1.0, [30.0, 31.0])
                  + _seeds("rtf_svd", 1.0, [40.0, 41.0]) + _seeds("concat", 1.0, [25.0, 25.0])
                  + _seeds("rtf_bn", 0.5, [10.0, 10.0]) + _seeds("concat", 0.5, [25.0, 25.0]))
    text = G.results_markdown(rows)
    assert "- η = 0.0: only rtf_bn beat every baseline; rtf_svd did not." in text
    assert "- η = 1.0: RTF (rtf_bn, rtf_svd) beat every baseline." in text
    assert "- η = 0.5: RTF (rtf_bn) did not beat every baseline." in text  # rtf_svd has no run at 0.5
    assert "**rtf_svd**, η = 0.0: **no** — lost to concat (-4.00 ± 1.41) (action_top1 points, 2 seeds)." in text
    assert "**rtf_bn**, η = 1.0: **yes** — it beat every baseline (1); closest: concat, +5.50 ± 0.71" in text
    assert "the grid lacks RTF or safuser_cross/concat runs with collapse data" in text


def test_erank_verdict(tmp_path):
    rows = _write(tmp_path / "r.csv",
                  _seeds("rtf_bn", 0.0, [1, 1], erank_fused=[5.0, 6.0], pooled_erank=[20.0, 20.0])
                  + _seeds("safuser_cross", 0.0, [1, 1], erank_fused=[3.0, 3.5], pooled_erank=[20.5, 19.5])
                  + _seeds("concat", 0.0, [1, 1], erank_fused=[7.0, 8.0], pooled_erank=[10.0, 10.0]))
    out = G.erank_verdict(rows, "rtf_bn", 0.0)
    assert out[0].startswith("**rtf_bn** vs safuser_cross") and "raised the fused-token erank (+2.25 ± 0.35" in out[0]
    assert "did not change (within one std) the pooled erank (+0.00 ± 0.71" in out[0]
    assert "lowered the fused-token erank (-2.00 ± 0.00" in out[1] and "raised the pooled erank (+10.00" in out[1]


# -- running the grid without training -------------------------------------------------------------------------------
class FakeEngine:
    """Stand-ins for generate / train / test that write what the real ones write, and count calls."""

    def __init__(self):
        self.generated, self.trained, self.tested = [], [], []

    def generate(self, root, **kw):
        Path(root).mkdir(parents=True, exist_ok=True)
        self.generated.append((Path(root).name, kw["depth_noise"], kw["videos"]))
        return {"root": str(root)}

    def train(self, cfg, resume=None):
        work = Path(cfg.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        self.trained.append((work.name, resume))
        m = {"action": {"top1": 1.0}, "train_seconds": 3.5}
        (work / "metrics.json").write_text(json.dumps(m))
        (work / "model.safetensors").write_bytes(b"x")
        return m

    def test(self, cfg, checkpoint, out=None):
        self.tested.append(Path(checkpoint).name)
        top1 = 10.0 * (1 + cfg.seed) + (5.0 if cfg.model.fuser == "rtf" else 0.0) + 2 * cfg.synthetic.depth_noise
        m = {k: {"top1": top1, "top5": 90.0, "mt5r": 80.0} for k in ("verb", "noun", "action")}
        m["eval_seconds"] = 2.0
        m["collapse"] = {"erank_pre": {"rgb": 2.0, "depth": 1.0}, "erank_post": {"rgb": 2.5, "depth": 1.5},
                         "erank_fused": 3.0 + cfg.seed, "gain": {"rgb": 0.5, "depth": 0.5}, "H": 0.5,
                         "pooled_rank": 9, "pooled_erank": 4.0, "seconds": 0.1, "share_of_eval_time": 0.05,
                         "erank_vs_observed": {"fractions": [0.5, 1.0], "fused": [2.0, 3.0],
                                               "pre": {"rgb": [1.5, 2.0], "depth": [1.0, 1.0]},
                                               "post": {"rgb": [2.0, 2.5], "depth": [1.0, 1.5]}},
                         "reliance": {"num_samples": 10, "top1": top1,
                                      "without": {"rgb": {"top1": 0.0, "drop": top1, "relative_drop": 1.0},
                                                  "depth": {"top1": top1 / 2, "drop": top1 / 2,
                                                            "relative_drop": 0.5}}}}
        Path(out).write_text(json.dumps(m))
        return m


def _spec(**kw):
    base = dict(variants=["concat", "rtf_bn"], noise=[0.0, 1.0], seeds=[0, 1], config=CONFIG, videos=8, epochs=2,
                overrides=["model.dim=32"])
    base.update(kw)
    return G.GridSpec(**base)


def _go(spec, out, fake):
    return G.run_grid(spec, out, progress=False, reports=False, train_fn=fake.train, test_fn=fake.test,
                      generate_fn=fake.generate)


def test_grid_runs_every_cell_once_and_resumes(tmp_path):
    fake = FakeEngine()
    spec = _spec()
    rows = _go(spec, tmp_path, fake)
    assert len(rows) == 8 and len(fake.trained) == 8 and len(fake.tested) == 8
    # one dataset per noise level, with the grid's video count
    assert fake.generated == [("noise_0.0", 0.0, 8), ("noise_1.0", 1.0, 8)]
    assert all(resume is None for _, resume in fake.trained)
    r = next(r for r in rows if G.row_key(r) == ("rtf_bn", "1.0", "1"))
    assert float(r["action_top1"]) == 27.0 and r["fuser"] == "rtf" and float(r["train_seconds"]) == 3.5
    assert float(r["no_rgb_rel_drop_pct"]) == 100.0 and float(r["no_depth_top1"]) == 13.5
    assert float(r["diag_share_pct"]) == 5.0 and G.num_list(r["obs_H"]) == [0.0, 0.5]
    assert r["run_dir"].endswith("runs/rtf_bn__noise_1.0__seed_1")
    cfg = json.loads((tmp_path / "grid.json").read_text())
    assert cfg["changed"]["synthetic.videos"] == [160, 8] and cfg["changed"]["model.dim"] == [128, 32]

    # everything is in the CSV: nothing runs again
    fake2 = FakeEngine()
    assert len(_go(spec, tmp_path, fake2)) == 8
    assert (fake2.trained, fake2.tested, fake2.generated) == ([], [], [])

    # a run with weights and metrics but no CSV row is re-tested, not retrained; a run never started is trained
    path = tmp_path / "runs.csv"
    kept = [r for r in G.read_rows(path) if G.row_key(r) != ("concat", "0.0", "1")]
    path.unlink()
    for r in kept:
        G.append_row(path, r)
    fake3 = FakeEngine()
    rows = _go(_spec(seeds=[0, 1, 2]), tmp_path, fake3)
    assert fake3.tested.count("concat__noise_0.0__seed_1") == 1
    assert "concat__noise_0.0__seed_1" not in [n for n, _ in fake3.trained]
    assert sorted(n for n, _ in fake3.trained) == sorted(f"{v}__noise_{n}__seed_2" for v in ("concat", "rtf_bn")
                                                         for n in ("0.0", "1.0"))
    assert len(rows) == 12 and len({G.row_key(r) for r in rows}) == 12


def test_interrupted_training_resumes_from_its_checkpoints(tmp_path):
    fake = FakeEngine()
    spec = _spec(variants=["concat"], noise=[0.0], seeds=[0])
    ckpt = tmp_path / "runs" / "concat__noise_0.0__seed_0" / "checkpoints"
    (ckpt / "epoch_0001").mkdir(parents=True)
    (ckpt / "epoch_0001" / "r3d_state.json").write_text(json.dumps({"epoch": 1, "batch_in_epoch": 0, "step": 7}))
    (ckpt / "latest").write_text("epoch_0001\n")
    _go(spec, tmp_path, fake)
    assert fake.trained == [("concat__noise_0.0__seed_0", "auto")]


def test_grid_refuses_other_shared_settings_in_the_same_out(tmp_path):
    fake = FakeEngine()
    _go(_spec(variants=["concat"], noise=[0.0], seeds=[0]), tmp_path, fake)
    with pytest.raises(ValueError, match=r"train.epochs: 2 → 3"):
        _go(_spec(variants=["concat"], noise=[0.0], seeds=[0], epochs=3), tmp_path, fake)
    with pytest.raises(KeyError, match="unknown benchmark variant 'nope'"):
        G.grid_runs(_spec(variants=["nope"]))


def test_run_config_applies_variant_and_per_run_keys(tmp_path):
    spec = _spec(overrides=["model.dim=32", "model.rtf.ratio=0.2"])
    cfg = G.run_config(spec, G.Run("rtf_svd", 0.5, 2), tmp_path)
    assert (cfg.model.fuser, cfg.model.rtf.select, cfg.model.rtf.ratio, cfg.model.dim) == ("rtf", "svd", 0.2, 32)
    assert cfg.seed == 2 and cfg.synthetic.depth_noise == 0.5 and cfg.train.epochs == 2 and cfg.synthetic.videos == 8
    assert cfg.data.root == str(tmp_path / "data" / "noise_0.5")
    assert G.run_config(spec, G.Run("rgb_only", 0.0, 0), tmp_path).model.modalities == ["rgb"]
    assert G.run_config(spec, G.Run("rtf_ebr", 0.0, 0), tmp_path).model.ebr.enabled is True


def test_grid_refuses_an_override_a_variant_would_overrule():
    """A grid-wide key=value that a variant sets to another value would be silently overruled by the variant."""
    from r3d.config import ConfigError

    spec = _spec(overrides=["model.missing_view.weight=0.25"])
    spec.variants = ["concat", "rtf_ebr_mview"]
    with pytest.raises(ConfigError, match="'model.missing_view.weight', which variant 'rtf_ebr_mview' sets itself"):
        G.grid_runs(spec)
    spec.variants = ["concat", "rtf_ebr"]  # no variant sets it: the override applies to every run
    assert len(G.grid_runs(spec)) == 2 * len(spec.noise) * len(spec.seeds)
    spec.overrides = ["model.fuser=rtf"]  # the same value a variant sets is harmless
    spec.variants = ["rtf_ebr"]
    assert G.grid_runs(spec)


def test_frozen_protocol_extracts_each_token_cache_once_and_trains_from_it(tmp_path):
    """--frozen: frozen backbones + feat_norm, one cache per (noise, seed, modalities), extracted with the run's config
    minus data.features before the first run that reads it, and every run trained with data.features pointing at it."""
    fake, extracted = FakeEngine(), []
    trained_features = {}

    def extract(cfg, out, progress=True):
        assert cfg.data.features is None and cfg.model.rgb_backbone.freeze and cfg.model.depth_backbone.freeze
        extracted.append((Path(out).name, cfg.seed, tuple(cfg.model.modalities)))
        return {"folder": str(out)}

    def train(cfg, resume=None):
        trained_features[Path(cfg.work_dir).name] = Path(cfg.data.features).name
        assert cfg.model.feat_norm == "batchnorm" and cfg.data.num_workers == 0
        return fake.train(cfg, resume)

    spec = _spec(variants=["concat", "rtf_bn", "depth_only"], noise=[0.0], seeds=[0, 1], frozen=True)
    G.run_grid(spec, tmp_path, progress=False, reports=False, train_fn=train, test_fn=fake.test,
               generate_fn=fake.generate, extract_fn=extract)
    assert extracted == [("noise_0.0__seed_0__depth", 0, ("depth",)),  # unimodal runs first: they are references
                         ("noise_0.0__seed_0__rgb+depth", 0, ("rgb", "depth")),
                         ("noise_0.0__seed_1__depth", 1, ("depth",)),
                         ("noise_0.0__seed_1__rgb+depth", 1, ("rgb", "depth"))]
    assert trained_features["rtf_bn__noise_0.0__seed_1"] == "noise_0.0__seed_1__rgb+depth"
    assert trained_features["depth_only__noise_0.0__seed_0"] == "noise_0.0__seed_0__depth"
    shared = json.loads((tmp_path / "grid.json").read_text())["shared"]
    assert shared["model.feat_norm"] == "batchnorm" and "data.features" not in shared
    text = Path(G.write_results(tmp_path)).read_text()
    assert "**Frozen-feature protocol**" in text and "Reduced config" not in text


def test_results_markdown_is_computed_from_the_csv(tmp_path):
    fake = FakeEngine()
    _go(_spec(), tmp_path, fake)
    path = G.write_results(tmp_path)
    text = path.read_text()
    # concat at η = 0: seeds 0, 1 → top-1 10, 20 → 15.00 ± 7.07; rtf_bn at η = 1: 17, 27 → 22.00 ± 7.07
    assert "| concat | 0.0 | 2 | 15.00 ± 7.07 |" in text
    assert "| rtf_bn | 1.0 | 2 | 22.00 ± 7.07 |" in text
    # rtf_bn − concat is +5 on every seed → a win with zero spread at both noise levels
    assert "**rtf_bn**, η = 0.0: **yes** — it beat every baseline (1); closest: concat, +5.00 ± 0.00" in text
    assert "η = 1.0: RTF (rtf_bn) beat every baseline." in text
    assert "**rtf_bn** vs concat, η = 0.0: did not change (within one std) the fused-token erank (+0.00 ± 0.00" in text
    main_epochs = load_config("configs/synthetic.yaml").train.epochs  # the experiment config's own value
    assert "**Reduced config**" in text and f"`train.epochs`: {main_epochs} → 2" in text
    for png in ("top1_vs_best_plain.png", "kept_depth.png", "fused_erank.png", "pooled_erank.png",
                "rtf_erank_before_after.png", "mutual_gain_vs_observed_noise_0.0.png", "reliance.png"):
        assert f"](plots/{png})" in text
        assert (tmp_path / "plots" / png).read_bytes().startswith(b"\x89PNG") and \
            (tmp_path / "plots" / png).stat().st_size > 2000


# -- end to end --------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_benchmark_cli_tiny_grid(tmp_path):
    out = tmp_path / "bench"
    cmd = [sys.executable, str(REPO / "tools/benchmark.py"), "--config", CONFIG, "--variants", "concat,depth_only",
           "--noise", "0.0", "--seeds", "0", "--videos", "4", "--epochs", "1", "--workers", "1", "--out", str(out),
           "synthetic.size=32", "synthetic.pairs_per_video=2", "data.img_size=32", "model.dim=32",
           "model.head_args.depth=1", "data.num_workers=0", "train.log_with=none", "train.batch_size=8",
           "train.warmup_epochs=0", "eval.batch_size=16"]
    first = r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = G.read_rows(out / "runs.csv")
    assert [G.row_key(r) for r in rows] == [("depth_only", "0.0", "0"), ("concat", "0.0", "0")]  # reference first
    row = rows[1]
    # the collapse measure, written by tools/test.py from the depth-only run (eval.reference.depth)
    kept = json.loads((out / "runs" / "concat__noise_0.0__seed_0" / "metrics_test.json").read_text())["collapse"]
    kept = kept["kept"]["depth"]
    assert kept["reference"].endswith("depth_only__noise_0.0__seed_0")
    assert kept["top1_without_other"] == pytest.approx(float(row["no_rgb_top1"]), abs=1e-4)
    assert kept["unimodal_top1"] == pytest.approx(float(rows[0]["action_top1"]), abs=1e-4)
    ref = kept["unimodal_top1"]  # a 1-epoch depth-only model may score 0: the fraction is then NaN, not an error
    assert (math.isnan(kept["fraction"]) and row["kept_depth"] == "nan") if ref == 0 else \
        float(row["kept_depth"]) == pytest.approx(kept["top1_without_other"] / ref, abs=1e-6)
    for k in ("verb", "noun", "action"):
        assert 0.0 <= float(row[f"{k}_top1"]) <= float(row[f"{k}_top5"]) <= 100.0
    assert float(row["erank_fused"]) >= 1.0 and float(row["train_seconds"]) > 0
    assert row["no_depth_top1"] != "" and row["no_rgb_top1"] != ""
    text = (out / "results.md").read_text()
    assert "| concat | 0.0 | 1 |" in text and "`synthetic.videos`: 160 → 4" in text
    assert (out / "runs" / "concat__noise_0.0__seed_0" / "report.md").is_file()
    assert (out / "plots" / "kept_depth.png").stat().st_size > 2000
    # resumable: a second call finds the runs in the CSV and trains nothing
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0 and len(G.read_rows(out / "runs.csv")) == 2
    assert "epoch 1/1:" not in r.stdout and "epoch 1/1:" in first.stdout
    both = subprocess.run([sys.executable, str(REPO / "tools/benchmark.py"), "--frozen", "--quick", "--dry-run"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert both.returncode == 2 and "--quick and --frozen are two presets" in both.stderr


@pytest.mark.slow
def test_grid_run_and_train_tool_with_the_same_config_give_bit_identical_weights(tmp_path):
    """The benchmark's run of a variant is `tools/train.py` with the run's config: the same seed gives the same bits,
    so a README number from the grid is the number `tools/train.py` reproduces (validation frequency included).
    What does change the bits is the number of torch threads (float sums split differently) and the versions of the
    libraries that touch pixels or weights (opencv's resize, the video decoder, torch); metrics.json records both."""
    import torch
    from safetensors.torch import load_file

    from conftest import TINY_MODEL, run_tool

    spec = G.GridSpec(variants=["rtf_bn"], noise=[0.0], seeds=[1], config=CONFIG, videos=6, epochs=2,
                      overrides=[*TINY_MODEL, "synthetic.size=32", "synthetic.pairs_per_video=2",
                                 "train.batch_size=4", "data.num_workers=0", "train.log_with=none",
                                 "train.eval_every=2"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tool below runs (conftest.single_thread_env): float sums in the same order
    try:
        rows = G.run_grid(spec, tmp_path / "grid", progress=False, reports=False)
    finally:
        torch.set_num_threads(threads)
    run = Path(rows[0]["run_dir"])
    # the same resolved config through the command line, validated every epoch instead (eval_every does not change
    # the weights), into another folder
    mine = tmp_path / "mine"
    run_tool(["tools/train.py", "-c", str(run / "config.yaml"), "--work-dir", str(mine), "train.eval_every=1"])
    a, b = load_file(str(run / "model.safetensors")), load_file(str(mine / "model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 20
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert json.loads((mine / "metrics.json").read_text())["action"] == \
        json.loads((run / "metrics.json").read_text())["action"]
