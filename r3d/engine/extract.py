"""Feature extraction: run the backbones once over every frame the windows need and store the tokens; check a model
against a cache. The cache format and `FeatureDataset` are in `r3d.data.features`.

`extract_features` builds the model exactly as training does (`accelerate.utils.set_seed(seed)`, then
`build_model`; or loads `--checkpoint` weights), decodes frames through `AnticipationDataset.__getitem__` itself with
the evaluation transform (centre crop, no flip: the same code path, so the same pixels), runs each per-frame backbone
in eval mode without gradients, and writes one safetensors shard per video (`r3d.data.features`). Videos whose shard
already holds every needed frame are skipped, so an interrupted extraction resumes where it stopped; a shard is
written to a temporary name and renamed, and the manifest is rewritten atomically after each video, so a kill never
leaves a half-written file behind.

Only per-frame backbones can be cached (`frame2d`, `linear`): the token of an `inflated3d` backbone mixes
neighbouring frames, so it depends on the window, not on the frame.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import Config, import_custom_modules_from
from ..data.errors import DataError
from ..data.features import (DTYPES, FORMAT, FORMAT_VERSION, MANIFEST, SHARDS, FeatureCache, config_source,
                             read_safetensors_mmap, source_entry, token_spec)
from ..data.formats import build_info
from .builder import build_model, loader_workers, prepare_root
from .checkpoint import load_model_weights, write_text_atomic

_logger = logging.getLogger("r3d.extract")
PathLike = Union[str, os.PathLike]
Tensor = torch.Tensor


def state_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict (sorted names, dtypes, shapes and raw bytes): equal iff the weights are."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_tokens(model: torch.nn.Module) -> Dict[str, Any]:
    """The manifest token keys that only the built model knows: backbone weight hash and token width, per modality."""
    out: Dict[str, Any] = {}
    for m in model.modalities:
        out[f"backbone.{m}.weights_sha256"] = state_sha256(model.backbones[m])
        out[f"backbone.{m}.num_features"] = int(model.backbones[m].num_features)
    return out


def check_model_matches_cache(model: torch.nn.Module, dataset: Any) -> None:
    """With `data.features`, the model's backbones must be the ones that made the cached tokens (same weights):
    else a DataError naming the manifest key. A dataset without a feature cache passes."""
    cache: Optional[FeatureCache] = getattr(dataset, "cache", None)
    if cache is not None:
        cache.check_tokens(model_tokens(model))


def check_per_frame(model: torch.nn.Module) -> None:
    """Refuse backbones whose token of a frame depends on other frames (DataError naming the config key)."""
    for m in model.modalities:
        if not getattr(model.backbones[m], "per_frame", False):
            raise DataError(f"config key 'model.{m}_backbone.kind': a {type(model.backbones[m]).__name__} token mixes "
                            f"neighbouring frames, so it cannot be cached per frame; use kind frame2d or linear to "
                            f"extract features, or train end to end")


def _shard_name(video_id: str) -> str:
    """A file name for a video id (path separators and other unsafe characters replaced, plus a short hash when
    anything was replaced, so two ids never share a file)."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", video_id)
    if safe != video_id:
        safe += "-" + hashlib.sha1(video_id.encode()).hexdigest()[:8]
    return f"{SHARDS}/{safe}.safetensors"


def _shard_frames(path: Path) -> Dict[str, np.ndarray]:
    """{modality: frame indices} stored in a shard ({} when it is unreadable: the video is extracted again)."""
    try:
        arrays = read_safetensors_mmap(path)
    except DataError:
        return {}
    return {k[:-len("_frames")]: np.array(v) for k, v in arrays.items() if k.endswith("_frames")}


def _write_shard(path: Path, tensors: Dict[str, Tensor], video_id: str) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"format": FORMAT,
                                                                                  "video_id": video_id})
    os.replace(tmp, path)


def _open_manifest(out: Path, fresh: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest to continue (same tokens and dtype), or `fresh`; a cache of other tokens is refused."""
    path = out / MANIFEST
    if not path.is_file():
        if out.is_dir() and any(p.name != SHARDS for p in out.iterdir()):
            raise DataError(f"{out}: not empty and not a feature cache (no {MANIFEST}); choose a new or empty --out")
        return fresh
    old = FeatureCache(out).manifest
    for key in sorted(set(old["tokens"]) | set(fresh["tokens"])):
        have, want = old["tokens"].get(key, "<absent>"), fresh["tokens"].get(key, "<absent>")
        if have != want:
            raise DataError(f"{path}: manifest key '{key}' is {have!r} but this extraction has {want!r} "
                            f"({config_source(key)}); that cache holds other tokens: extract into a new --out folder "
                            f"(or delete {out})")
    if old["dtype"] != fresh["dtype"]:
        raise DataError(f"{path}: manifest key 'dtype' is '{old['dtype']}' but this extraction asks for "
                        f"'{fresh['dtype']}'; use --dtype {old['dtype']} or a new --out folder")
    old["extractions"] = old.get("extractions", [])
    return old


def _video_record(ds: Any, info: Any, video_id: str, use_depth: bool) -> Tuple[Dict[str, Any], Optional[Any]]:
    """(manifest entry without tokens, depth store or None) of a video, from the extraction dataset's own probes."""
    entry: Dict[str, Any] = {"file": None, "error": None, "depth_error": None, "depth_frames": None}
    try:
        video = ds.probe(video_id)  # cached by the dataset: the same probe (and the same errors) as training
    except DataError as e:
        entry["error"] = str(e)
        return entry, None
    entry.update(num_frames=int(video.num_frames), fps=float(video.fps), height=int(video.height),
                 width=int(video.width), stream=getattr(video, "stream", "rgb"),  # the stream that times the video
                 **source_entry(info, "rgb", info.video_path(video_id)))
    store = None
    if use_depth:
        try:
            store = ds.depth_store(video_id, video)
        except DataError as e:
            entry["depth_error"] = str(e)
        if store is not None:
            entry["depth_frames"] = int(store.num_frames)
    entry.update(source_entry(info, "depth", store.path if store is not None else None))
    return entry, store


def extract_features(cfg: Config, out: PathLike, checkpoint: Optional[PathLike] = None,
                     splits: Optional[Sequence[str]] = None, all_frames: bool = False, dtype: str = "float32",
                     chunk: int = 64, device: Optional[str] = None, progress: bool = True) -> Dict[str, Any]:
    """Write (or complete) the feature cache of `cfg` in `out` (layout and manifest: `r3d.data.features`).

    Args:
        cfg: the run config (model, data, seed). `data.missing_rate` is ignored: tokens are stored for every frame
            that exists; the training dataset drops modalities itself.
        out: cache folder (created; resumed when it already holds a cache of the same tokens).
        checkpoint: run folder or model.safetensors whose backbone weights to use (default: the weights training
            would start from: `pretrained_file`, or the seeded random init).
        splits: annotation splits whose windows are extracted (default: data.train_split and data.val_split).
        all_frames: store every frame of each video used by those splits, not only the sampled ones.
        dtype: float32, float16 or bfloat16 (tokens are read back as float32).
        chunk: frames decoded and encoded per backbone call.
        device: torch device (default: cuda when available, else cpu).
        progress: show a tqdm bar (frames).
    Returns:
        summary: folder, videos, extracted, skipped (already done), failed (videos with a data error), frames
        (tokens computed per modality), seconds.
    """
    from accelerate.utils import set_seed

    from ..data.dataset import AnticipationDataset

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got '{dtype}'")
    began = time.perf_counter()
    import_custom_modules_from(cfg)
    out = Path(out)
    cfg_x = copy.deepcopy(cfg)
    for m in cfg_x.data.missing_rate:
        cfg_x.data.missing_rate[m] = 0.0
    cfg_x.data.features = None
    prepare_root(cfg_x)  # data.generate_if_missing: render the synthetic benchmark first, as training would
    info = build_info(cfg_x)
    splits = list(dict.fromkeys(splits or [cfg.data.train_split, cfg.data.val_split]))
    set_seed(int(cfg.seed))  # as tools/train.py does before building the model: the same random init
    datasets = [AnticipationDataset(cfg_x, s, False, info) for s in splits]
    model = build_model(cfg_x, info)
    if checkpoint is not None:
        load_model_weights(model, checkpoint)
    check_per_frame(model)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).eval()
    modalities = list(model.modalities)

    sources = {m: (f"checkpoint {checkpoint}" if checkpoint else
                   f"pretrained_file {cfg.model[f'{m}_backbone'].pretrained_file}"
                   if cfg.model[f"{m}_backbone"].pretrained_file else f"random init, seed {cfg.seed}")
               for m in modalities}
    tokens = {**token_spec(cfg_x, info, modalities), **model_tokens(model)}
    fresh = {"format": FORMAT, "format_version": FORMAT_VERSION, "r3d_version": __version__, "dtype": dtype,
             "tokens": tokens, "config_sha256": hashlib.sha256(json.dumps(tokens, sort_keys=True).encode()).hexdigest(),
             "weights_source": sources, "dataset": {"root": str(info.root), "name": info.name,
                                                     "format": cfg.data.format},
             "extractions": [], "videos": {}}
    manifest = _open_manifest(out, fresh)
    manifest["r3d_version"] = __version__
    manifest["extractions"].append({"splits": splits, "all_frames": bool(all_frames),
                                    "sampling": {k: cfg.data[k] for k in ("tau_a", "tau_o", "num_frames",
                                                                          "drop_style")},
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    out.mkdir(parents=True, exist_ok=True)
    for leftover in (out / SHARDS).glob(".*.tmp*"):  # shards of a killed run that were never renamed into place
        leftover.unlink()

    # Frames each video needs, per modality (RGB frame indices for rgb, depth frame indices for depth).
    needed: Dict[str, Dict[str, set]] = {}
    template: Dict[str, Any] = {}
    owner: Dict[str, Any] = {}
    for ds in datasets:
        for item in ds.items:
            vid = item.segment.video_id
            need = needed.setdefault(vid, {m: set() for m in modalities})
            template.setdefault(vid, item)
            owner.setdefault(vid, ds)
            if "rgb" in need and item.present_rgb:
                need["rgb"].update(item.frame_idx.tolist())
            if "depth" in need and item.present_depth:
                need["depth"].update(item.depth_idx.tolist())
    all_videos = list(dict.fromkeys(seg.video_id for ds in datasets for seg in info.segments(ds.split)))
    stores: Dict[str, Any] = {}
    summary = {"folder": str(out), "videos": len(all_videos), "extracted": 0, "skipped": 0, "failed": 0,
               "frames": {m: 0 for m in modalities}}
    todo: List[Tuple[str, Dict[str, np.ndarray]]] = []
    for vid in all_videos:
        ds = owner.get(vid, datasets[0])
        entry, store = _video_record(ds, info, vid, "depth" in modalities)
        stores[vid] = store
        if entry["error"] or entry["depth_error"]:
            summary["failed"] += 1
        old = manifest["videos"].get(vid)
        need = needed.get(vid, {})
        if not any(need.values()):  # no usable window (bad input, every window dropped, no stream): nothing to store
            manifest["videos"][vid] = {**entry, "file": old.get("file") if old else None}
            continue
        if all_frames:  # every frame of the stream (none for a stream the video does not have)
            need = {m: set(range((entry["num_frames"] if m == "rgb" else entry["depth_frames"]) or 0)) for m in need}
        have: Dict[str, np.ndarray] = {}
        if old and old.get("file") and (out / old["file"]).is_file() \
                and all(old.get(k) == entry.get(k) for k in ("rgb_bytes", "depth_bytes", "depth_frames")):
            have = _shard_frames(out / old["file"])
        if all(set(need[m]) <= set(have.get(m, np.zeros(0, np.int64)).tolist()) for m in need):
            summary["skipped"] += 1
            manifest["videos"][vid] = old
            continue
        frames = {m: np.array(sorted(set(need[m]) | set(have.get(m, np.zeros(0)).tolist())), dtype=np.int64)
                  for m in need}
        todo.append((vid, frames))
        manifest["videos"][vid] = {**entry, "file": None}  # until its shard is written
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))

    # One DataLoader over chunks of every pending video, through the dataset's own __getitem__ (eval transform).
    view = copy.copy(datasets[0])
    view.depth_stores = {v: s for v, s in stores.items() if s is not None}
    view.items, chunk_video = [], []
    for vid, frames in todo:
        n = max(len(f) for f in frames.values())
        for lo in range(0, max(n, 1), chunk):
            part = {m: frames.get(m, np.zeros(0, np.int64))[lo:lo + chunk] for m in ("rgb", "depth")}
            view.items.append(dataclasses.replace(
                template[vid], frame_idx=part["rgb"], depth_idx=part["depth"] if len(part["depth"]) else None,
                present_rgb=bool(len(part["rgb"])), present_depth=bool(len(part["depth"]))))
            chunk_video.append(vid)
    loader = torch.utils.data.DataLoader(view, batch_size=None, shuffle=False, num_workers=loader_workers(cfg))
    dt = DTYPES[dtype]
    total = sum(len(f) for _, frames in todo for f in frames.values())
    bar = tqdm(total=total, desc="extract features", unit="frame", disable=not progress, dynamic_ncols=True)
    parts: Dict[str, List[Tensor]] = {m: [] for m in modalities}
    frames_of = dict(todo)
    with torch.no_grad():
        for k, sample in enumerate(loader):
            vid = chunk_video[k]
            for m in modalities:
                if sample["present"][m]:
                    x = sample[m].to(device)[None]  # (1, K, C, S, S)
                    parts[m].append(model.backbones[m](x)[0].float().cpu())
                    bar.update(x.shape[1])
            if k + 1 == len(chunk_video) or chunk_video[k + 1] != vid:  # the video's last chunk: write its shard
                tensors: Dict[str, Tensor] = {}
                for m in modalities:
                    f = frames_of[vid].get(m, np.zeros(0, np.int64))
                    if len(f):
                        tensors[f"{m}_frames"] = torch.from_numpy(f)
                        tensors[m] = torch.cat(parts[m]).to(dt)
                        summary["frames"][m] += len(f)
                    parts[m] = []
                entry = manifest["videos"][vid]
                entry["file"] = _shard_name(vid)
                entry.update({f"{m}_tokens": int(len(frames_of[vid].get(m, ()))) for m in modalities})
                _write_shard(out / entry["file"], tensors, vid)
                write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
                summary["extracted"] += 1
    bar.close()
    summary["seconds"] = round(time.perf_counter() - began, 2)
    _logger.info("feature cache %s: %s", out, summary)
    return summary
