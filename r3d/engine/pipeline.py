"""The main job: make the synthetic data if needed, train, evaluate with collapse diagnostics, write a report."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict

from ..config import Config
from ..viz.report import write_run_report
from .checkpoint import find_latest
from .tester import test
from .trainer import train

_logger = logging.getLogger("r3d")


def run_main_job(cfg: Config) -> Dict[str, Any]:
    """Generate (if absent) → train (resuming an interrupted run in the same work_dir) → test → report.md."""
    work_dir = Path(cfg.work_dir)
    resume = "auto" if find_latest(work_dir / "checkpoints") is not None else None
    train_metrics = train(cfg, resume=resume)
    test_metrics = test(cfg, str(work_dir), out=str(work_dir / "metrics_test.json"))
    report = write_run_report(work_dir)
    return {"train": train_metrics, "test": test_metrics, "report": str(report)}
