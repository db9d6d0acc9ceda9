"""The benchmark's collapse measure, remedy comparisons and README claims, on rows whose answers are computed by hand."""
from __future__ import annotations

import math

import pytest

from r3d.benchmark.claims import best_plain, claim_beats_best_plain, claim_keeps_depth, remedy_rows, with_kept


def _row(variant, noise, seed, top1, no_rgb=None, no_depth=None, kept_depth=None):
    return {"variant": variant, "noise": repr(float(noise)), "seed": str(seed), "action_top1": str(top1),
            "no_rgb_top1": "" if no_rgb is None else str(no_rgb), "no_depth_top1": "" if no_depth is None else
            str(no_depth), "kept_depth": "" if kept_depth is None else str(kept_depth)}


def _grid(rtf_top1, rtf_no_rgb):
    """η = 0.5, seeds 0-2: depth-only 60/50/40, concat 90/91/92 (kept 6/5/4 of them), safuser_cross 80/80/80."""
    rows = []
    for s, (d, c) in enumerate([(60, 90), (50, 91), (40, 92)]):
        rows += [_row("depth_only", 0.5, s, d), _row("rgb_only", 0.5, s, 95),
                 _row("concat", 0.5, s, c, no_rgb=d / 10), _row("safuser_cross", 0.5, s, 80, no_rgb=d / 2),
                 _row("rtf_bn", 0.5, s, rtf_top1[s], no_rgb=rtf_no_rgb[s])]
    return rows


def test_kept_is_top1_without_rgb_over_the_depth_only_run_of_the_same_seed():
    rows = with_kept(_grid([90, 91, 92], [57, 47, 38]))
    got = {(r["variant"], r["seed"]): r.get("kept_depth") for r in rows if r["variant"] in ("concat", "rtf_bn")}
    assert got[("concat", "0")] == pytest.approx(0.1) and got[("rtf_bn", "1")] == pytest.approx(47 / 50)
    assert "kept_depth" not in {k for r in rows if r["variant"] == "depth_only" for k, v in r.items() if v != ""}
    # a value the run wrote itself (eval.reference) is kept as it is
    rows = with_kept([_row("depth_only", 0, 0, 50), _row("concat", 0, 0, 90, no_rgb=10, kept_depth=0.3)])
    assert float(rows[1]["kept_depth"]) == 0.3


def test_best_plain_fuser_is_the_highest_mean_top1_and_remedies_are_paired_by_seed():
    rows = _grid([89, 91, 95], [57, 47, 38])
    assert best_plain(rows, 0.5) == "concat"  # mean 91 > 80; remedies and unimodal models are not candidates
    (r,) = remedy_rows(rows, 0.5)
    assert r.variant == "rtf_bn" and r.best_plain == "concat"
    assert r.top1.diff == pytest.approx((-1 + 0 + 3) / 3) and r.top1.std == pytest.approx(math.sqrt(
        sum((x - 2 / 3) ** 2 for x in (-1, 0, 3)) / 2))
    assert r.kept.mean == pytest.approx((57 / 60 + 47 / 50 + 38 / 40) / 3) and r.kept_plain.mean == pytest.approx(0.1)


@pytest.mark.parametrize("rtf_top1, no_rgb, holds", [
    ([90, 91, 92], [57, 47, 38], True),   # keeps 0.947 of depth-only, loses 0 points
    ([88, 89, 90], [57, 47, 38], False),  # keeps it, but loses 2 points against concat
    ([91, 92, 93], [50, 40, 30], False),  # does not lose, but keeps only 0.78
])
def test_keeps_depth_claim(rtf_top1, no_rgb, holds):
    c = claim_keeps_depth(_grid(rtf_top1, no_rgb), "rtf_bn", noise=0.5)
    assert c.holds is holds and "concat" in c.evidence and c.line().count("**") == 2
    assert claim_keeps_depth(_grid(rtf_top1, no_rgb), "rtf_bn", noise=1.0).holds is None  # no runs at η = 1


def test_beats_best_plain_claim_needs_a_margin_above_one_std_at_every_noise_level():
    rows = _grid([95, 96, 97], [57, 47, 38])  # +5 ± 0 over concat at η = 0.5
    assert claim_beats_best_plain(rows, "rtf_bn").holds is True
    rows += [_row(v, 1.0, s, t) for s in range(3) for v, t in (("concat", 70 + s), ("rtf_bn", 70 + 2 * s))]
    c = claim_beats_best_plain(rows, "rtf_bn")  # η = 1: +1 ± 1 is a tie, so the claim does not hold
    assert c.holds is False and "η = 1.0: +1.00 ± 1.00 vs concat (tie)" in c.evidence


def test_claims_block_renders_both_claims_from_the_two_grids_it_names(tmp_path):
    from r3d.benchmark import append_row
    from r3d.benchmark.pages import render_page

    for name, rows in (("red", _grid([90, 91, 92], [57, 47, 38])), ("comp", _grid([95, 96, 97], [57, 47, 38]))):
        for r in rows:
            append_row(tmp_path / name / "runs.csv", r)
    page = ("<!-- r3d-source red: red/runs.csv -->\n<!-- r3d-source comp: comp/runs.csv -->\n"
            "<!-- r3d-begin claims red complementary=comp variant=rtf_bn noise=0.5 -->\n<!-- r3d-end -->\n")
    lines = render_page(page, tmp_path).splitlines()[3:5]
    assert lines[0].startswith("- Redundant mode: `rtf_bn` keeps ≥ 90% of the depth-only") and "**yes**" in lines[0]
    assert lines[1].startswith("- Complementary mode: `rtf_bn` beats the best plain fuser at every η: **yes**")


def test_remedies_block_is_the_remedy_table_of_the_grid(tmp_path):
    from r3d.benchmark import append_row
    from r3d.benchmark.pages import render_page

    for r in _grid([90, 91, 92], [57, 47, 38]):
        append_row(tmp_path / "runs.csv", r)
    page = "<!-- r3d-source g: runs.csv -->\n<!-- r3d-begin remedies g noise=0.5 -->\n<!-- r3d-end -->\n"
    row = render_page(page, tmp_path).splitlines()[4]
    # rtf_bn against concat: +0 points (paired), kept (57/60 + 47/50 + 38/40) / 3 against concat's 0.1
    assert row.startswith("| 0.5 | rtf_bn | concat | +0.00 ± 0.00 | 0.947 ± 0.006 | 0.100 ± 0.000 | +0.847 ± 0.006 |")


def test_remedies_block_measures_new_variants_against_the_plain_fusers_of_another_grid(tmp_path):
    from r3d.benchmark import append_row
    from r3d.benchmark.pages import render_page

    grid = _grid([90, 91, 92], [57, 47, 38])
    for r in grid:
        append_row(tmp_path / "grid" / "runs.csv", r)
    for s, t in enumerate([93, 94, 95]):  # a new remedy, run later on the same data and seeds
        append_row(tmp_path / "new" / "runs.csv", _row("rtf_uni", 0.5, s, t, no_rgb=30))
    page = ("<!-- r3d-source g: grid/runs.csv -->\n<!-- r3d-source n: new/runs.csv -->\n"
            "<!-- r3d-begin remedies n with=g variants=rtf_uni -->\n<!-- r3d-end -->\n")
    lines = render_page(page, tmp_path).splitlines()[5:-1]
    assert len(lines) == 1 and lines[0].startswith("| 0.5 | rtf_uni | concat | +3.00 ± 0.00 |")


def test_claims_block_judges_a_variant_run_later_with_the_rows_of_the_grids_it_joins(tmp_path):
    from r3d.benchmark import append_row
    from r3d.benchmark.pages import render_page

    for r in _grid([90, 91, 92], [57, 47, 38]):
        append_row(tmp_path / "red" / "runs.csv", r)
        append_row(tmp_path / "comp" / "runs.csv", r)
    for s, t in enumerate([93, 94, 95]):
        append_row(tmp_path / "red_new" / "runs.csv", _row("rtf_new", 0.5, s, t, no_rgb=[57, 47, 38][s]))
        append_row(tmp_path / "comp_new" / "runs.csv", _row("rtf_new", 0.5, s, 80 + s))
    page = ("<!-- r3d-source r: red/runs.csv -->\n<!-- r3d-source c: comp/runs.csv -->\n"
            "<!-- r3d-source rn: red_new/runs.csv -->\n<!-- r3d-source cn: comp_new/runs.csv -->\n"
            "<!-- r3d-begin claims rn with=r complementary=cn complementary_with=c variant=rtf_new -->\n"
            "<!-- r3d-end -->\n")
    lines = render_page(page, tmp_path).splitlines()[5:7]
    assert "**yes**" in lines[0] and "+3.00" in lines[0]  # keeps 0.95 of depth, 3 points above concat
    assert "**no**" in lines[1] and "vs concat (loss)" in lines[1]  # 80-82 against concat's 90-92
