"""Markdown pages whose numbers are quoted from result files, and re-rendered from them (`render_page`).

A page (README.md, docs/*.md) names each result file it quotes once, then marks every generated part with HTML
comments, which GitHub does not show:

    <!-- r3d-source grid: docs/benchmark_frozen/runs.csv -->
    <!-- r3d-source ratio: docs/benchmark_frozen/ablation/ratio_0.2.csv (model.rtf.ratio=0.2) -->

    <!-- r3d-begin summary grid columns=action_top1@* -->
    (a table, rewritten from the file on every render)
    <!-- r3d-end -->

    Command 1 took <!-- r3d timing:command_1.seconds|/60|.1f -->5.4<!-- /r3d --> min.

- ``r3d-source NAME: PATH (LABEL)``: PATH is relative to the repository root; the label is optional (the ablation
  table shows it). Switching a page to another results file is a change of this one line.
- ``r3d-begin KIND SOURCE key=value ...`` … ``r3d-end``: a block written by ``BLOCKS[KIND]`` (see `block`).
- ``r3d SOURCE:SELECTOR|STEP|...`` TEXT ``/r3d``: one value. For a JSON file the selector is a dotted path (list
  items are chosen by index or by their "id"); for a runs.csv it is ``COLUMN@VARIANT@NOISE``, the mean ± std over
  seeds. Steps: ``/N`` or ``*N`` scale a number, a format spec (``.1f``, ``.0f``) formats it (runs.csv: digits of
  mean and std).

A .csv source is a runs.csv of the fusion benchmark (`r3d.benchmark.records`); a .json source is any JSON file,
e.g. what ``python -m benchmarks --out`` or ``python -m benchmarks.commands --out`` wrote. `render_page` returns the
page with every marked part rewritten; a page is up to date when that changes nothing (`tools/render_docs.py --check`
and tests/test_docs.py).
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .claims import best_plain, claim_beats_best_plain, claim_keeps_depth
from .records import PathLike, noise_tag, read_rows, row_key
from .results import COLLAPSE_TABLE, TABLE, fmt_stat, remedy_table, results_page, write_results
from .stats import aggregate, compare, noises_in, variants_in
from .variants import ERANK_REFERENCES, RTF_VARIANTS, default_variant

SOURCE_RE = re.compile(r"<!--\s*r3d-source\s+(?P<name>[\w.-]+)\s*:\s*(?P<path>\S+)(?:\s+\((?P<label>[^)]*)\))?\s*-->")
BLOCK_RE = re.compile(r"(?P<open><!--\s*r3d-begin\s+(?P<spec>.*?)\s*-->\n)(?P<body>.*?)(?P<close><!--\s*r3d-end\s*-->)",
                      re.S)
VALUE_RE = re.compile(r"(?P<open><!--\s*r3d\s+(?P<spec>[^>]*?)\s*-->)(?P<body>.*?)(?P<close><!--\s*/r3d\s*-->)")
LABELS = {c: label for c, label, _ in TABLE + COLLAPSE_TABLE}
DIGITS = {c: d for c, _, d in TABLE + COLLAPSE_TABLE}


class PageError(ValueError):
    """A marker that cannot be rendered; the message names the page, the line and what to fix."""


@dataclass(frozen=True)
class Source:
    """A result file a page quotes: its alias, path (relative to the repository root) and optional label."""

    name: str
    path: str
    label: str = ""


class PageSources:
    """The declared sources of one page, each file read once (what a block renderer reads its data from)."""

    def __init__(self, root: Path, sources: Mapping[str, Source]) -> None:
        self.root, self.sources = root, dict(sources)
        self._cache: Dict[str, Any] = {}

    def source(self, name: str, where: str) -> Source:
        if name not in self.sources:
            raise PageError(f"{where}: source '{name}' is not declared on this page; add "
                            f"<!-- r3d-source {name}: PATH --> (declared: {', '.join(self.sources) or 'none'})")
        return self.sources[name]

    def data(self, name: str, where: str) -> Any:
        src = self.source(name, where)
        if name not in self._cache:
            path = self.root / src.path
            if not path.is_file():
                raise PageError(f"{where}: source '{name}' names {src.path}, which does not exist; write it with the "
                                "command that produces it, or fix the path")
            if path.suffix == ".csv":
                rows = read_rows(path)
                if not rows:
                    raise PageError(f"{where}: {src.path} has no complete run row")
                self._cache[name] = rows
            elif path.suffix == ".json":
                self._cache[name] = json.loads(path.read_text())
            else:
                raise PageError(f"{where}: {src.path}: only .csv (runs.csv) and .json sources can be quoted")
        return self._cache[name]

    def rows(self, name: str, where: str) -> List[Dict[str, str]]:
        data = self.data(name, where)
        if not isinstance(data, list):
            raise PageError(f"{where}: source '{name}' ({self.sources[name].path}) is not a runs.csv")
        return data

    def grid(self, name: str) -> Dict[str, Any]:
        """grid.json next to a runs.csv source ({} when absent)."""
        g = (self.root / self.sources[name].path).parent / "grid.json"
        return json.loads(g.read_text()) if g.is_file() else {}


# -- values ------------------------------------------------------------------------------------------------------------
def _json_get(data: Any, path: str, where: str) -> Any:
    cur = data
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, list) and any(isinstance(x, Mapping) and x.get("id") == part for x in cur):
            cur = next(x for x in cur if isinstance(x, Mapping) and x.get("id") == part)
        else:
            raise PageError(f"{where}: '{path}' has no '{part}' in the source file")
    return cur


def _apply_steps(value: Any, steps: Sequence[str], where: str) -> str:
    fmt = None
    for step in steps:
        if step[:1] in "/*":
            if not isinstance(value, (int, float)):
                raise PageError(f"{where}: cannot scale non-number {value!r}")
            factor = float(step[1:])
            value = value / factor if step[0] == "/" else value * factor
        else:
            fmt = step
    if value is None:
        return "n/a"
    try:
        return format(value, fmt) if fmt else str(value)
    except (TypeError, ValueError) as e:
        raise PageError(f"{where}: format '{fmt}' does not apply to {value!r} ({e})") from None


def _csv_value(rows: Sequence[Mapping[str, str]], selector: str, steps: Sequence[str], where: str) -> str:
    parts = selector.split("@")
    if len(parts) != 3:
        raise PageError(f"{where}: a runs.csv value is COLUMN@VARIANT@NOISE, got '{selector}'")
    column, variant, noise = parts
    cell = aggregate(rows, [column]).get((variant, noise_tag(float(noise))))
    if cell is None:
        raise PageError(f"{where}: no runs of variant '{variant}' at η = {noise} in the source")
    digits = next((int(s[1:-1]) for s in steps if re.fullmatch(r"\.\d+f", s)), DIGITS.get(column, 2))
    return fmt_stat(cell[column], digits)


def value(loaded: PageSources, spec: str, where: str) -> str:
    """The text of an inline marker ``SOURCE:SELECTOR|STEP|...``."""
    head, *steps = [s.strip() for s in spec.split("|")]
    if ":" not in head:
        raise PageError(f"{where}: an inline value is SOURCE:SELECTOR, got '{head}'")
    name, selector = head.split(":", 1)
    data = loaded.data(name, where)
    if isinstance(data, list):
        return _csv_value(data, selector, steps, where)
    return _apply_steps(_json_get(data, selector, where), steps, where)


# -- blocks ------------------------------------------------------------------------------------------------------------
BlockFn = Callable[[PageSources, str, Dict[str, str], str], List[str]]
BLOCKS: Dict[str, BlockFn] = {}


def block(kind: str) -> Callable[[BlockFn], BlockFn]:
    """Register a block renderer: fn(loaded sources, source name, key=value arguments, where) -> lines."""

    def deco(fn: BlockFn) -> BlockFn:
        BLOCKS[kind] = fn
        return fn

    return deco


def _noises(arg: Optional[str], rows: Sequence[Mapping[str, Any]]) -> List[str]:
    if not arg or arg == "*":
        return noises_in(rows)
    return [noise_tag(float(x)) for x in arg.split(",")]


def _variants(arg: Optional[str], rows: Sequence[Mapping[str, Any]]) -> List[str]:
    present = variants_in(rows)
    return [v for v in arg.split(",") if v in present] if arg else present


@block("summary")
def summary_table(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """One row per variant; columns ``columns=COLUMN@NOISE,...`` (NOISE ``*`` = every noise level of the file), each
    cell mean ± std over seeds. ``variants=a,b`` picks and orders the rows."""
    rows = loaded.rows(name, where)
    agg = aggregate(rows)
    cols: List[Tuple[str, str]] = []
    for item in args.get("columns", "action_top1@*").split(","):
        column, _, noise = item.partition("@")
        if column not in LABELS:
            raise PageError(f"{where}: unknown column '{column}'; known: {', '.join(LABELS)}")
        cols += [(column, n) for n in _noises(noise, rows)]
    head = ["variant"] + [f"{LABELS[c]}, η = {n}" for c, n in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in _variants(args.get("variants"), rows):
        cells = [fmt_stat(agg[(v, n)][c], DIGITS[c]) if (v, n) in agg else "—" for c, n in cols]
        lines.append(f"| `{v}` | " + " | ".join(cells) + " |")
    return lines


_OUTCOME = {"win": ("beat", "at η = {n} ({other})"), "tie": ("tied", "at η = {n} (with {other})"),
            "loss": ("lost", "at η = {n} (to {other})")}


@block("verdict")
def verdict(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """The verdict in words, no numbers: each RTF variant against the best plain fuser at each noise level (paired by
    seed; a margin within one std is a tie), and at how many noise levels it raised the fused-token effective rank."""
    rows = loaded.rows(name, where)
    noises = noises_in(rows)
    seeds = sorted({row_key(r)[2] for r in rows}, key=int)
    default = default_variant(str(loaded.grid(name).get("config", "configs/synthetic.yaml")))
    lines = []
    for v in [v for v in RTF_VARIANTS if v in variants_in(rows)]:
        parts = []
        for n in noises:
            best = best_plain(rows, n)
            c = compare(rows, v, best, n) if best else None
            word, where_ = _OUTCOME[c.verdict] if c else ("not measured", "at η = {n}{other}")
            parts.append(f"{word} {where_.format(n=n, other=c.other if c else '')}")
        ranks = []
        for ref in ERANK_REFERENCES:
            outs = [c for n in noises if (c := compare(rows, v, ref, n, "erank_fused")) is not None]
            if outs:
                ranks.append(f"against {ref} at {sum(c.verdict == 'win' for c in outs)} of {len(outs)}")
        rank = f"; raised the fused effective rank {' and '.join(ranks)} noise levels" if ranks else ""
        tag = f"`{v}`" + (" (r3d's default)" if v == default else "")
        lines.append(f"- {tag}, against the best plain fuser: {', '.join(parts)}{rank}.")
    if not lines:
        raise PageError(f"{where}: {loaded.sources[name].path} has no RTF variant ({', '.join(RTF_VARIANTS)})")
    spread = ("a margin within one std over seeds counts as a tie" if len(seeds) > 1
              else "one seed has no spread, so any margin decides")
    lines.append(f"- Seeds {', '.join(seeds)}; {spread}.")
    return lines


def _rows_with(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[Dict[str, str]]:
    """The rows of source NAME, plus, with ``with=SOURCE``, another runs.csv's rows of the variants NAME lacks (runs
    of the same data and seeds, e.g. the plain fusers and unimodal references that new variants are judged by)."""
    rows = loaded.rows(name, where)
    if "with" not in args:
        return rows
    own = set(variants_in(rows))
    return list(rows) + [r for r in loaded.rows(args["with"], where) if row_key(r)[0] not in own]


@block("claims")
def claims(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """The benchmark's yes/no claims about r3d's default (`r3d.benchmark.claims`): from source NAME, a grid on the
    redundant mode, whether it keeps depth at ``noise=`` (default 0.5); from ``complementary=SOURCE``, a grid on the
    complementary mode, whether it beats the best plain fuser at every η. The variant is the one the grid's config
    trains (``variant=`` overrides it); ``with=SOURCE`` and ``complementary_with=SOURCE`` add rows as for
    ``remedies``."""
    rows = _rows_with(loaded, name, args, where)
    v = args.get("variant") or default_variant(str(loaded.grid(name).get("config", "configs/synthetic.yaml")))
    if not v:
        raise PageError(f"{where}: the grid's config trains no named variant; pass variant=NAME")
    lines = [f"- Redundant mode: {claim_keeps_depth(rows, v, float(args.get('noise', 0.5))).line()}"]
    if "complementary" in args:
        extra = {"with": args["complementary_with"]} if "complementary_with" in args else {}
        comp = _rows_with(loaded, args["complementary"], extra, where)
        lines.append(f"- Complementary mode: {claim_beats_best_plain(comp, v).line()}")
    return lines


@block("remedies")
def remedies(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """Each remedy against the best plain fuser at ``noise=a,b`` (default: every η of the file), on full top-1 and
    on kept depth, paired by seed (results.md's table, `r3d.benchmark.results.remedy_table`). ``with=SOURCE`` adds the
    rows of another runs.csv of the same data and seeds for the variants NAME lacks (e.g. the plain fusers of a
    grid that new variants are measured against); ``variants=a,b`` keeps only those remedies."""
    rows = _rows_with(loaded, name, args, where)
    keep = args["variants"].split(",") if "variants" in args else None
    table = remedy_table(rows, _noises(args.get("noise"), rows), keep)
    if not table:
        raise PageError(f"{where}: {loaded.sources[name].path} has no remedy and plain-fuser runs to compare")
    return table


@block("ablation")
def ablation(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """``variant`` of the grid, then each source in ``ablations=a,b`` (runs of that variant with one change, labelled
    by the source's label), then ``references=``: action top-1 at each of ``noise=`` and the paired difference to the
    grid's variant."""
    base_rows = loaded.rows(name, where)
    variant = args.get("variant", "rtf_bn")
    noises = _noises(args.get("noise"), base_rows)
    entries: List[Tuple[str, str, List[Dict[str, str]]]] = [(f"`{variant}` (grid)", variant, base_rows)]
    for a in filter(None, args.get("ablations", "").split(",")):
        label = loaded.source(a, where).label or a
        entries.append((f"`{label}`", variant, loaded.rows(a, where)))
    entries += [(f"`{r}` (grid)", r, base_rows) for r in filter(None, args.get("references", "").split(","))]
    head = ["run"] + [h for n in noises for h in (f"action top-1, η = {n}", f"vs `{variant}`")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, (label, v, rows) in enumerate(entries):
        cells = []
        for n in noises:
            mine = [dict(r, variant="__this__") for r in rows if row_key(r)[:2] == (v, n)]
            base = [r for r in base_rows if row_key(r)[:2] == (variant, n)]
            st = aggregate(mine, ["action_top1"]).get(("__this__", n))
            c = compare(mine + base, "__this__", variant, n) if mine and i > 0 else None  # row 0 is the base itself
            cells += [fmt_stat(st["action_top1"]) if st else "—", c.text() if c else "—"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


@block("figures")
def figures(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """The performance table of a ``python -m benchmarks`` JSON: id, what, measured, target, met."""
    data = loaded.data(name, where)
    figs = data.get("figures") if isinstance(data, Mapping) else None
    if not isinstance(figs, list):
        raise PageError(f"{where}: {loaded.sources[name].path} has no 'figures' list (python -m benchmarks --out)")
    lines = ["| id | what | measured | target | met? |", "|---|---|---|---|---|"]
    for f in figs:
        unit = f.get("unit", "")
        val = "n/a" if f.get("value") is None else f"{f['value']:.3f}{unit}"
        target = "n/a" if f.get("target") is None else f"{f.get('better', '')} {f['target']:g}{unit}"
        met = {True: "yes", False: "**no**", None: "n/a"}[f.get("passed")]
        note = f" ({f['note']})" if f.get("note") else ""
        lines.append(f"| {f['id']} | {f['what']}{note} | {val} | {target} | {met} |")
    return lines


@block("moc")
def moc_table(loaded: PageSources, name: str, args: Dict[str, str], where: str) -> List[str]:
    """The long-term protocol's MoC (%) of a run's metrics JSON: one row per observed fraction α, one column per
    predicted fraction β, then the mean over α (the ``long_term`` section `r3d.engine.protocols.long_term` writes)."""
    data = loaded.data(name, where)
    lt = data.get("long_term") if isinstance(data, Mapping) else None
    if not isinstance(lt, Mapping) or not isinstance(lt.get("moc"), Mapping):
        raise PageError(f"{where}: {loaded.sources[name].path} has no long_term.moc (train with data.protocol="
                        "long_term)")
    alphas = list(lt["moc"])
    betas = list(lt["moc"][alphas[0]])
    lines = ["| MoC % | " + " | ".join(f"β = {b}" for b in betas) + " |", "|---|" + "---|" * len(betas)]
    lines += [f"| α = {a} | " + " | ".join(f"{lt['moc'][a][b]:.2f}" for b in betas) + " |" for a in alphas]
    if isinstance(lt.get("mean_moc"), Mapping):
        lines.append("| mean over α | " + " | ".join(f"{lt['mean_moc'][b]:.2f}" for b in betas) + " |")
    return lines


# -- pages -------------------------------------------------------------------------------------------------------------
def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


FENCE_RE = re.compile(r"^\s*```.*?^\s*```[^\n]*$", re.M | re.S)


def _prose(text: str) -> str:
    """The text with every fenced code block blanked (same length and lines): markers shown as examples in code are
    not rendered."""
    return FENCE_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def sources_of(text: str) -> Dict[str, Source]:
    """The ``r3d-source`` declarations of a page, by alias (a second declaration of one alias is an error)."""
    out: Dict[str, Source] = {}
    for m in SOURCE_RE.finditer(_prose(text)):
        if m["name"] in out:
            raise PageError(f"line {_line_of(text, m.start())}: source '{m['name']}' is declared twice")
        out[m["name"]] = Source(m["name"], m["path"], (m["label"] or "").strip())
    return out


def render_page(text: str, root: PathLike = ".", page: str = "page") -> str:
    """The page with every block and inline value rewritten from its sources (paths relative to `root`).

    Raises:
        PageError: an unknown source, block kind or selector, or a source file that is missing; the message names
            `page` and the line.
    """
    root = Path(root)
    loaded = PageSources(root, sources_of(text))

    def render_block(m: re.Match) -> str:
        where = f"{page}:{_line_of(text, m.start())}"
        kind, name, *rest = shlex.split(m["spec"]) + ["", ""]
        if kind not in BLOCKS:
            raise PageError(f"{where}: unknown block kind '{kind}'; known: {', '.join(sorted(BLOCKS))}")
        args = dict(a.split("=", 1) for a in rest if "=" in a)
        return m["open"] + "\n".join(BLOCKS[kind](loaded, name, args, where)) + "\n" + m["close"]

    def render_value(m: re.Match) -> str:
        return m["open"] + value(loaded, m["spec"], f"{page}:{_line_of(text, m.start())}") + m["close"]

    return _sub_outside_code(VALUE_RE, render_value, _sub_outside_code(BLOCK_RE, render_block, text))


def _sub_outside_code(pattern: re.Pattern, fn: Callable[[re.Match], str], text: str) -> str:
    """`pattern.sub(fn, text)` for the matches that start outside fenced code blocks."""
    prose = _prose(text)
    out, last = [], 0
    for m in pattern.finditer(text):
        if prose[m.start()] == " " and text[m.start()] != " ":  # inside a code block
            continue
        out += [text[last:m.start()], fn(m)]
        last = m.end()
    return "".join(out + [text[last:]])


def quoted(text: str) -> List[Tuple[str, str]]:
    """(source file, what is quoted) of every block and inline value of a page, to find a number quoted twice."""
    srcs = sources_of(text)
    text = _prose(text)
    out = []
    for m in BLOCK_RE.finditer(text):
        kind, name, *rest = shlex.split(m["spec"]) + ["", ""]
        out.append((srcs[name].path if name in srcs else name, " ".join([kind] + [r for r in rest if r])))
    for m in VALUE_RE.finditer(text):
        name, _, selector = m["spec"].split("|")[0].strip().partition(":")
        out.append((srcs[name].path if name in srcs else name, selector))
    return out


LOOSE_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:%|(?:×|x)(?!\w|\s?\d)|±)|±\s?\d")


def loose_numbers(text: str) -> List[Tuple[int, str]]:
    """(line, text) of every percentage, ratio (``1.2x``, ``3×``; not a size like ``160×120``) or ``±`` spread that a
    page states outside a marked value or block, a code span, a code block and a quotation (a ``>`` line): a measured
    number that no results file backs."""
    text = BLOCK_RE.sub(lambda m: m["open"] + "\n" * m["body"].count("\n") + m["close"], text)
    text = VALUE_RE.sub(lambda m: m["open"] + m["close"], text)
    out, fenced = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.lstrip().startswith(">"):
            continue
        bare = re.sub(r"`[^`]*`|<!--.*?-->", "", line)
        out += [(i, m.group(0)) for m in LOOSE_RE.finditer(bare)]
    return out


def render_file(path: PathLike, root: PathLike = ".", write: bool = True) -> bool:
    """Re-render one page in place (when `write`); True when its text changed (or would change)."""
    path, root = Path(path), Path(root)
    old = path.read_text()
    new = render_page(old, root, page=str(path.relative_to(root) if path.is_relative_to(root) else path))
    if new != old and write:
        path.write_text(new)
    return new != old


def doc_pages(root: PathLike = ".") -> List[Path]:
    """README.md and every docs/**/*.md of the repository at `root`, except the benchmark's generated results.md."""
    root = Path(root)
    generated = {f / "results.md" for f in results_folders(root)}
    pages = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    return [p for p in pages if p.is_file() and p not in generated]


def marked_pages(root: PathLike = ".") -> List[Path]:
    """The `doc_pages` that hold a marker."""
    return [p for p in doc_pages(root) if "r3d-source" in (t := p.read_text()) or "r3d-begin" in t]


def results_folders(root: PathLike = ".") -> List[Path]:
    """Every docs/**/ folder with a runs.csv and a results.md: benchmark results committed with the tool's report."""
    return sorted(p.parent for p in Path(root, "docs").rglob("runs.csv") if (p.parent / "results.md").is_file())


def render_all(root: PathLike = ".", write: bool = True, plots: bool = True) -> List[str]:
    """Re-render the repository's result pages (results.md of every `results_folders` entry, and its plots when
    `plots`) and every marked page (`marked_pages`); returns the files whose text changed (or would, without
    `write`), relative to `root`."""
    root = Path(root)
    changed = []
    for folder in results_folders(root):
        page = folder / "results.md"
        if results_page(folder) != page.read_text():
            changed.append(str(page.relative_to(root)))
        if write:
            write_results(folder) if plots else page.write_text(results_page(folder))
    for page in marked_pages(root):
        if render_file(page, root, write=write):
            changed.append(str(page.relative_to(root)))
    return changed
