"""Bad input, one test per kind: each is a one-line error that names the file (and CSV line/column, or the key) and
says what would fix it — or, where the config allows it (`data.on_bad_sample=skip`) or the data format defines it
(no depth = the modality is missing; NaN depth = no reading), a counted and logged outcome.

Every test damages a private copy of the tiny synthetic ROOT (conftest.py) in one way. Where training would only
find the problem while decoding a sample, the test also checks that `tools/validate_data.py` finds it up front.
Kinds covered elsewhere: a training state of another model/config on --resume (test_resume.py), fp16 without a GPU
(test_distributed.py).
"""
import csv
import logging
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, run_tool
from r3d.config import ConfigError, load_config
from r3d.data.dataset import build_datasets
from r3d.data.errors import DataError
from r3d.data.io import probe_video, read_png16, read_rgb_frames
from r3d.data.validate import validate_root

VIDEO = "v0000"  # first training video: rows 2 and 3 of train.csv (segments v0000_0, v0000_1)


def cfg_for(root, *overrides):
    return load_config(None, [f"data.root={root}", "data.img_size=32", "data.num_workers=0", *overrides])


def build(root, *overrides):
    """(train dataset, val dataset) of `root`."""
    train, val, _ = build_datasets(cfg_for(root, *overrides))
    return train, val


def one_line(e) -> str:
    msg = str(e.value if hasattr(e, "value") else e)
    assert "\n" not in msg, msg
    return msg


def errors_of(root, check, *overrides):
    report = validate_root(root, cfg_for(root, *overrides))
    return [f.message for f in report.checks[check].findings if f.level == "error"]


def edit_csv(path: Path, row: int, column: str, value: str) -> None:
    """Set `column` of data row `row` (1-based, the header is line 1) of an annotation CSV."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[row][rows[0].index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def depth_frames(root) -> list:
    return sorted((root / "depth" / VIDEO).glob("*.png"))


def reencode(path: Path, pts=None, faststart=False) -> None:
    """Re-write an RGB video with PyAV (mpeg4), optionally with explicit frame timestamps or the index up front."""
    import av

    info = probe_video(path)
    frames = read_rgb_frames(path, range(info.num_frames))
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("mpeg4", rate=int(info.fps))
        s.width, s.height, s.pix_fmt = info.width, info.height, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i if pts is None else pts[i]
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


# -- videos -------------------------------------------------------------------------------------------------------------
def test_zero_byte_video(tiny_copy):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    video.write_bytes(b"")
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(video))}: video is empty \(0 bytes\); re-export or re-copy it", one_line(e))
    assert "train.csv:2" in str(e.value) and "data.on_bad_sample=skip" in str(e.value)


def test_corrupt_video(tiny_copy):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    video.write_bytes(b"not a video at all " * 50)
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(video))}: cannot be decoded .*; re-encode it", one_line(e))


def test_truncated_video(tiny_copy):
    """An mp4 cut short (its index is at the end, as cv2 writes it) cannot be opened at all."""
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(video))}: cannot be decoded .*; re-encode it", one_line(e))


def test_truncated_video_with_index_up_front_is_found_by_the_validator(tiny_copy):
    """With the index at the start (faststart) a cut file still opens; decord indexes only the frames it has. The
    validator names the truncation, and training stops on the same one-line message (its index-time probe runs the
    validator's container check)."""
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    reencode(video, faststart=True)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 7 // 10])
    [msg] = errors_of(tiny_copy, "frame timing")
    assert re.fullmatch(rf"{re.escape(str(video))}: the container header declares 93 frames but decord finds \d+; "
                        r"the file is truncated or mis-muxed: copy it again or re-encode it", msg)
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert one_line(e).startswith(msg + " [segment 'v0000_0' at ")


def test_missing_video(tiny_copy):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    video.unlink()
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(video))}: video not found; check data.root and the video_id", one_line(e))


def test_inconsistent_frame_count_and_fps(tiny_copy):
    """A variable-frame-rate file: decord's frame count and average fps put frame k at k/fps, its timestamps do not.
    The validator finds it (training does too, with the same message: tests/test_bad_input_more.py)."""
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    n = probe_video(video).num_frames
    reencode(video, pts=[k if k < n // 2 else n // 2 + 3 * (k - n // 2) for k in range(n)])  # 8 fps, then 8/3 fps
    [msg] = errors_of(tiny_copy, "frame timing")
    assert msg.startswith(f"{video}: decord reports {n} frames at ")
    assert "variable frame rate or a wrong frame count" in msg and "ffmpeg -i in -vsync cfr" in msg


def test_bad_video_is_skipped_counted_and_logged_when_allowed(tiny_copy, caplog):
    video = tiny_copy / "videos" / f"{VIDEO}.mp4"
    video.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="r3d.data.dataset"):
        train, _ = build(tiny_copy, "data.on_bad_sample=skip")
    assert train.stats["skipped_bad"] == 2 and len(train) == train.stats["segments"] - 2
    skipped = [r.getMessage() for r in caplog.records if "skipping segment" in r.getMessage()]
    assert len(skipped) == 2 and all(str(video) in m and "0 bytes" in m for m in skipped)


# -- depth --------------------------------------------------------------------------------------------------------------
def test_missing_depth_folder_marks_depth_missing(tiny_copy, caplog):
    """No depth for a video is a missing modality (docs/data.md): zeros + present False, counted, logged; the
    validator warns about it."""
    shutil.rmtree(tiny_copy / "depth" / VIDEO)
    with caplog.at_level(logging.INFO, logger="r3d.data.dataset"):
        train, _ = build(tiny_copy)
    assert train.stats["missing_depth_videos"] == 1 and train.stats["missing_depth_samples"] == 2
    assert any(f"no depth for video '{VIDEO}'" in r.getMessage() for r in caplog.records)
    sample = train[0]
    assert not bool(sample["present"]["depth"]) and float(sample["depth"].abs().sum()) == 0.0
    [warning] = validate_root(tiny_copy, cfg_for(tiny_copy)).warnings
    assert warning.message.startswith(f"{tiny_copy / 'depth' / VIDEO}: no depth for video '{VIDEO}'")


def test_missing_depth_frame(tiny_copy):
    gap = depth_frames(tiny_copy)[5]
    gap.unlink()
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(gap))}: depth frame missing \(the folder has 92 frames numbered up to 92\); "
                     r"frames must be numbered contiguously from 000000.png", one_line(e))


def test_extra_depth_frames(tiny_copy):
    frames = depth_frames(tiny_copy)
    shutil.copy(frames[-1], frames[-1].with_name(f"{len(frames):06d}.png"))
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(tiny_copy / 'depth' / VIDEO))}: 94 depth frames but .*{VIDEO}.mp4 has 93 RGB "
                     r"frames; depth frame i must belong to RGB frame i: re-export one of them, or set depth_fps",
                     one_line(e))


def test_rgb_and_depth_of_different_lengths(tiny_copy):
    """Depth stored as one array with fewer frames than the RGB video."""
    depth = np.stack([read_png16(p) for p in depth_frames(tiny_copy)[:80]])
    shutil.rmtree(tiny_copy / "depth" / VIDEO)
    np.savez(tiny_copy / "depth" / f"{VIDEO}.npz", depth=depth)
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{VIDEO}.npz: 80 depth frames but .*{VIDEO}.mp4 has 93 RGB frames", one_line(e))
    assert errors_of(tiny_copy, "depth frames")


def test_8bit_depth_png(tiny_copy):
    """Found when a sample is decoded (naming the frame and the sample), and up front by the validator."""
    for p in depth_frames(tiny_copy):
        cv2.imwrite(str(p), (read_png16(p) // 256).astype(np.uint8))
    train, _ = build(tiny_copy)  # indexing reads no pixels
    with pytest.raises(DataError) as e:
        train[0]
    msg = one_line(e)
    assert re.search(rf"{re.escape(str(tiny_copy / 'depth' / VIDEO))}/\d{{6}}\.png: uint8 \(8-bit\) PNG where a 16-bit "
                     r"depth PNG is expected .*save uint16 depth", msg)
    assert f"[sample 0: segment '{VIDEO}_0' at {tiny_copy / 'annotations' / 'train.csv'}:2]" in msg
    errors = errors_of(tiny_copy, "depth values")
    assert len(errors) == len(depth_frames(tiny_copy))
    assert "8-bit grey PNG where a 16-bit single-channel depth PNG is expected" in errors[0]


def test_colour_depth_png(tiny_copy):
    for p in depth_frames(tiny_copy):
        d = read_png16(p)
        cv2.imwrite(str(p), np.stack([d, d, d], -1))
    train, _ = build(tiny_copy)
    with pytest.raises(DataError, match=r"\d{6}\.png: depth PNG has 3 channels, expected 1; save a single-channel"):
        train[0]
    assert "16-bit RGB PNG" in errors_of(tiny_copy, "depth values")[0]


def test_nan_and_inf_depth_in_npz_read_as_holes_counted_and_logged(tiny_copy, caplog):
    """Float depth (metres) with NaN/inf: read as 0 = no reading (what sensors mean by them), counted per store,
    logged once naming the file; the validator reports the count."""
    frames = depth_frames(tiny_copy)
    metres = np.stack([read_png16(p) for p in frames]).astype(np.float32) * 0.001
    metres[:, 3, 4], metres[:, 5, 6] = np.nan, np.inf
    shutil.rmtree(tiny_copy / "depth" / VIDEO)
    npz = tiny_copy / "depth" / f"{VIDEO}.npz"
    np.savez(npz, depth=metres)
    train, _ = build(tiny_copy)
    with caplog.at_level(logging.WARNING, logger="r3d.data.io"):
        sample = train[0]
    depth = sample["depth"]
    assert torch.isfinite(depth).all() and float(depth[:, 0, 3, 4].abs().max()) == 0.0
    assert float(depth[:, 0, 5, 6].abs().max()) == 0.0
    store = train.depth_stores[VIDEO]
    assert store.nonfinite == 2 * len(np.unique(train.items[0].depth_idx))
    assert any(str(npz) in r.getMessage() and "non-finite" in r.getMessage() for r in caplog.records)
    [warning] = [f for f in validate_root(tiny_copy, cfg_for(tiny_copy)).warnings if f.check == "depth values"]
    assert warning.message.startswith(f"{npz}: {2 * len(frames)} non-finite depth values (NaN/inf) are read as 0")


def test_npz_without_depth_key(tiny_copy):
    shutil.rmtree(tiny_copy / "depth" / VIDEO)
    npz = tiny_copy / "depth" / f"{VIDEO}.npz"
    np.savez(npz, np.zeros((93, 32, 32), np.uint16))
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(npz))}: no key 'depth' \(keys: \['arr_0'\]\); save the depth array as "
                     r"np.savez\(path, depth=array\)", one_line(e))


# -- annotations -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("column,value,expected", [
    ("start_timestamp", "-1.5", r"train.csv:3: column 'start_timestamp': start -1.5 s is negative; times are seconds "
                                r"from the video start"),
    ("stop_timestamp", "00:00:01.00", r"train.csv:3: column 'stop_timestamp': stop 00:00:01.00 is before start "
                                      r"00:00:09.63; swap or fix them"),
    ("verb_class", "99", r"train.csv:3: column 'verb_class': class id 99 is unknown \(the class list has ids 0..3\); "
                         r"fix the id or add the class to the class CSV"),
    ("noun_class", "cut", r"train.csv:3: column 'noun_class' is 'cut', not an integer; write the class id \(0..3\)"),
    ("start_timestamp", "3 min", r"train.csv:3: column 'start_timestamp': '3 min' is not a timestamp \(HH:MM:SS.ss\) "
                                 r"or a number of seconds; write HH:MM:SS.ss"),
    ("narration_id", "v0000_0", r"train.csv:3: column 'narration_id': 'v0000_0' is a duplicate of line 2; narration "
                                r"ids must be unique"),
], ids=["start_before_0", "stop_before_start", "unknown_class_id", "non_numeric_field", "bad_timestamp",
        "duplicate_narration_id"])
def test_bad_annotation_row(tiny_copy, column, value, expected):
    edit_csv(tiny_copy / "annotations" / "train.csv", 2, column, value)
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(re.escape(str(tiny_copy / "annotations")) + "/" + expected, one_line(e))
    [msg] = errors_of(tiny_copy, "annotations")
    assert re.search(expected, msg)


def test_annotation_after_the_end_of_its_video(tiny_copy):
    edit_csv(tiny_copy / "annotations" / "train.csv", 2, "start_timestamp", "00:05:00.00")
    edit_csv(tiny_copy / "annotations" / "train.csv", 2, "stop_timestamp", "00:05:02.00")
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"train.csv:3: segment '{VIDEO}_1' starts at 300.000 s, after the end of .*{VIDEO}.mp4 \(93 "
                     r"frames at 8 fps = 11.625 s\); fix start_timestamp or the video", one_line(e))
    train, _ = build(tiny_copy, "data.on_bad_sample=skip")
    assert train.stats["skipped_bad"] == 1
    assert errors_of(tiny_copy, "segments")


def test_missing_required_column(tiny_copy):
    path = tiny_copy / "annotations" / "train.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    k = rows[0].index("stop_timestamp")
    path.write_text("".join(",".join(r[:k] + r[k + 1:]) + "\n" for r in rows))
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(r"train.csv:1: missing required column\(s\) \['stop_timestamp'\] in the header", one_line(e))


def test_empty_split(tiny_copy):
    path = tiny_copy / "annotations" / "val.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(path))}: the split has no segments \(only a header\); add rows or point the "
                     r"config at another split \(data.train_split / data.val_split\)", one_line(e))


def test_class_ids_with_a_gap(tiny_copy):
    path = tiny_copy / "annotations" / "verb_classes.csv"
    edit_csv(path, 4, "id", "7")
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(path))}:5: column 'id': id 7 breaks the numbering; the 4 ids must be 0..3",
                     one_line(e))


def test_unknown_dataset_yaml_key(tiny_copy):
    path = tiny_copy / "dataset.yaml"
    path.write_text(path.read_text() + "depth_scal: 0.001\n")
    with pytest.raises(DataError) as e:
        build(tiny_copy)
    assert re.search(rf"{re.escape(str(path))}: unknown key 'depth_scal'.*depth_scale", one_line(e))


# -- config and checkpoints --------------------------------------------------------------------------------------------
def test_misspelt_config_key():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.img_sise=32"])
    assert re.search(r"unknown config key 'data.img_sise'. Did you mean 'data.img_size'\?", one_line(e))


def test_config_value_of_the_wrong_type():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.epochs=ten"])
    assert re.search(r"key 'train.epochs' expects int \(default 25\), got str 'ten'", one_line(e))


@pytest.fixture(scope="module")
def exported(tiny_root, tmp_path_factory):
    """A dim-32 model exported like tools/train.py does, with its dataset info."""
    from r3d.data.formats import build_info
    from r3d.engine.builder import build_model, model_meta
    from r3d.engine.checkpoint import export_model

    cfg = cfg_for(tiny_root, "model.dim=32", "model.head_args.depth=1")
    info = build_info(cfg)
    out = tmp_path_factory.mktemp("exported")
    export_model(build_model(cfg, info), model_meta(cfg, info), out)
    return out, cfg, info


def test_checkpoint_from_a_different_model(exported):
    from r3d.engine.builder import build_model
    from r3d.engine.checkpoint import load_model_weights

    out, cfg, info = exported
    other = build_model(cfg_for(cfg.data.root, "model.dim=48", "model.head_args.depth=1"), info)
    with pytest.raises(ValueError) as e:
        load_model_weights(other, out)
    assert re.search(rf"{re.escape(str(out / 'model.safetensors'))}: checkpoint is from a different model or config "
                     r"\(shape differs for .*\). Use the config it was trained with \(its model.json\) or retrain",
                     one_line(e))


def test_checkpoint_that_is_a_pickle_is_never_unpickled(exported, tmp_path):
    from r3d.engine.checkpoint import load_model_weights, resolve_checkpoint
    from r3d.engine.builder import build_model

    out, cfg, info = exported
    model = build_model(cfg, info)
    torch.save(model.state_dict(), tmp_path / "model.pth")
    with pytest.raises(ValueError, match=r"model.pth: r3d loads exported weights only from .safetensors files"):
        resolve_checkpoint(tmp_path / "model.pth")
    shutil.copy(out / "model.json", tmp_path / "model.json")
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "model.pth").read_bytes())  # a pickle in disguise
    with pytest.raises(ValueError) as e:
        load_model_weights(model, tmp_path)
    assert re.search(r"model.safetensors: not a readable safetensors file .*re-export it", one_line(e))


def test_work_dir_with_checkpoints_needs_resume(tmp_path):
    from r3d.engine.trainer import train

    (tmp_path / "checkpoints" / "epoch_0001").mkdir(parents=True)
    (tmp_path / "checkpoints" / "epoch_0001" / "r3d_state.json").write_text("{}")
    (tmp_path / "checkpoints" / "latest").write_text("epoch_0001\n")
    with pytest.raises(FileExistsError) as e:
        train(load_config(None, [f"work_dir={tmp_path}"]))
    assert re.search(rf"{re.escape(str(tmp_path))} already holds checkpoints: pass --resume to continue that run, or "
                     r"choose another work_dir", one_line(e))


def test_resume_followed_by_an_override(tmp_path):
    """`--resume data.root=...`: argparse hands the override to --resume; say so instead of "no such folder"."""
    from r3d.engine.trainer import train

    with pytest.raises(FileNotFoundError) as e:
        train(load_config(None, [f"work_dir={tmp_path}"]), resume="data.root=/data/mine")
    assert re.search(r"--resume data.root=/data/mine: no such state folder; .*put --resume last, or write --resume "
                     r"auto", one_line(e))


# -- the validator -----------------------------------------------------------------------------------------------------
def test_validator_reports_every_problem_in_one_table(tiny_root, tiny_copy):
    """tools/validate_data.py: exit 0 on the clean ROOT, exit 1 and one table naming every damaged file otherwise."""
    clean = run_tool([REPO / "tools/validate_data.py", tiny_root])
    assert "0 error(s), 0 warning(s)" in clean.stdout
    (tiny_copy / "videos" / "v0002.mp4").write_bytes(b"")
    edit_csv(tiny_copy / "annotations" / "val.csv", 1, "verb_class", "x")
    depth_frames(tiny_copy)[7].unlink()
    r = run_tool([REPO / "tools/validate_data.py", tiny_copy], check=False)
    assert r.returncode == 1, r.stderr
    status = dict(re.split(r"\s{2,}", line)[:2] for line in r.stdout.splitlines()[3:15])
    assert {k for k, v in status.items() if v == "ERROR"} == {"annotations", "videos", "depth store"}
    assert "v0002.mp4: video is empty (0 bytes)" in r.stdout
    assert "val.csv:2: column 'verb_class' is 'x', not an integer" in r.stdout
    assert "000007.png: depth frame missing" in r.stdout
    assert "3 error(s)" in r.stdout
