#!/usr/bin/env python
"""Re-render every number the README and docs/ quote from committed result files.

    python tools/render_docs.py            # rewrite docs/**/results.md (+ plots) and every marked page
    python tools/render_docs.py --check    # change nothing; list stale pages and unbacked numbers, exit 1 if any

Result pages: every docs/ folder with runs.csv and results.md gets results.md and plots/ rewritten from its runs.csv
and grid.json, exactly as `python tools/benchmark.py --out DIR --report-only` would. Marked pages: README.md and
docs/**/*.md with `<!-- r3d-source NAME: PATH -->` declarations; their `<!-- r3d-begin KIND SOURCE ... -->` blocks and
`<!-- r3d SOURCE:SELECTOR -->value<!-- /r3d -->` values are rewritten from the files they name (syntax: module
docstring of r3d/benchmark/pages.py). To quote a new results file, point the page's r3d-source line at it and run
this tool. --check also lists percentages, ratios and ± spreads written outside a marker or code span.
"""
import argparse
import sys
from pathlib import Path

from r3d.benchmark.pages import PageError, doc_pages, loose_numbers, render_all


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is stale")
    ap.add_argument("--root", default=".", help="repository root (default: %(default)s)")
    args = ap.parse_args(argv)
    root = Path(args.root)
    try:
        changed = render_all(root, write=not args.check)
    except PageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loose = [f"{p.relative_to(root)}:{line}: {text!r}" for p in doc_pages(root)
             for line, text in loose_numbers(p.read_text())]
    if args.check:
        for c in changed:
            print(f"{c}: stale; run python tools/render_docs.py")
        for item in loose:
            print(f"{item}: a measured number without a marker (quote it from a results file, or put it in code)")
        return 1 if changed or loose else 0
    print("\n".join(f"rewrote {c}" for c in changed) or "every page was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
