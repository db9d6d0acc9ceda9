"""The README and docs/ against the repository: quoted numbers equal their results files, links and file names resolve.

- Every marked page re-renders to itself (`r3d.benchmark.pages.render_page`), and every committed results.md equals
  what the benchmark's report tool writes from its runs.csv: a number that disagrees with the file it cites fails.
- A percentage, ratio or ± spread outside a marker or code span is a number no results file backs.
- Each block or value is quoted once across the pages.
- Every relative markdown link (and its #anchor) exists, and every path-like or upper-case `*.md` name in code,
  configs and docs names a file of the repository.
The renderer itself is checked on small files whose numbers are computed by hand.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from r3d.benchmark.pages import (PageError, doc_pages, loose_numbers, marked_pages, quoted, render_page,
                                 results_folders, sources_of)
from r3d.benchmark.results import results_page

REPO = Path(__file__).resolve().parents[1]
SKIP_TOP = {"runs", "data", "build", "dist"}  # run outputs, datasets and build products, not the repository's files
# Notes whose measured numbers are still written by hand (no results file behind them yet); the number check skips
# them until they quote their files.
HAND_WRITTEN = ("docs/benchmark_r3d/summary.md",)


def _repo_files(*patterns: str):
    """The repository's files matching `patterns`: hidden folders (.git, a .venv), virtual environments,
    __pycache__, *.egg-info and the top-level run/data folders are not walked."""
    for folder, dirs, files in os.walk(REPO):
        rel = Path(folder).relative_to(REPO)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__" and not d.endswith(".egg-info")
                         and not (rel == Path(".") and d in SKIP_TOP) and not (Path(folder, d, "pyvenv.cfg").exists()))
        for name in sorted(files):
            if any(fnmatch.fnmatch(name, p) for p in patterns):
                yield Path(folder) / name


# -- the repository's pages ------------------------------------------------------------------------------------------
def test_marked_pages_are_up_to_date():
    pages = marked_pages(REPO)
    assert REPO / "README.md" in pages, "README.md quotes its results through r3d-source markers"
    stale = [str(p.relative_to(REPO)) for p in pages
             if render_page(p.read_text(), REPO, str(p.relative_to(REPO))) != p.read_text()]
    assert not stale, f"stale numbers in {stale}: run python tools/render_docs.py"


def test_results_pages_are_what_the_report_tool_writes():
    folders = results_folders(REPO)
    assert folders, "docs/ holds the benchmark's committed results"
    stale = [str(f.relative_to(REPO)) for f in folders if results_page(f) != (f / "results.md").read_text()]
    assert not stale, f"results.md out of date in {stale}: run python tools/render_docs.py"


def test_no_measured_number_without_a_source():
    loose = [f"{p.relative_to(REPO)}:{line}: {text}" for p in doc_pages(REPO)
             if str(p.relative_to(REPO)) not in HAND_WRITTEN for line, text in loose_numbers(p.read_text())]
    assert not loose, "numbers not quoted from a results file (use a marker, see r3d/benchmark/pages.py):\n" + \
        "\n".join(loose)


def test_each_number_is_quoted_once():
    counts = Counter(q for p in marked_pages(REPO) for q in quoted(p.read_text()))
    twice = [q for q, n in counts.items() if n > 1]
    assert not twice, f"quoted more than once across README and docs/ (link to the one place instead): {twice}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def test_relative_links_resolve():
    bad = []
    for page in _repo_files("*.md"):
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                bad.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{page.relative_to(REPO)}: {target} (no heading with that anchor)")
    assert not bad, "broken links:\n" + "\n".join(bad)


MD_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)+[\w.-]+\.md|[A-Z][A-Z0-9_-]+\.md)\b")


def test_md_names_in_code_configs_and_docs_exist():
    """A name with a folder (docs/methods.md) or an upper-case name (README.md) must be a file of the repository;
    lower-case bare names are files r3d writes (report.md, results.md)."""
    bad = []
    names = {p.name for p in _repo_files("*.md")}
    for f in _repo_files("*.py", "*.yaml", "*.md", "*.cfg", "*.toml", "run"):
        for m in MD_NAME.finditer(f.read_text(errors="ignore")):
            name = m.group(1)
            if "/" in name:
                ok = (REPO / name).exists() or (f.parent / name).exists() or name.startswith(("runs/", "RUN_DIR/",
                                                                                                 "OUT/", "WORK_DIR/"))
            else:
                ok = name in names
            if not ok:
                bad.append(f"{f.relative_to(REPO)}: {name}")
    assert not bad, "names of files that are not in the repository:\n" + "\n".join(sorted(set(bad)))


# -- the renderer, on files computed by hand ---------------------------------------------------------------------------
HEADER = "variant,noise,seed,action_top1,erank_fused\n"


def _write_grid(tmp_path: Path) -> None:
    rows = [("rtf_bn", 0, 80, 5.0), ("rtf_bn", 1, 84, 5.5), ("concat", 0, 82, 4.0), ("concat", 1, 90, 4.1),
            ("sum", 0, 70, 4.2), ("sum", 1, 72, 4.3)]
    (tmp_path / "runs.csv").write_text(HEADER + "".join(f"{v},0.0,{s},{a},{e}\n" for v, s, a, e in rows))
    (tmp_path / "abl.csv").write_text(HEADER + "rtf_bn,0.0,0,81,5\nrtf_bn,0.0,1,87,5\n")
    (tmp_path / "cfg.yaml").write_text("model:\n  fuser: rtf\n")  # trains rtf_bn: the grid's default variant
    (tmp_path / "grid.json").write_text(json.dumps({"config": str(tmp_path / "cfg.yaml")}))
    (tmp_path / "bench.json").write_text(json.dumps(
        {"seconds": 150.0, "figures": [{"id": "P1", "what": "a step", "value": 1.0625, "target": 1.03, "unit": "x",
                                        "better": "<=", "passed": False, "note": ""}]}))


def test_summary_and_values_are_computed_from_the_files(tmp_path):
    _write_grid(tmp_path)
    page = ("<!-- r3d-source g: runs.csv -->\n<!-- r3d-source b: bench.json -->\n"
            "<!-- r3d-begin summary g columns=action_top1@*,erank_fused@0 variants=concat,rtf_bn -->\nold\n"
            "<!-- r3d-end -->\n"
            "took <!-- r3d b:seconds|/60|.1f -->?<!-- /r3d --> min, "
            "P1 <!-- r3d b:figures.P1.value|.3f -->?<!-- /r3d -->x, rtf <!-- r3d g:action_top1@rtf_bn@0.0 -->?<!-- /r3d -->\n")
    out = render_page(page, tmp_path)
    # concat: mean (82+90)/2 = 86, sample std |90-82|/sqrt(2) = 5.657; erank 4.05 ± 0.071
    assert "| `concat` | 86.00 ± 5.66 | 4.05 ± 0.07 |" in out
    assert "| `rtf_bn` | 82.00 ± 2.83 | 5.25 ± 0.35 |" in out  # (80+84)/2, 4/sqrt(2)
    assert "`sum`" not in out and "old" not in out
    assert "took <!-- r3d b:seconds|/60|.1f -->2.5<!-- /r3d --> min" in out  # 150 s / 60
    assert "P1 <!-- r3d b:figures.P1.value|.3f -->1.062<!-- /r3d -->x" in out  # 1.0625 is exact: half to even
    assert "rtf <!-- r3d g:action_top1@rtf_bn@0.0 -->82.00 ± 2.83<!-- /r3d -->" in out
    assert render_page(out, tmp_path) == out  # rendering is idempotent


def test_verdict_and_ablation(tmp_path):
    _write_grid(tmp_path)
    page = ("<!-- r3d-source g: runs.csv -->\n<!-- r3d-source a: abl.csv (model.rtf.ratio=0.2) -->\n"
            "<!-- r3d-begin verdict g -->\n<!-- r3d-end -->\n"
            "<!-- r3d-begin ablation g variant=rtf_bn ablations=a references=concat -->\n<!-- r3d-end -->\n")
    out = render_page(page, tmp_path)
    # best plain fuser: concat (86 > 71); rtf_bn − concat per seed: −2, −6 → mean −4, std 2.83: a loss
    assert "- `rtf_bn` (r3d's default), against the best plain fuser: lost at η = 0.0 (to concat)" in out
    # fused erank rtf_bn − concat: +1.0, +1.4 → mean 1.2 > std 0.28: raised at the one noise level
    assert "raised the fused effective rank against concat at 1 of 1 noise levels." in out
    # ablation − grid rtf_bn per seed: +1, +3 → +2.00 ± 1.41; concat − rtf_bn: +2, +6 → +4.00 ± 2.83
    assert "| `model.rtf.ratio=0.2` | 84.00 ± 4.24 | +2.00 ± 1.41 |" in out
    assert "| `concat` (grid) | 86.00 ± 5.66 | +4.00 ± 2.83 |" in out
    assert "| `rtf_bn` (grid) | 82.00 ± 2.83 | — |" in out


def test_figures_table(tmp_path):
    _write_grid(tmp_path)
    out = render_page("<!-- r3d-source b: bench.json -->\n<!-- r3d-begin figures b -->\n<!-- r3d-end -->\n", tmp_path)
    assert "| P1 | a step | 1.062x | <= 1.03x | **no** |" in out


@pytest.mark.parametrize("page, words", [
    ("<!-- r3d x:seconds -->1<!-- /r3d -->", "source 'x' is not declared"),
    ("<!-- r3d-source b: bench.json -->\n<!-- r3d b:minutes -->1<!-- /r3d -->", "has no 'minutes'"),
    ("<!-- r3d-source m: missing.json -->\n<!-- r3d m:a -->1<!-- /r3d -->", "missing.json, which does not exist"),
    ("<!-- r3d-source g: runs.csv -->\n<!-- r3d-begin nosuch g -->\n<!-- r3d-end -->", "unknown block kind 'nosuch'"),
    ("<!-- r3d-source g: runs.csv -->\n<!-- r3d g:action_top1@late@0.0 -->1<!-- /r3d -->", "no runs of variant 'late'"),
])
def test_bad_markers_name_the_page_and_the_fix(tmp_path, page, words):
    _write_grid(tmp_path)
    with pytest.raises(PageError, match=re.escape(words)) as e:
        render_page(page, tmp_path, page="p.md")
    assert str(e.value).startswith("p.md:")


def test_sources_and_loose_numbers():
    text = ("<!-- r3d-source g: docs/x/runs.csv (model.a=1) -->\nP1 is 1.06x and 87.5 % (± 2), "
            "`12 %` in code, <!-- r3d g:a@b@0 -->3 %<!-- /r3d --> quoted\n```\n50 % in a block\n```\n")
    assert sources_of(text)["g"].label == "model.a=1"
    assert [t for _, t in loose_numbers(text)] == ["1.06x", "87.5 %", "± 2"]
