#!/usr/bin/env python
"""Render one run's diagnostics into RUN_DIR/report.md (plots as PNGs next to it).

    python tools/report.py RUN_DIR

Reads RUN_DIR/config.yaml, metrics.json and metrics_test*.json (tools/train.py, tools/test.py): anticipation table,
collapse table (effective ranks before/after fusion, gains, H, pooled rank), modality reliance, effective rank vs
observed fraction and the share of evaluation time the diagnostics took. Absent data is reported as "not measured".
"""
import argparse
import sys

from r3d.viz.report import write_run_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="run folder (work_dir of tools/train.py)")
    args = ap.parse_args(argv)
    try:
        path = write_run_report(args.run_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
