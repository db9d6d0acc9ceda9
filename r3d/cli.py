"""What every r3d command-line tool shares: config arguments in the spellings users already know, and quiet logging.

Config arguments (`add_config_arguments`, `config_overrides`):

- ``--config FILE`` / ``-c FILE``: the experiment YAML (keys and defaults: r3d/defaults.yaml).
- ``key=value`` positionals, and ``--cfg-options key=value ...`` (mmaction2's spelling): dotted overrides, in order.
- ``--work-dir DIR`` (timm / mmaction2): the same as ``work_dir=DIR``.
- ``--resume [auto|STATE_DIR]`` (`add_resume_argument`, `resume_target`): a ``key=value`` right after ``--resume`` is
  an override, not a folder, so ``--resume train.epochs=30`` resumes the latest state with 30 epochs.

Logging (`setup_logging`): the console shows warnings, progress bars and the tools' own summary lines; every INFO
record of r3d and of the libraries it drives (accelerate's checkpoint saving, timm, ...) goes to the run's log file
(WORK_DIR/log.txt) when there is one; ``--verbose`` shows them on the console too.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

LOG_FILE = "log.txt"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_handler_tag = "_r3d_cli"


def add_config_arguments(ap: argparse.ArgumentParser, default_config: Optional[str] = None,
                         work_dir: bool = True) -> None:
    """Add ``--config/-c``, ``--cfg-options``, ``--work-dir`` (if `work_dir`), ``--verbose`` and ``key=value``
    positionals to a tool's parser."""
    extra = f" (default: {default_config})" if default_config else ""
    ap.add_argument("--config", "-c", default=default_config,
                    help=f"experiment YAML; every key and its default: r3d/defaults.yaml{extra}")
    ap.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides (the same as key=value positionals; mmaction2's spelling)")
    if work_dir:
        ap.add_argument("--work-dir", help="run folder (the same as work_dir=DIR)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="also show INFO logs on the console (they always go to WORK_DIR/log.txt)")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides, e.g. train.epochs=5 model.fuser=concat")


def add_resume_argument(ap: argparse.ArgumentParser) -> None:
    """``--resume [auto|STATE_DIR]``: continue WORK_DIR/checkpoints/latest (auto) or a given state folder."""
    ap.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|STATE_DIR",
                    help="continue from WORK_DIR/checkpoints/latest (auto, the default when no folder follows) or "
                         "from a given state folder; a key=value right after it is read as an override")


def config_overrides(args: argparse.Namespace) -> List[str]:
    """The overrides of a parsed command line, in the order they apply: positionals, ``--cfg-options``, then
    ``--work-dir``; a ``key=value`` that argparse gave to ``--resume`` is moved back among them."""
    out = list(args.overrides) + list(getattr(args, "cfg_options", None) or [])
    resume = getattr(args, "resume", None)
    if resume is not None and "=" in resume and not Path(resume).exists():
        out.insert(0, resume)
        args.resume = "auto"
    if getattr(args, "work_dir", None):
        out.append(f"work_dir={args.work_dir}")
    return out


def setup_logging(work_dir: Optional[Union[str, os.PathLike]] = None, verbose: bool = False,
                  console_level: int = logging.WARNING) -> Optional[Path]:
    """Console: `console_level` (INFO with `verbose`); WORK_DIR/log.txt (appended, created with the folder): INFO.

    Call again with a work_dir once the config is known; earlier handlers of this function are replaced. Returns
    the log file's path, or None without a work_dir.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _handler_tag, False):
            root.removeHandler(h)
            h.close()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else console_level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    setattr(console, _handler_tag, True)
    root.addHandler(console)
    if work_dir is None or int(os.environ.get("RANK", "0") or 0) != 0:  # one log file: the main process writes it
        return None
    path = Path(work_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    file = logging.FileHandler(path, encoding="utf-8")
    file.setLevel(logging.INFO)
    file.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    setattr(file, _handler_tag, True)
    root.addHandler(file)
    return path


def parse_known(ap: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """`ap.parse_args` that also accepts overrides placed after options (``--resume auto model.dim=64``)."""
    args, rest = ap.parse_known_args(argv)
    stray = [r for r in rest if "=" in r and not r.startswith("-")]
    unknown = [r for r in rest if r not in stray]
    if unknown:
        ap.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = list(args.overrides) + stray
    return args
