#!/usr/bin/env python
"""r3d's main job on the embedded synthetic RGB-D benchmark: generate the data, train, evaluate, report.

    python tools/quickstart.py [-c configs/synthetic.yaml] [--work-dir DIR] [key=value ...] [--verbose]

Renders the benchmark into data.root when it is absent (about a minute), trains the default RTF model, evaluates it on
the validation split with collapse diagnostics and modality reliance, and writes WORK_DIR/metrics.json,
WORK_DIR/metrics_test.json and WORK_DIR/report.md; every log line goes to WORK_DIR/log.txt. Running it again
resumes or reuses what is already there.
"""
import argparse
import sys

from r3d.cli import add_config_arguments, config_overrides, parse_known, setup_logging
from r3d.config import ConfigError, load_config
from r3d.engine.pipeline import run_main_job


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(ap, default_config="configs/synthetic.yaml")
    args = parse_known(ap, argv)
    setup_logging(verbose=args.verbose)
    try:
        cfg = load_config(args.config, config_overrides(args))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.work_dir, verbose=args.verbose)
    out = run_main_job(cfg)
    t = out["test"]
    print(f"val action top1 {t['action']['top1']:.2f}  top5 {t['action']['top5']:.2f}  mt5r {t['action']['mt5r']:.2f}")
    print(f"report: {out['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
