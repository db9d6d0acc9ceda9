"""What the performance benchmarks share: the benchmark model, a dataset ROOT to read, random input batches, and the
training step they time.

The benchmark model is the one `configs/synthetic.yaml` trains (RTF fuser, r3d_resnet_tiny RGB and depth backbones,
frames read at `data.img_size`, T = 8, C = 128); its weights are random, which does not change any cost measured here.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Union

import torch
from accelerate import Accelerator

from r3d.config import Config, apply_overrides, load_config
from r3d.data.synthetic import generate
from r3d.engine.protocols import build_protocol
from r3d.engine.step import make_optimizer, train_step
from r3d.models.anticipator import Anticipator

PathLike = Union[str, os.PathLike]
REPO = Path(__file__).resolve().parents[1]
BENCH_CONFIG = REPO / "configs" / "synthetic.yaml"


def bench_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """The benchmark model's config: `path` (default configs/synthetic.yaml when it exists, else r3d/defaults.yaml)
    with `key=value` overrides."""
    if path is None and BENCH_CONFIG.is_file():
        path = BENCH_CONFIG
    return load_config(path, list(overrides))


def class_counts(cfg: Config) -> Dict[str, Any]:
    """Head sizes and action vocabulary of the synthetic benchmark (`synthetic.num_verbs` × `synthetic.num_nouns`)."""
    v, n = int(cfg.synthetic.num_verbs), int(cfg.synthetic.num_nouns)
    actions = [[a, b] for a in range(v) for b in range(n)]
    return {"num_classes": {"verb": v, "noun": n, "action": len(actions)}, "actions": actions}


def build_random_model(cfg: Config, seed: int = 0) -> Anticipator:
    """The config's anticipator for the synthetic class counts, with seeded random weights."""
    torch.manual_seed(seed)
    c = class_counts(cfg)
    return Anticipator(cfg, c["num_classes"], actions=c["actions"])


def random_batch(cfg: Config, batch_size: int, seed: int = 0) -> Dict[str, Any]:
    """A batch with the dataset's keys and shapes (docs/architecture.md): rgb (B,T,3,S,S) ~ N(0,1), depth (B,T,1,S,S)
    ~ U[0,1), every modality present, random verb/noun/action labels, index 0..B-1."""
    g = torch.Generator().manual_seed(seed)
    t, s = int(cfg.data.num_frames), int(cfg.data.img_size)
    c = class_counts(cfg)["num_classes"]
    return {
        "rgb": torch.randn(batch_size, t, 3, s, s, generator=g),
        "depth": torch.rand(batch_size, t, 1, s, s, generator=g),
        "present": {m: torch.ones(batch_size, dtype=torch.bool) for m in ("rgb", "depth")},
        "verb": torch.randint(0, c["verb"], (batch_size,), generator=g),
        "noun": torch.randint(0, c["noun"], (batch_size,), generator=g),
        "action": torch.randint(0, c["action"], (batch_size,), generator=g),
        "index": torch.arange(batch_size),
    }


def has_dataset(root: PathLike) -> bool:
    """Whether `root` holds a folder-format ROOT (docs/data.md) with train and val annotations."""
    a = Path(root) / "annotations"
    return (a / "train.csv").is_file() and (a / "val.csv").is_file() and (Path(root) / "videos").is_dir()


@contextlib.contextmanager
def dataset_root(cfg: Config, videos: int = 16, workdir: Optional[PathLike] = None, reuse: bool = True
                 ) -> Iterator[Config]:
    """`cfg` pointed at a dataset to read: its own `data.root` when that holds one (e.g. data/synthetic) and `reuse`,
    else a small synthetic benchmark (`r3d.data.synthetic.generate`, `videos` videos, the config's synthetic.* keys)
    rendered into `workdir` (default: a temporary folder, removed on exit)."""
    if reuse and has_dataset(cfg.data.root):
        yield apply_overrides(cfg, ["data.generate_if_missing=false"])
        return
    with contextlib.ExitStack() as stack:
        base = Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="r3d_bench_")))
        root = base / "data"
        if not has_dataset(root):
            s = cfg.synthetic
            generate(root, videos=videos, val_fraction=float(s.val_fraction), pairs_per_video=int(s.pairs_per_video),
                     num_verbs=int(s.num_verbs), num_nouns=int(s.num_nouns), fps=float(s.fps), size=int(s.size),
                     depth_noise=float(s.depth_noise), seed=int(s.seed), tau_a=float(cfg.data.tau_a),
                     tau_o=float(cfg.data.tau_o), workers=1, progress=False)
        yield apply_overrides(cfg, [f"data.root={root}", "data.generate_if_missing=false"])


class TrainStep:
    """One optimiser step of `tools/train.py` (`r3d.engine.step.train_step` with the trainer's optimiser), on one
    process without gradient accumulation. The LR schedule, EMA and logging around it cost the same for every model
    and are left out. Follows `train.deterministic` like the trainer (deterministic algorithms, warn only)."""

    def __init__(self, model: torch.nn.Module, cfg: Config) -> None:
        self.model = model.train()
        self.cfg = cfg
        self.protocol = build_protocol(cfg)
        self.optimizer = make_optimizer(model, cfg)
        self.accelerator = Accelerator(cpu=True, mixed_precision=str(cfg.train.mixed_precision))
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def __call__(self, batch: Mapping[str, Any]) -> float:
        """Run one step on `batch`; returns the loss."""
        return float(train_step(self.model, batch, self.protocol, self.cfg, self.accelerator, self.optimizer).loss)
