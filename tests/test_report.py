"""The run report and the plots: every section rendered from a constructed metrics JSON (the numbers must appear in
report.md), "not measured" where data is absent, H curves recomputed by hand, and non-empty PNGs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from r3d.viz import plots
from r3d.metrics.collapse import mutual_gain_curve, reliance_without
from r3d.viz.report import fmt, write_run_report

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _anticipation(base):
    return {k: {"top1": base + i, "top5": base + 10 + i, "mt5r": base + 20 + i}
            for i, k in enumerate(("verb", "noun", "action"))}


def _collapse():
    return {
        "num_samples": 40, "num_present": {"rgb": 40, "depth": 40},
        "erank_pre": {"rgb": 3.25, "depth": 1.75}, "erank_post": {"rgb": 4.5, "depth": 2.25},
        "erank_fused": 5.125, "gain": {"rgb": 1.25, "depth": 0.5}, "H": 2 * 1.25 * 0.5 / 1.75,
        "pooled_rank": 37, "pooled_erank": 11.375, "pooled_rank_centered": 36, "pooled_erank_centered": 19.625,
        "erank_vs_observed": {"fractions": [0.5, 1.0], "fused": [2.5, 5.125],
                              "pre": {"rgb": [2.0, 3.25], "depth": [1.5, 1.75]},
                              "post": {"rgb": [1.75, 4.5], "depth": [2.0, 2.25]}},
        "time_spent": 0.25, "seconds": 0.25, "share_of_eval_time": 0.0625,
        "reliance": {"num_samples": 40, "top1": 62.5,
                     "without": {"rgb": {"top1": 25.0, "drop": 37.5, "relative_drop": 0.6},
                                 "depth": {"top1": 50.0, "drop": 12.5, "relative_drop": 0.2}}},
        "reliance_seconds": 7.5,
        "kept": {"depth": {"top1_without_other": 25.0, "unimodal_top1": 40.0, "fraction": 0.625,
                           "reference": "runs/depth_only"}},
    }


def _run(tmp_path, with_collapse=True):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({
        "seed": 3, "model": {"fuser": "rtf", "modalities": ["rgb", "depth"], "dim": 64, "rtf": {"select": "bn",
                                                                                                 "ratio": 0.1},
                             "ebr": {"enabled": False}},
        "train": {"epochs": 7}, "data": {"root": "data/x"}, "synthetic": {"depth_noise": 0.5}}))
    train = dict(_anticipation(30.0), train_seconds=12.0)
    test = dict(_anticipation(41.0), eval_seconds=4.0, split="val")
    if with_collapse:
        test["collapse"] = _collapse()
    (run / "metrics.json").write_text(json.dumps(train))
    (run / "metrics_test.json").write_text(json.dumps(test))
    return run


def test_report_renders_every_section_with_the_numbers(tmp_path):
    run = _run(tmp_path)
    path = write_run_report(run)
    text = path.read_text()
    assert path == run / "report.md"
    assert "not measured" not in text
    # anticipation: both files, every label × score (train base 30, test base 41; +i per label, +10 top5, +20 mt5r)
    for base in (30.0, 41.0):
        for i in range(3):
            for off in (0, 10, 20):
                assert f"| {base + i + off:.2f} " in text or f"| {base + i + off:.2f} |" in text
    assert "metrics.json" in text and "metrics_test.json" in text
    # collapse table
    for v in ("3.25", "4.50", "1.75", "2.25", "1.250", "0.500", "5.12", "37", "11.38", "36", "19.62"):
        assert v in text, v
    assert f"{2 * 1.25 * 0.5 / 1.75:.3f}" in text  # H = 0.714
    # reliance: top-1 without each modality, drop in points, relative drop in percent
    assert "| without rgb | 25.00 | 37.50 | 60.0 % |" in text
    assert "| without depth | 50.00 | 12.50 | 20.0 % |" in text
    assert "| all modalities | 62.50 |" in text
    # the collapse measure: top-1 without RGB (25) as a fraction of the depth-only model's 40
    assert "| depth | 25.00 | 40.00 | 0.625 | `runs/depth_only` |" in text
    # erank vs observed: at f = 0.5 the rgb gain is 1.75 − 2.0 < 0 → H = 0; at f = 1.0 it is the overall H
    assert "| 0.50 | 2.00 | 1.75 | 1.50 | 2.00 | 2.50 | 0.000 |" in text
    assert f"| 1.00 | 3.25 | 4.50 | 1.75 | 2.25 | 5.12 | {2 * 1.25 * 0.5 / 1.75:.3f} |" in text
    # cost of the diagnostics
    assert "| share of evaluation time | 6.2 % |" in text or "| share of evaluation time | 6.3 % |" in text
    assert "| collapse diagnostics (s) | 0.250 |" in text and "| evaluation pass (s) | 4.000 |" in text
    assert "7.500" in text
    # config summary and embedded plots
    assert "`rtf`" in text and "select=bn" in text and "`0.5`" in text
    for png in ("report_erank_before_after.png", "report_reliance.png", "report_erank_vs_observed.png",
                "report_mutual_gain_vs_observed.png"):
        assert f"]({png})" in text
        data = (run / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000


def test_report_says_not_measured_without_collapse(tmp_path):
    run = _run(tmp_path, with_collapse=False)
    text = write_run_report(run).read_text()
    for section in ("## Collapse", "## Modality reliance", "## Effective rank vs observed fraction",
                    "## Cost of the diagnostics"):
        body = text.split(section, 1)[1].split("\n## ", 1)[0]
        assert "not measured" in body.lower(), section
    assert "| 41.00 |" in text  # anticipation still rendered
    assert not list(run.glob("*.png"))


def test_report_handles_an_empty_run_and_a_missing_folder(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    text = write_run_report(run).read_text()
    assert "Anticipation metrics: not measured" in text and "Config: not measured" in text
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        write_run_report(tmp_path / "nope")


def test_report_falls_back_to_training_collapse_and_partial_keys(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # training metrics with collapse but no reliance, no curves, no pooled rank (an older or partial run)
    (run / "metrics.json").write_text(json.dumps(dict(_anticipation(10.0), collapse={
        "erank_pre": {"rgb": 2.5, "depth": 1.5}, "erank_post": {"rgb": 2.75, "depth": 1.25}, "erank_fused": 3.5,
        "gain": {"rgb": 0.25, "depth": -0.25}, "H": 0.0})))
    text = write_run_report(run).read_text()
    collapse = text.split("## Collapse", 1)[1].split("\n## ", 1)[0]
    assert "From `metrics.json`" in collapse and "-0.250" in collapse and "3.50" in collapse
    assert "| mutual gain H (0 when a gain ≤ 0) | 0.000 |" in collapse
    assert "| pooled fused representation (N, C): numerical rank | not measured |" in collapse
    assert "Modality reliance: not measured" in text


def test_reliance_alias_and_mutual_gain_curve():
    rel = {"top1": 50.0, "dropped": {"rgb": {"top1": 10.0, "drop": 40.0, "relative_drop": 0.8}}}
    assert reliance_without(rel) == {"rgb": {"top1": 10.0, "drop": 40.0, "relative_drop": 0.8}}
    assert reliance_without(None) == {}
    curves = {"fractions": [0.1, 0.5, 1.0], "pre": {"rgb": [1.0, 2.0, 3.0], "depth": [1.0, 1.0, 1.0]},
              "post": {"rgb": [1.0, 3.0, 5.0], "depth": [1.0, 3.0, 1.5]}}
    h = mutual_gain_curve(curves)
    assert h[0] == 0.0  # both gains 0
    assert h[1] == pytest.approx(2 * 1.0 * 2.0 / 3.0)  # gains 1 and 2
    assert h[2] == pytest.approx(2 * 2.0 * 0.5 / 2.5)  # gains 2 and 0.5
    assert mutual_gain_curve({"fractions": [1.0], "pre": {"rgb": [1.0]}, "post": {"rgb": [2.0]}}) == []
    assert fmt(None) == "not measured" and fmt(float("nan")) == "nan" and fmt(3) == "3" and fmt(2.345, 1) == "2.3"


def test_every_plot_writes_a_non_empty_png(tmp_path):
    made = [
        plots.plot_erank_vs_observed(_collapse()["erank_vs_observed"], tmp_path / "a.png"),
        plots.plot_mutual_gain_vs_observed({"rtf": ([0.5, 1.0], [0.0, 0.7]), "concat": ([0.5, 1.0], [None, 0.1])},
                                           tmp_path / "b.png"),
        plots.plot_reliance(62.5, {"rgb": 25.0, "depth": 50.0}, tmp_path / "c.png"),
        plots.plot_reliance_drops({"η = 0.0": {"concat": {"rgb": 60.0, "depth": 20.0}, "rtf_bn": {"rgb": 40.0}},
                                   "η = 1.0": {}}, tmp_path / "d.png"),
        plots.plot_metric_vs_noise({"concat": ([0.0, 0.5, 1.0], [50.0, 40.0, 30.0], [1.0, 2.0, 0.5]),
                                    "rtf_bn": ([0.0, 1.0], [55.0, float("nan")], None)}, tmp_path / "e.png", "top-1"),
        plots.plot_erank_before_after({"η = 0.0": {"rtf_bn": {"rgb": (3.0, 4.0), "depth": (1.0, None)}}},
                                      tmp_path / "f" / "g.png"),
        plots.plot_metric_vs_noise({}, tmp_path / "empty.png", "top-1"),  # nothing to draw: "not measured"
        plots.plot_line_panels({"η = 0.0": {"rgb_only": ([1, 2], [50.0, 60.0]), "late": ([1, 2], [40.0, None])},
                                "η = 1.0": {}}, tmp_path / "h.png", "epoch", "top-1", "curves"),
    ]
    for p in made:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, p


def test_plots_import_has_no_pyplot_side_effect(tmp_path):
    # (matplotlib.get_backend() itself imports pyplot, so only sys.modules is checked, also after drawing)
    code = ("import sys; import r3d.viz.plots, r3d.viz.report, r3d.benchmark; "
            "assert 'matplotlib' not in sys.modules; "
            "r3d.viz.plots.plot_reliance(1.0, {'rgb': 0.5}, sys.argv[1]); "
            "assert 'matplotlib.pyplot' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.png")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_tools_report_cli(tmp_path):
    run = _run(tmp_path)
    r = subprocess.run([sys.executable, str(REPO / "tools/report.py"), str(run)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (run / "report.md").is_file() and str(run / "report.md") in r.stdout
    r = subprocess.run([sys.executable, str(REPO / "tools/report.py"), str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such run folder" in r.stderr
