"""The feature cache: per-frame backbone tokens on disk, and `FeatureDataset`, which serves them for training/testing.

A frozen per-frame backbone gives every frame the same token in every epoch, so decoding the video and running the
backbone again each epoch is wasted work. `tools/extract_features.py` (`r3d.engine.extract.extract_features`) runs the
backbones once, with the deterministic evaluation transform (centre crop, no flip), and stores the tokens *before* the
model's projection; `data.features=DIR` then trains and tests from them: the model goes straight to
`project -> forward_tokens` (`Anticipator.forward` takes ``feats_<m>`` (B, T, F_m)).

Layout of a cache folder::

    DIR/manifest.json                   what the tokens depend on (below), dtype, r3d version, one entry per video
    DIR/shards/<video_id>.safetensors   rgb_frames (K,) int64 sorted RGB frame indices, rgb (K, F_rgb);
                                        depth_frames (L,) int64 sorted depth frame indices, depth (L, F_depth)
                                        (no depth tensors when the video has no depth)

Shards are safetensors (huggingface.co/docs/safetensors: a JSON header + raw little-endian tensors, read through a
memory map), so a sample reads only the rows of its window. Tokens are keyed by the frame index of their own stream:
RGB tokens by RGB frame, depth tokens by depth frame (the dataset maps a window's RGB frames to depth frames, as it
does end to end). They are stored for every frame that a window of an extracted split samples (or every frame with
``--all-frames``).

Manifest ``tokens`` is a flat ``{key: value}`` of everything the token values depend on; a run whose config gives a
different value for any key it uses is refused with an error naming the key (see `TOKEN_KEY_SOURCES`):
``modalities``, ``backbone.<m>.name / kind``,
``backbone.<m>.weights_sha256 / num_features`` (checked against the built model by `r3d.engine.extract`),
``transform.img_size / resize_scale / rgb_mean / rgb_std / depth_scale / depth_min / depth_max / depth_fps``.
Per video the manifest records what the dataset index needs without opening the video (frame count, fps, frame
size, depth frame count, or the DataError the video raised) and the byte size of its RGB and depth files, so that a
re-rendered dataset is refused too.

`FeatureDataset` is `AnticipationDataset` with the video probe and depth store answered from the manifest and
`__getitem__` reading tokens instead of frames: same segments, same windows, same drops, same padding, same
missing-modality flags and `data.missing_rate` draws, same labels. A sample has ``feats_<m>`` (T, F_m) float32 for
each used modality (zeros when the modality is absent) in place of ``rgb`` / ``depth``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .dataset import MODALITIES, AnticipationDataset
from .errors import DataError
from .formats import build_info
from .info import DatasetInfo
from .io import DepthClock, VideoInfo

MANIFEST = "manifest.json"
SHARDS = "shards"
FORMAT = "r3d-feature-cache"
FORMAT_VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
FIX = "re-run tools/extract_features.py with this run's config"

# Where each manifest token key comes from in a run's config (for the error message).
TOKEN_KEY_SOURCES = {
    "modalities": "model.modalities",
    "name": "model.{m}_backbone.name",
    "kind": "model.{m}_backbone.kind",
    "weights_sha256": "model.{m}_backbone weights (pretrained_file, seed, or the checkpoint)",
    "num_features": "model.{m}_backbone",
    "img_size": "data.img_size",
    "resize_scale": "data.resize_scale",
    "rgb_mean": "data.rgb_mean",
    "rgb_std": "data.rgb_std",
    "depth_scale": "data.depth_scale or dataset.yaml",
    "depth_min": "data.depth_min or dataset.yaml",
    "depth_max": "data.depth_max or dataset.yaml",
    "depth_fps": "depth_fps in dataset.yaml",
}


def _plain(value: Any) -> Any:
    """JSON-normal form (tuples -> lists, numpy scalars -> Python), so a manifest value and a config value compare."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def token_spec(cfg: Mapping, info: DatasetInfo, modalities: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Flat {manifest key: value} of what determines the cached tokens, except the weights (those need the model).

    `modalities` defaults to `model.modalities`; RGB normalisation keys are included only with rgb, depth keys only
    with depth (so an RGB-only run can use an RGB-D cache).
    """
    data, model = cfg["data"], cfg["model"]
    mods = list(modalities if modalities is not None else model["modalities"])
    spec: Dict[str, Any] = {"modalities": mods}
    for m in mods:
        section = model[f"{m}_backbone"]
        spec[f"backbone.{m}.name"] = section["name"]
        spec[f"backbone.{m}.kind"] = section["kind"]  # only per-frame kinds are cached (r3d.engine.extract)
    spec["transform.img_size"] = data["img_size"]
    spec["transform.resize_scale"] = data["resize_scale"]
    if "rgb" in mods:
        spec["transform.rgb_mean"] = data["rgb_mean"]
        spec["transform.rgb_std"] = data["rgb_std"]
    if "depth" in mods:
        for key in ("depth_scale", "depth_min", "depth_max", "depth_fps"):
            spec[f"transform.{key}"] = getattr(info, key)
    return _plain(spec)


def config_source(key: str) -> str:
    """The config key (or file) behind a manifest token key, e.g. 'backbone.rgb.name' -> 'model.rgb_backbone.name'."""
    parts = key.split(".")
    src = TOKEN_KEY_SOURCES.get(parts[-1], key)
    return src.format(m=parts[1]) if "{m}" in src else src


def path_bytes(path: Path) -> Optional[int]:
    """Size of a file, or the total size of the files in a folder (depth PNGs); None when it does not exist."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
    return None


def source_entry(info: DatasetInfo, what: str, path: Optional[os.PathLike]) -> Dict[str, Any]:
    """{`what`_path: path relative to the ROOT when inside it, `what`_bytes: its size} for the manifest."""
    if path is None:
        return {f"{what}_path": None, f"{what}_bytes": None}
    path = Path(path)
    try:
        rel = str(path.resolve().relative_to(info.root.resolve()))
    except ValueError:
        rel = str(path)
    return {f"{what}_path": rel, f"{what}_bytes": path_bytes(path)}


class CachedDepth:
    """Stands in for a `DepthStore` in the dataset index: the depth frame count recorded at extraction. Non-finite
    depth values were read as 0 when the tokens were made; they are not counted again here."""

    kind = "cache"

    def __init__(self, path: Path, num_frames: int) -> None:
        self.path, self.num_frames, self.fps = Path(path), int(num_frames), None

    def count_nonfinite(self, indices: np.ndarray) -> Tuple[int, int]:
        return 0, 0


class FeatureCache:
    """A cache folder: its manifest, and token reads by (video, RGB frame indices).

    Raises DataError naming the folder when it is missing, has no manifest, or is not an r3d feature cache.
    """

    def __init__(self, folder: os.PathLike) -> None:
        self.folder = Path(folder)
        self.manifest_path = self.folder / MANIFEST
        if not self.manifest_path.is_file():
            raise DataError(f"{self.manifest_path}: not found; data.features must be a folder written by "
                            f"tools/extract_features.py (run it with --out {self.folder})")
        try:
            self.manifest: Dict[str, Any] = json.loads(self.manifest_path.read_text())
        except ValueError as e:
            raise DataError(f"{self.manifest_path}: not valid JSON ({e}); {FIX} --out {self.folder}") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{self.manifest_path}: not an r3d feature cache of format version {FORMAT_VERSION} "
                            f"(format {self.manifest.get('format')!r}, version "
                            f"{self.manifest.get('format_version')!r}); {FIX} --out {self.folder}")
        self.tokens: Dict[str, Any] = self.manifest["tokens"]
        self.videos: Dict[str, Dict[str, Any]] = self.manifest["videos"]
        self._shards: Dict[str, Dict[str, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.folder)!r}, videos={len(self.videos)})"

    # -- checks --------------------------------------------------------------------------------------------------
    def check_tokens(self, wanted: Mapping[str, Any]) -> None:
        """Refuse a cache whose tokens were made differently: DataError naming the first manifest key that differs.

        `wanted` is a `token_spec` (plus weight keys, when checked against a model); its modalities must be a subset
        of the cached ones, every other key must be equal.
        """
        for key, value in _plain(dict(wanted)).items():
            have = self.tokens.get(key, "<absent>")
            if key == "modalities":
                missing = [m for m in value if m not in have]
                if missing:
                    raise DataError(f"{self.manifest_path}: manifest key 'modalities' is {have}, but "
                                    f"model.modalities needs {missing} too; {FIX} (its model.modalities) into a new "
                                    f"--out folder")
            elif have != value:
                if key.endswith("sha256"):  # a prefix is enough to tell hashes apart
                    have, value = f"{str(have)[:12]}…", f"{str(value)[:12]}…"
                raise DataError(f"{self.manifest_path}: manifest key '{key}' is {have!r} but this run has {value!r} "
                                f"({config_source(key)}): the tokens were made by another backbone, weights or "
                                f"transform; {FIX} into a new --out folder")

    def video(self, video_id: str, where: str = "") -> Dict[str, Any]:
        """The manifest entry of a video; DataError naming it when the cache does not have it."""
        entry = self.videos.get(video_id)
        if entry is None:
            at = f" (needed by {where})" if where else ""
            raise DataError(f"{self.manifest_path}: video '{video_id}' is not in the feature cache{at}; {FIX} "
                            f"and the split that uses it (--splits), --out {self.folder}")
        return entry

    def check_source(self, video_id: str, info: DatasetInfo) -> None:
        """Refuse a video whose RGB or depth data changed size since extraction (a re-rendered or replaced dataset).
        Sources absent now are not checked (the cache may be used without the raw data)."""
        entry = self.video(video_id)
        for what in ("rgb", "depth"):
            rel, recorded = entry.get(f"{what}_path"), entry.get(f"{what}_bytes")
            if rel is None or recorded is None:
                continue
            path = info.root / rel
            now = path_bytes(path)
            if now is not None and now != recorded:
                raise DataError(f"{path}: {now} bytes, but the feature cache {self.folder} was extracted from "
                                f"{recorded} bytes (manifest key 'videos.{video_id}.{what}_bytes'): the data changed "
                                f"after extraction; {FIX} into a new --out folder")

    # -- reads -----------------------------------------------------------------------------------------------------
    def shard_path(self, video_id: str) -> Path:
        return self.folder / self.video(video_id)["file"]

    def shard(self, video_id: str) -> Dict[str, np.ndarray]:
        """{tensor name: read-only np.memmap} of a video's shard, mapped once per process (`read_safetensors_mmap`)."""
        if video_id not in self._shards:
            path = self.shard_path(video_id)
            if not path.is_file():
                raise DataError(f"{path}: shard of video '{video_id}' is missing although {self.manifest_path} lists "
                                f"it; {FIX} --out {self.folder} (finished videos are kept)")
            self._shards[video_id] = read_safetensors_mmap(path)
        return self._shards[video_id]

    def frames(self, video_id: str, modality: str) -> np.ndarray:
        """(K,) sorted frame indices (of the modality's own stream) that have `modality` tokens for `video_id`."""
        arrays = self.shard(video_id)
        if f"{modality}_frames" not in arrays:
            raise DataError(f"{self.shard_path(video_id)}: no {modality} tokens for video '{video_id}'; {FIX} --out "
                            f"{self.folder}")
        return arrays[f"{modality}_frames"]

    def read(self, video_id: str, modality: str, frame_idx: np.ndarray) -> torch.Tensor:
        """`modality` tokens at frames `frame_idx` (T,) of that modality's stream -> (T, F) float32 (only those rows
        are read from the memory-mapped shard)."""
        rows = self.shard(video_id)[modality][np.searchsorted(self.frames(video_id, modality), frame_idx)]
        if rows.dtype == np.uint16:  # bfloat16 stored as raw 16-bit words (numpy has no bfloat16)
            return torch.from_numpy(rows.view(np.int16)).view(torch.bfloat16).float()
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_shards"] = {}  # memory maps are re-opened by each DataLoader worker, never pickled as copies
        return state


# safetensors dtype code -> numpy dtype (little-endian), https://huggingface.co/docs/safetensors (format section)
_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def read_safetensors_mmap(path: Path) -> Dict[str, np.ndarray]:
    """Memory-map every tensor of a safetensors file as a read-only numpy array (bfloat16 as uint16 words).

    Format (huggingface.co/docs/safetensors): 8 bytes little-endian u64 N, then an N-byte JSON header
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``; offsets are relative to the
    byte buffer that follows the header. A truncated or foreign file is a DataError naming it.
    """
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        size = path.stat().st_size
        out: Dict[str, np.ndarray] = {}
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            begin, end = spec["data_offsets"]
            shape = tuple(spec["shape"])
            if 8 + n + end > size:
                raise ValueError(f"tensor '{name}' ends at byte {8 + n + end} of {size}")
            if end == begin:
                out[name] = np.zeros(shape, dtype=_ST_DTYPES[spec["dtype"]])
            else:
                out[name] = np.memmap(path, dtype=_ST_DTYPES[spec["dtype"]], mode="r", offset=8 + n + begin,
                                      shape=shape)
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a readable safetensors shard ({e}); {FIX} --out {path.parent.parent} (delete "
                        f"this file first)") from None


def check_trainable(cfg: Mapping) -> None:
    """Training from cached tokens needs frozen backbones and no frame augmentation (the cache holds one centre-crop,
    un-flipped token per frame); otherwise a DataError names the key."""
    data = cfg["data"]
    for m in cfg["model"]["modalities"]:
        if not cfg["model"][f"{m}_backbone"]["freeze"]:
            raise DataError(f"config key 'model.{m}_backbone.freeze' is false, but data.features trains from cached "
                            f"{m} tokens that a trainable backbone would change; set model.{m}_backbone.freeze=true, "
                            f"or unset data.features to train end to end")
    if float(data["hflip"]) > 0:
        raise DataError(f"config key 'data.hflip' is {data['hflip']}, but the feature cache holds un-flipped tokens; "
                        f"set data.hflip=0 to train from data.features, or unset data.features")
    if float(data["resize_scale"]) > 1.0:
        raise DataError(f"config key 'data.resize_scale' is {data['resize_scale']}: training would take random crops, "
                        f"but the feature cache holds centre-crop tokens; set data.resize_scale=1.0 to train from "
                        f"data.features, or unset data.features")


class FeatureDataset(AnticipationDataset):
    """`AnticipationDataset` over cached tokens (`data.features`): same samples, ``feats_<m>`` (T, F_m) in place of
    frames. Args as `AnticipationDataset`.

    Raises DataError (naming the manifest key, video or frame, and the fix) for a cache made by another backbone,
    weights or transform, a video or frame the cache lacks, changed source files, or — for training — a trainable
    backbone or frame augmentation.
    """

    def __init__(self, cfg: Mapping, split: str, train: bool, info: Optional[DatasetInfo] = None) -> None:
        data = cfg["data"]
        if data["protocol"] != "next_action":
            raise DataError(f"config key 'data.protocol' is '{data['protocol']}', but data.features serves "
                            f"next_action windows only; unset data.features or set data.protocol=next_action")
        self.cache = FeatureCache(data["features"])
        info = info if info is not None else build_info(cfg)
        if train:
            check_trainable(cfg)
        self.cache.check_tokens(token_spec(cfg, info))
        for seg in info.segments(split, require_labels=train):
            self.cache.video(seg.video_id, where=f"segment '{seg.narration_id}' at {seg.where}")
        for video_id in sorted({seg.video_id for seg in info.segments(split)}):
            self.cache.check_source(video_id, info)
        self.feature_dims = {m: int(self.cache.tokens[f"backbone.{m}.num_features"])
                             for m in cfg["model"]["modalities"]}
        super().__init__(cfg, split, train, info)
        self._check_frames()

    # -- index from the manifest -----------------------------------------------------------------------------------
    def probe(self, video_id: str) -> VideoInfo:
        """The video's clock as recorded at extraction (its DataError too)."""
        entry = self.cache.video(video_id)
        if entry.get("error"):
            raise DataError(entry["error"])
        clock = DepthClock if entry.get("stream") == "depth" else VideoInfo
        return clock(int(entry["num_frames"]), float(entry["fps"]), int(entry["height"]), int(entry["width"]))

    def depth_store(self, video_id: str, clock: VideoInfo) -> Optional[CachedDepth]:
        """A `CachedDepth` with the depth frame count recorded at extraction (None: the video had no depth)."""
        entry = self.cache.video(video_id)
        if entry.get("depth_error"):
            raise DataError(entry["depth_error"])
        if video_id not in self.depth_stores:
            n = entry.get("depth_frames")
            self.depth_stores[video_id] = None if n is None else CachedDepth(self.cache.shard_path(video_id), n)
            if n is None:
                self.stats["missing_depth_videos"] += 1
        return self.depth_stores[video_id]

    def _check_frames(self) -> None:
        """Every frame a sample uses must have cached tokens; else a DataError naming the video and the frame."""
        d = self._data_cfg
        for item in self.items:
            vid = item.segment.video_id
            for m, idx, present in (("rgb", item.frame_idx, item.present_rgb),
                                    ("depth", item.depth_idx, item.present_depth)):
                if not (present and self.use[m]):
                    continue
                have = np.isin(idx, self.cache.frames(vid, m))
                if not have.all():
                    raise DataError(
                        f"{self.cache.shard_path(vid)}: {m} frame {int(idx[~have][0])} of video '{vid}' (segment "
                        f"'{item.segment.narration_id}') has no cached tokens; the cache was extracted for other "
                        f"windows (this run: data.tau_a={d['tau_a']}, data.tau_o={d['tau_o']}, data.num_frames="
                        f"{d['num_frames']}, data.drop_style={d['drop_style']}) or splits; {FIX} (or with "
                        f"--all-frames) --out {self.cache.folder}")

    # -- samples ---------------------------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Dict[str, Any]:
        """The sample dict of docs/architecture.md with ``feats_<m>`` (T, F_m) float32 in place of rgb / depth."""
        item = self.items[index]
        present = {"rgb": item.present_rgb, "depth": item.present_depth}
        out: Dict[str, Any] = {}
        for m in MODALITIES:
            if not self.use[m]:
                continue
            if present[m]:
                idx = item.frame_idx if m == "rgb" else item.depth_idx
                out[f"feats_{m}"] = self.cache.read(item.segment.video_id, m, idx)
            else:
                out[f"feats_{m}"] = torch.zeros(self.num_frames, self.feature_dims[m])
        out.update(self.sample_fields(index))
        return out



__all__: List[str] = ["FeatureCache", "FeatureDataset", "check_trainable", "token_spec",
                      "config_source", "path_bytes", "source_entry", "MANIFEST", "SHARDS", "FORMAT", "FORMAT_VERSION",
                      "DTYPES"]
