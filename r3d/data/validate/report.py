"""The validator's findings and its one-table report, and the `Checker` the checks record into.

A finding is an error (training would stop on it, or silently use a wrong frame), a warning (training works, but
not as you may expect: missing depth, NaN depth read as holes, most depth cut by the range) or info.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..errors import DataError

PathLike = Union[str, os.PathLike]

ERROR, WARNING, INFO = "error", "warning", "info"
CHECKS: Tuple[Tuple[str, str], ...] = (
    ("layout", "ROOT has annotations/ and the folders the model reads"),
    ("dataset.yaml", "known keys; depth scale and range"),
    ("classes", "verb/noun class lists, actions.csv"),
    ("annotations", "split CSVs: columns, times, class ids"),
    ("narration ids", "unique across splits"),
    ("videos", "exist, open, last frame decodes"),
    ("frame timing", "frame count, fps, duration, timestamps agree"),
    ("depth store", "depth present and readable"),
    ("depth frames", "one depth frame per RGB frame"),
    ("depth values", "16-bit 1-channel PNG, finite values"),
    ("depth range", "readings survive depth_scale/min/max"),
    ("segments", "segments start inside their video"),
)


@dataclass
class Finding:
    """One problem: `where` names the file (and row), `message` is one line that says what to fix."""

    check: str
    level: str
    where: str
    message: str


@dataclass
class CheckResult:
    """What one check looked at (`checked` items) and what it found."""

    name: str
    description: str
    checked: int = 0
    findings: List[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        levels = {f.level for f in self.findings}
        if ERROR in levels:
            return "ERROR"
        if WARNING in levels:
            return "warn"
        return "ok" if self.checked else "-"


@dataclass
class ValidationReport:
    """All check results of one ROOT, in the order of `CHECKS`."""

    root: Path
    checks: Dict[str, CheckResult]
    stats: Dict[str, Any] = field(default_factory=dict)

    def findings(self, level: Optional[str] = None) -> List[Finding]:
        return [f for c in self.checks.values() for f in c.findings if level is None or f.level == level]

    @property
    def errors(self) -> List[Finding]:
        return self.findings(ERROR)

    @property
    def warnings(self) -> List[Finding]:
        return self.findings(WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def table(self, width: int = 110, details: int = 5) -> str:
        """The summary table (one row per check), then up to `details` findings per check."""
        rows = [("check", "status", "checked", "errors", "warnings", "what")]
        for c in self.checks.values():
            n_err = sum(f.level == ERROR for f in c.findings)
            n_warn = sum(f.level == WARNING for f in c.findings)
            rows.append((c.name, c.status, str(c.checked), str(n_err), str(n_warn), c.description))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"dataset {self.root}"]
        for i, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        for c in self.checks.values():
            shown = [f for f in c.findings if f.level != INFO][:details]
            if not shown:
                continue
            lines.append("")
            lines.append(f"{c.name}:")
            for f in shown:
                text = f"  {f.level.upper()}: {f.message}"
                lines.append(text if len(text) <= width * 3 else text[: width * 3 - 3] + "...")
            more = sum(f.level != INFO for f in c.findings) - len(shown)
            if more > 0:
                lines.append(f"  ... and {more} more")
        info = [f for c in self.checks.values() for f in c.findings if f.level == INFO]
        if info:
            lines.append("")
            lines.extend(f"info: {f.message}" for f in info)
        n_err, n_warn = len(self.errors), len(self.warnings)
        lines.append("")
        lines.append(f"{n_err} error(s), {n_warn} warning(s)" + ("" if n_err else ": the dataset can be trained on"))
        return "\n".join(lines)


def where_of(e: Exception) -> str:
    """The location prefix of a one-line DataError message (the text before the first ': ')."""
    return str(e).split(": ", 1)[0]


class Checker:
    """Collects findings per check instead of stopping at the first problem (`results`, in the order of `CHECKS`)."""

    def __init__(self, full: bool) -> None:
        self.full = full
        self.results = {name: CheckResult(name, desc) for name, desc in CHECKS}

    def add(self, check: str, level: str, where: PathLike, message: str) -> None:
        self.results[check].findings.append(Finding(check, level, str(where), message))

    def count(self, check: str, n: int = 1) -> None:
        self.results[check].checked += n

    def guard(self, check: str, fn: Callable, *args, **kwargs) -> Any:
        """fn(*args) with a DataError recorded as an error of `check` (returns None then)."""
        try:
            return fn(*args, **kwargs)
        except DataError as e:
            self.add(check, ERROR, where_of(e), str(e))
            return None
