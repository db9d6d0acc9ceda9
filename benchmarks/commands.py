"""Time the README's two commands as a newcomer runs them: a clean copy of the committed tree, a brand-new venv.

    python -m benchmarks.commands [--out docs/performance/readme_commands.json] [--only command_1] [--logs DIR]

Run from the repository root. The commands are read from the first ```bash block of README.md (one per line, the
comment after `#` dropped) and run one after the other with bash in a copy of `git archive HEAD`, with a new venv's
bin/ first on PATH, one `&&` step at a time. For each: wall seconds, exit code, console lines (all, and those that
are not progress-bar redraws; in all and per step, so the installer's lines and r3d's are told apart), and the log.
Command 1's validation action top-1 comes from the run folder it writes (runs/synthetic_rtf/metrics_test.json);
command 2's test counts and pytest's own duration from its last line. The JSON is what README.md and docs/ quote
for these timings (tools/render_docs.py); with --only, the other commands' records already in it are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"\r|\d+%\|")  # tqdm redraws a bar with \r; its lines hold "NN%|"


def readme_commands(readme: Path = REPO / "README.md") -> List[str]:
    """The commands of the README's first ```bash block, comments dropped, in order."""
    m = re.search(r"```bash\n(.*?)```", readme.read_text(), re.S)
    if not m:
        raise ValueError(f"{readme}: no ```bash block with the commands to time")
    return [c for c in (line.split("  #")[0].strip() for line in m.group(1).splitlines()) if c]


def console_lines(text: str) -> Dict[str, int]:
    """{"all": lines printed, "without_progress": lines that are neither a progress bar's nor blank (a finished
    bar that tqdm clears leaves a blank line when the output is not a terminal)}."""
    lines = text.rstrip("\n").split("\n") if text else []
    return {"all": len(lines),
            "without_progress": sum(1 for line in lines if line.strip() and not PROGRESS.search(line))}


def pytest_summary(text: str) -> Dict[str, Any]:
    """passed / failed / skipped counts and pytest's seconds from its closing line (empty when absent)."""
    tail = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    if not tail:
        return {}
    out: Dict[str, Any] = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail[-1])}
    sec = re.search(r"in ([\d.]+)s", tail[-1])
    if sec:
        out["seconds"] = float(sec.group(1))
    return out


def run_commands(commands: Sequence[Tuple[int, str]], workdir: Path, log_dir: Path) -> Dict[str, Any]:
    """Run each command with bash in `workdir` using a new venv at workdir/.venv; {"command_<i>": record}.

    `commands` are (number, command) pairs: the number names the record and the log."""
    subprocess.run([sys.executable, "-m", "venv", str(workdir / ".venv")], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{workdir / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(workdir / ".venv"))
    out: Dict[str, Any] = {}
    for i, cmd in commands:
        # Each `&&` step runs on its own (as bash would: stop at the first failure), so the console lines of the
        # installer and of r3d's tool are counted apart.
        t0, text, steps, code = time.perf_counter(), "", [], 0
        for step in cmd.split(" && "):
            r = subprocess.run(["bash", "-c", step], cwd=workdir, env=env, capture_output=True, text=True)
            text += r.stdout + r.stderr
            code = r.returncode
            steps.append({"command": step, "exit_code": code, "console_lines": console_lines(r.stdout + r.stderr)})
            if code != 0:
                break
        seconds = time.perf_counter() - t0
        (log_dir / f"command_{i}.log").write_text(text)
        rec: Dict[str, Any] = {"command": cmd, "seconds": round(seconds, 1), "exit_code": code,
                               "console_lines": console_lines(text), "steps": steps}
        if "pytest" in cmd:
            rec["pytest"] = pytest_summary(text)
        metrics = workdir / "runs" / "synthetic_rtf" / "metrics_test.json"
        if i == 1 and metrics.is_file():
            rec["action_top1"] = round(float(json.loads(metrics.read_text())["action"]["top1"]), 2)
        out[f"command_{i}"] = rec
        print(f"command {i}: exit {code}, {seconds:.0f} s, {rec['console_lines']['without_progress']} lines "
              f"without progress bars ({', '.join(str(s['console_lines']['without_progress']) for s in steps)} "
              "by step)", flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.commands", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="readme_commands.json", help="JSON file (default: %(default)s)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these, e.g. command_1 (default: all)")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder, removed)")
    ap.add_argument("--logs", help="write each command's console output to DIR/command_<i>.log (default: not kept)")
    args = ap.parse_args(argv)
    commands = [(i, c) for i, c in enumerate(readme_commands(), 1) if not args.only or f"command_{i}" in args.only]
    with tempfile.TemporaryDirectory(prefix="r3d_readme_") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        tree = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=tree, check=True)
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        where = {"commit": head, "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                 "python": sys.version.split()[0], "load_avg_1m_before": round(os.getloadavg()[0], 2)}
        logs = Path(args.logs) if args.logs else work
        logs.mkdir(parents=True, exist_ok=True)
        runs = run_commands(commands, work, logs)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}  # --only updates its commands, keeps the others
    tool = " ".join(["python -m benchmarks.commands", *(argv if argv is not None else sys.argv[1:])])
    for key, rec in runs.items():
        result[key] = {**rec, **where, "load_avg_1m_after": round(os.getloadavg()[0], 2), "tool": tool}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if all(r.get("exit_code") == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
