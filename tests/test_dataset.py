"""The dataset on a tiny written ROOT: the exact sample contract, RGB/depth values against what was written, joint
flips and crops, missing modalities, bad input (every error names its file/row/key), and the annotation checks."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import fixtures as fxm
from fixtures import make_root, write_csv
from r3d.config import apply_overrides, load_defaults
from r3d.data.annotations import parse_timestamp, read_classes, read_segments
from r3d.data.dataset import AnticipationDataset, build_datasets, num_classes
from r3d.data.errors import DataError
from r3d.data.formats import build_info
from r3d.data.transforms import HorizontalFlip, NormalizeDepth, ResizeCrop

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SAMPLE_KEYS = {"rgb", "depth", "present", "verb", "noun", "action", "index", "frame_idx", "narration_id", "video_id"}


def _cfg(root, *overrides):
    # τo = 1.6 s over 8 frames: a 0.2 s step, so windows are easy to compute by hand at 10 fps
    return apply_overrides(load_defaults(), [f"data.root={root}", "data.img_size=32", "data.tau_o=1.6",
                                             "data.num_frames=8", "data.num_workers=0", *overrides])


def _window(start):
    """Hand-computed next-action indices at 10 fps, τa = 1, τo = 1.6, T = 8: t_end − (7 − i)·0.2 s."""
    t_end = start - 1.0
    return [max(0, int(round((t_end - (7 - i) * 0.2) * 10))) for i in range(8)]


def _denorm(rgb):
    """(T, 3, H, W) normalised tensor -> (T, H, W, 3) values on the 0..255 scale."""
    return (rgb.permute(0, 2, 3, 1).numpy() * STD + MEAN) * 255.0


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("root"))


# -- the contract ----------------------------------------------------------------------------------------------------
def test_sample_contract(fx):
    ds = AnticipationDataset(_cfg(fx.root), "train", train=False)
    assert len(ds) == 10 and ds.stats["samples"] == 10 and ds.stats["segments"] == 10
    s = ds[3]
    assert set(s) == SAMPLE_KEYS
    assert s["rgb"].shape == (8, 3, 32, 32) and s["rgb"].dtype == torch.float32
    assert s["depth"].shape == (8, 1, 32, 32) and s["depth"].dtype == torch.float32
    assert set(s["present"]) == {"rgb", "depth"}
    for m in ("rgb", "depth"):
        assert s["present"][m].dtype == torch.bool and s["present"][m].shape == () and bool(s["present"][m])
    for k in ("verb", "noun", "action", "index"):
        assert s[k].dtype == torch.int64 and s[k].shape == ()
    assert s["frame_idx"].dtype == torch.int64 and s["frame_idx"].shape == (8,)
    row = fx.train[3]  # v1, second start
    assert (s["narration_id"], s["video_id"]) == (row[0], row[2]) == ("v1_1", "v1")
    assert (int(s["verb"]), int(s["noun"]), int(s["index"])) == (row[5], row[6], 3)
    assert float(s["depth"].min()) >= 0.0 and float(s["depth"].max()) <= 1.0

    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["rgb"].shape == (4, 8, 3, 32, 32) and batch["present"]["depth"].shape == (4,)
    assert batch["narration_id"] == [r[0] for r in fx.train[:4]]


def test_rgb_matches_decoded_frames(fx):
    import av
    import cv2

    ds = AnticipationDataset(_cfg(fx.root), "train", train=False)
    for i, row in enumerate(fx.train):
        s = ds[i]
        start = parse_timestamp(row[3])
        assert s["frame_idx"].tolist() == _window(start)
        with av.open(str(fx.root / "videos" / f"{row[2]}.mp4")) as c:  # an independent decoder
            frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])[s["frame_idx"].numpy()]
        small = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames])
        expected = (small.astype(np.float32) / 255 - MEAN) / STD
        assert np.allclose(s["rgb"].permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
        # and the frames are the right ones: background grey of frame k is 20 + 6k (±3 after mp4v)
        bg = _denorm(s["rgb"])[:, -1, -1, 1]
        assert np.abs(bg - [fxm.grey(k) for k in _window(start)]).max() <= 3


def test_depth_equals_written_values(fx):
    ds = AnticipationDataset(_cfg(fx.root), "train", train=False)
    for i, row in enumerate(fx.train):
        s = ds[i]
        if row[2] not in fx.depth_mm:
            continue
        mm = fx.depth_mm[row[2]][s["frame_idx"].numpy()]  # same fps: depth frame i is RGB frame i
        metres = mm.astype(np.float32) * np.float32(0.001)
        expected = np.where((mm > 0) & (metres >= 0.2) & (metres <= 4.5), metres / np.float32(4.5), 0)
        got = s["depth"][:, 0].numpy()
        assert np.allclose(got, expected, rtol=1e-6, atol=0), row[2]
        assert got[0, -1, -1] == 0 and got[0, -1, 0] == 0  # hole and 6 m reading are invalid
        assert got[0, 10, 6] == pytest.approx(3.0 / 4.5)  # the marker


def test_depth_resize_never_blends(fx):
    # 32x32 depth resized to 48x48 (resize_scale 1.5) and cropped: every value is one that was written
    ds = AnticipationDataset(_cfg(fx.root, "data.resize_scale=1.5"), "train", train=True)
    s = ds[0]
    k = s["frame_idx"].numpy()
    def norm(mm):
        return float(np.float32(mm) * np.float32(0.001) / np.float32(4.5))

    for t in range(8):
        values = set(np.unique(s["depth"][t, 0].numpy()).tolist())
        assert values <= {0.0, norm(fxm.MARKER_MM), norm(fxm.depth_bg(k[t]))} and len(values) >= 2


# -- joint geometry ----------------------------------------------------------------------------------------------------
def test_transforms_flip_and_crop_identically():
    """RGB 48x64 and depth 24x32 carry a marker at the same relative box; after resize to 32, random crop to 16 and a
    flip, the marker is at the same pixels in both, where it is computed by hand."""
    rgb = np.zeros((2, 48, 64, 3), np.uint8)
    rgb[:, 12:24, 8:24] = 255  # rows [0.25, 0.5), cols [0.125, 0.375)
    depth = np.full((2, 24, 32), 1.0, np.float32)
    depth[:, 6:12, 4:12] = 2.0
    mask = np.zeros((32, 32), bool)
    mask[8:16, 4:12] = True  # the marker at 32x32
    seen = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        res = {"rgb": rgb.copy(), "depth": depth.copy(), "rng": rng}
        res = HorizontalFlip(0.5)(ResizeCrop(16, 2.0)(res))
        y0, x0 = int(round(res["crop_box"][0] * 32)), int(round(res["crop_box"][1] * 32))
        expected = mask[y0:y0 + 16, x0:x0 + 16]
        if res["flipped"]:
            expected = expected[:, ::-1]
        assert np.array_equal(res["rgb"][0, :, :, 0] > 127, expected)
        assert np.array_equal(res["depth"][1] == 2.0, expected)
        seen.add((y0, x0, res["flipped"]))
    assert len(seen) > 6 and {f for *_, f in seen} == {True, False}  # the sweep exercised crops and both flips
    # evaluation: centre crop, no flip
    res = HorizontalFlip(1.0)(ResizeCrop(16, 2.0)({"rgb": rgb.copy(), "depth": depth.copy(), "rng": None}))
    assert res["crop_box"] == (0.25, 0.25, 0.75, 0.75) and res["flipped"] is False
    # depth normalisation: out of range, 0 and NaN -> 0; else metres / depth_max
    d = np.array([[[0.0, 0.1, 0.2, 2.25, 4.5, 4.6, np.nan, np.inf]]], np.float32)
    out = NormalizeDepth(0.2, 4.5)({"depth": d})["depth"]
    assert out.shape == (1, 1, 1, 8)
    assert out.flatten().tolist() == pytest.approx([0, 0, 0.2 / 4.5, 0.5, 1.0, 0, 0, 0])


def test_dataset_flip_mirrors_both_modalities(fx):
    plain = AnticipationDataset(_cfg(fx.root), "train", train=True)
    flipped = AnticipationDataset(_cfg(fx.root, "data.hflip=1.0"), "train", train=True)
    for i in (0, 5):
        a, b = plain[i], flipped[i]
        assert torch.equal(b["rgb"], a["rgb"].flip(-1)) and torch.equal(b["depth"], a["depth"].flip(-1))


def test_dataset_random_crop_same_box(fx):
    ds = AnticipationDataset(_cfg(fx.root, "data.resize_scale=1.5", "data.hflip=0.5"), "train", train=True)
    marker = np.float32(3.0) / np.float32(4.5)
    centres = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        s = ds[0]
        dmask = np.isclose(s["depth"][0, 0].numpy(), marker)
        rgb = _denorm(s["rgb"])[0]
        rmask = (rgb[..., 0] > 150) & (rgb[..., 1] < 100)
        assert dmask.sum() > 20 and rmask.sum() > 20
        iou = (dmask & rmask).sum() / (dmask | rmask).sum()
        assert iou > 0.7, iou
        cy, cx = np.argwhere(dmask).mean(0)
        assert np.allclose((cy, cx), np.argwhere(rmask).mean(0), atol=1.0)
        centres.add((round(cy, 1), round(cx, 1)))
    assert len(centres) > 1  # crops (and flips) differ between epochs
    ds.set_epoch(2)
    assert torch.equal(ds[0]["rgb"], ds[0]["rgb"])  # but are a function of (seed, epoch, index)


# -- missing modalities ------------------------------------------------------------------------------------------------
def test_missing_depth_folder_is_a_missing_modality(fx):
    ds = AnticipationDataset(_cfg(fx.root), "train", train=False)
    assert ds.stats["missing_depth_videos"] == 1 and ds.stats["missing_depth_samples"] == 2
    assert ds.stats["missing_depth"] == 2 and ds.stats["missing_rgb"] == 0
    for i, row in enumerate(fx.train):
        s = ds[i]
        assert bool(s["present"]["depth"]) == (row[2] != "v4") and bool(s["present"]["rgb"])
        if row[2] == "v4":
            assert torch.count_nonzero(s["depth"]) == 0 and torch.count_nonzero(s["rgb"]) > 0


def test_unused_modality_is_not_decoded(tmp_path, monkeypatch):
    import cv2

    make_root(tmp_path, depth_kinds={"v0": "png", "v1": "npz"})
    for p in (tmp_path / "depth" / "v0").iterdir():  # v0's depth becomes unreadable (8-bit)
        cv2.imwrite(str(p), np.zeros((32, 32), np.uint8))
    ds = AnticipationDataset(_cfg(tmp_path, "model.modalities=[rgb]"), "train", train=False)
    s = ds[0]
    assert not bool(s["present"]["depth"]) and torch.count_nonzero(s["depth"]) == 0
    assert ds.stats["missing_depth"] == 0 and ds.stats["missing_depth_videos"] == 0
    with pytest.raises(DataError, match=r"depth/v0/0000\d\d\.png: uint8 \(8-bit\) PNG.*train\.csv:2"):
        AnticipationDataset(_cfg(tmp_path), "train", train=False)[0]  # read time: names the file and the row
    monkeypatch.setattr("r3d.data.info.read_rgb_frames", lambda *a, **k: pytest.fail("RGB decoded"))
    s = AnticipationDataset(_cfg(tmp_path, "model.modalities=[depth]"), "train", train=False)[2]
    assert not bool(s["present"]["rgb"]) and torch.count_nonzero(s["rgb"]) == 0 and bool(s["present"]["depth"])
    assert torch.count_nonzero(s["depth"]) > 0


def test_missing_rate_is_a_fixed_seeded_draw(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npy", "v1": "npy", "v2": "npy", "v3": "npy"},
              train_starts=list(np.round(np.linspace(2.0, 3.0, 50), 3)))
    cfg = _cfg(tmp_path, "data.missing_rate.depth=0.3", "data.missing_rate.rgb=0.1")
    ds = AnticipationDataset(cfg, "train", train=True)
    n = len(ds)
    assert n == 200
    flags = [(it.present_rgb, it.present_depth) for it in ds.items]
    assert ds.stats["dropped_depth"] == sum(not d for _, d in flags) and ds.stats["dropped_rgb"] == sum(
        not r for r, _ in flags)
    assert 0.2 * n <= ds.stats["dropped_depth"] <= 0.4 * n and 0.03 * n <= ds.stats["dropped_rgb"] <= 0.17 * n
    ds.set_epoch(3)
    again = AnticipationDataset(cfg, "train", train=False)  # same draw in another instance / epoch / split role
    assert [(it.present_rgb, it.present_depth) for it in again.items] == flags
    s = next(i for i, (r, d) in enumerate(flags) if not d)
    assert not bool(ds[s]["present"]["depth"]) and torch.count_nonzero(ds[s]["depth"]) == 0
    other = AnticipationDataset(apply_overrides(cfg, ["seed=1"]), "train", train=True)
    assert [(it.present_rgb, it.present_depth) for it in other.items] != flags
    assert AnticipationDataset(_cfg(tmp_path), "train", train=True).stats["dropped_depth"] == 0


# -- protocol counts and depth timing -----------------------------------------------------------------------------------
def test_drop_style_counts(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npy"}, train_starts=(3.0, 2.5, 0.5))
    over = ["data.tau_o=2.5", "data.num_frames=5"]  # step 0.5 s; start 2.5 -> times −0.5..1.5 (padded)
    pad = AnticipationDataset(_cfg(tmp_path, *over), "train", train=False)
    assert {k: pad.stats[k] for k in ("samples", "padded", "skipped_before_start", "skipped_unobservable")} == {
        "samples": 2, "padded": 1, "skipped_before_start": 0, "skipped_unobservable": 1}
    assert pad[0]["frame_idx"].tolist() == [0, 5, 10, 15, 20] and pad[1]["frame_idx"].tolist() == [0, 0, 5, 10, 15]
    skip = AnticipationDataset(_cfg(tmp_path, *over, "data.drop_style=skip"), "train", train=False)
    assert {k: skip.stats[k] for k in ("samples", "padded", "skipped_before_start", "skipped_unobservable")} == {
        "samples": 1, "padded": 0, "skipped_before_start": 1, "skipped_unobservable": 1}


def test_depth_fps_matches_by_time(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": None}, dataset_yaml={"depth_fps": 5.0, "name": "half"})
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "v0.npy", np.stack([fxm.depth_frame(j, 32, 32) for j in range(15)]))  # 15 at 5 fps
    ds = AnticipationDataset(_cfg(tmp_path), "train", train=False)
    assert ds.info.name == "half" and ds.info.depth_fps == 5.0
    s = ds[0]
    idx = s["frame_idx"].numpy()
    assert idx.tolist() == [6, 8, 10, 12, 14, 16, 18, 20]
    bg = s["depth"][:, 0, 0, 0].numpy() * 4.5
    assert np.allclose(bg, [fxm.depth_bg(k // 2) * 0.001 for k in idx], rtol=1e-6)  # 10 fps RGB -> 5 fps depth


def test_depth_settings_precedence(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npz"}, dataset_yaml={"depth_max": 2.0, "depth_scale": 0.001})
    info = build_info(_cfg(tmp_path))
    assert (info.depth_scale, info.depth_min, info.depth_max, info.depth_fps) == (0.001, 0.2, 2.0, None)
    assert info.depth_settings() == {"depth_scale": 0.001, "depth_min": 0.2, "depth_max": 2.0}
    overridden = build_info(_cfg(tmp_path, "data.depth_max=3.5", "data.depth_min=0.5"))
    assert overridden.depth_settings() == {"depth_scale": 0.001, "depth_min": 0.5, "depth_max": 3.5}
    # background 1.0..2.45 m: above depth_max 2.0 it is invalid (0)
    s = AnticipationDataset(_cfg(tmp_path), "train", train=False)[0]
    assert s["frame_idx"].tolist() == [6, 8, 10, 12, 14, 16, 18, 20]
    bg = s["depth"][:, 0, 0, 0].numpy()
    expected = [(1.0 + 0.05 * k) / 2.0 if 1.0 + 0.05 * k <= 2.0 else 0.0 for k in s["frame_idx"].tolist()]
    assert np.allclose(bg, expected, rtol=1e-6)
    (tmp_path / "dataset.yaml").write_text("depth_sacle: 0.001\n")
    with pytest.raises(DataError, match=r"dataset\.yaml: unknown key 'depth_sacle'; did you mean 'depth_scale'"):
        build_info(_cfg(tmp_path))
    (tmp_path / "dataset.yaml").write_text("fps: 10.0\nsynthetic: {seed: 3}\n")  # other metadata is kept, not read
    assert build_info(_cfg(tmp_path)).depth_max == 4.5
    (tmp_path / "dataset.yaml").write_text("depth_min: 5.0\n")
    with pytest.raises(DataError, match=r"depth_min 5\.0 m must be below depth_max 4\.5 m"):
        build_info(_cfg(tmp_path))


# -- vocabulary and labels ---------------------------------------------------------------------------------------------
def test_action_vocabulary_and_unseen_pairs(fx):
    train, val, info = build_datasets(_cfg(fx.root))
    # pairs of train.csv in order of first appearance (rows: v0 (0,0) (1,0); v1 (1,1) (2,1); v2 (2,2) (0,2); ...)
    assert info.actions == [(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (0, 2)]
    assert num_classes(info) == {"verb": 3, "noun": 3, "action": 6}
    assert info.verb_classes == fxm.VERBS and info.noun_classes == fxm.NOUNS
    assert [int(train[i]["action"]) for i in range(4)] == [0, 1, 2, 3]
    # val pairs (0,1), (1,2), (2,0), (0,1), (1,2) are unseen: 6 + verb * 3 + noun
    assert [int(val[i]["action"]) for i in range(5)] == [7, 11, 12, 7, 11]
    assert build_datasets(_cfg(fx.root), train=False)[0] is None


def test_actions_csv_overrides_train_pairs(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npz", "v1": None})
    write_csv(tmp_path / "annotations" / "actions.csv", ["id", "verb", "noun"], [[0, 2, 2], [1, 0, 1], [2, 0, 0]])
    _, val, info = build_datasets(_cfg(tmp_path))
    assert info.actions == [(2, 2), (0, 1), (0, 0)]
    assert int(val[0]["action"]) == 1  # v0's val pair (0, 1)
    write_csv(tmp_path / "annotations" / "actions.csv", ["id", "verb", "noun"], [[0, 2, 2], [1, 5, 1]])
    with pytest.raises(DataError, match=r"actions\.csv:3: column 'verb': class id 5 is unknown"):
        build_info(_cfg(tmp_path))


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_zero_byte_video(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npy", "v1": "npy"})
    (tmp_path / "videos" / "v1.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"videos/v1\.mp4: video is empty \(0 bytes\).*train\.csv:4"):
        AnticipationDataset(_cfg(tmp_path), "train", train=False)
    ds = AnticipationDataset(_cfg(tmp_path, "data.on_bad_sample=skip"), "train", train=False)
    assert ds.stats["skipped_bad"] == 2 and len(ds) == 2 and {ds[i]["video_id"] for i in range(2)} == {"v0"}


def test_missing_video_and_start_past_end(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npy", "v1": "npy"}, val_starts=(2.8, 3.5))
    (tmp_path / "videos" / "v1.mp4").unlink()
    with pytest.raises(DataError, match=r"videos/v1\.mp4: video not found.*train\.csv:4"):
        AnticipationDataset(_cfg(tmp_path), "train", train=False)
    # 30 frames at 10 fps end at 3.0 s; val line 3 starts at 3.5 s
    with pytest.raises(DataError, match=r"val\.csv:3: segment 'v0_val1' starts at 3\.500 s, after the end of .*v0\.mp4"
                                        r" \(30 frames at 10 fps = 3\.000 s\)"):
        AnticipationDataset(_cfg(tmp_path), "val", train=False)
    ds = AnticipationDataset(_cfg(tmp_path, "data.on_bad_sample=skip"), "val", train=False)
    assert ds.stats["skipped_bad"] == 3 and [ds[i]["narration_id"] for i in range(len(ds))] == ["v0_val0"]


def test_mismatched_rgb_depth_lengths(tmp_path):
    make_root(tmp_path, depth_kinds={"v0": "npy", "v1": "png"})
    (tmp_path / "depth" / "v1" / "000029.png").unlink()
    with pytest.raises(DataError, match=r"depth/v1: 29 depth frames but .*videos/v1\.mp4 has 30 RGB frames.*"
                                        r"depth_fps.*train\.csv:4"):
        AnticipationDataset(_cfg(tmp_path), "train", train=False)
    ds = AnticipationDataset(_cfg(tmp_path, "data.on_bad_sample=skip"), "train", train=False)
    assert ds.stats["skipped_bad"] == 2 and len(ds) == 2
    # with depth_fps the streams are matched by time instead: no error
    (tmp_path / "dataset.yaml").write_text("depth_fps: 10.0\n")
    assert len(AnticipationDataset(_cfg(tmp_path), "train", train=False)) == 4


def test_dataloader_workers_match_single_process(fx):
    ds = AnticipationDataset(_cfg(fx.root, "data.hflip=0.5", "data.resize_scale=1.25"), "train", train=True)
    ref = next(iter(DataLoader(ds, batch_size=10, num_workers=0)))
    got = torch.cat([b["rgb"] for b in DataLoader(ds, batch_size=5, num_workers=2)])
    assert torch.equal(got, ref["rgb"])


# -- annotations -------------------------------------------------------------------------------------------------------
HEADER = ["narration_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"]


def _segments(tmp_path, rows, header=HEADER, name="train.csv", **kw):
    path = write_csv(tmp_path / name, header, rows)
    return read_segments(path, kw.pop("num_verbs", 3), kw.pop("num_nouns", 3), kw.pop("require_labels", True))


def test_parse_timestamp():
    assert parse_timestamp("00:01:02.50") == 62.5
    assert parse_timestamp("01:00:00") == 3600.0
    assert parse_timestamp("02:03.5") == 123.5
    assert parse_timestamp(" 12.25 ") == 12.25
    for bad in ("abc", "00:00:61.0", "1:2:3:4", "nan", ""):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_segments_parsed(tmp_path):
    segs = _segments(tmp_path, [["P07", "a_0", "a", "00:00:01.50", "00:00:02.00", "2", "1", "z"],
                                ["P07", "a_1", "a", "00:01:00.00", "00:01:03.25", "0", "0", "z"]],
                     header=["participant_id"] + HEADER + ["extra"])
    assert [(s.narration_id, s.start, s.stop, s.verb, s.noun, s.participant_id, s.row) for s in segs] == [
        ("a_0", 1.5, 2.0, 2, 1, "P07", 2), ("a_1", 60.0, 63.25, 0, 0, "P07", 3)]
    # a test split without class columns
    test = _segments(tmp_path, [["t_0", "a", "1.0", "2.0"]], header=HEADER[:4], name="test.csv", require_labels=False)
    assert (test[0].verb, test[0].noun) == (-1, -1)


def test_annotation_missing_column(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:1: missing required column\(s\) \['stop_timestamp'\]"):
        _segments(tmp_path, [["a_0", "a", "1.0", "2", "0"]], header=[c for c in HEADER if c != "stop_timestamp"])
    with pytest.raises(DataError, match=r"test\.csv:1: missing required column\(s\) \['verb_class', 'noun_class'\]"):
        _segments(tmp_path, [["t_0", "a", "1.0", "2.0"]], header=HEADER[:4], name="test.csv")


def test_annotation_non_numeric_class(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:3: column 'verb_class' is 'take', not an integer"):
        _segments(tmp_path, [["a_0", "a", "1.0", "2.0", "0", "1"], ["a_1", "a", "1.0", "2.0", "take", "1"]])


def test_annotation_unknown_class_id(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:2: column 'noun_class': class id 7 is unknown .*ids 0\.\.2"):
        _segments(tmp_path, [["a_0", "a", "1.0", "2.0", "0", "7"]])


def test_annotation_duplicate_narration_id(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:4: column 'narration_id': 'a_0' is a duplicate of line 2"):
        _segments(tmp_path, [["a_0", "a", "1.0", "2.0", "0", "1"], ["a_1", "a", "1.0", "2.0", "0", "1"],
                             ["a_0", "b", "3.0", "4.0", "1", "1"]])


def test_annotation_stop_before_start(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:2: column 'stop_timestamp': stop 00:00:01.00 is before start "
                                        r"00:00:02.00"):
        _segments(tmp_path, [["a_0", "a", "00:00:02.00", "00:00:01.00", "0", "1"]])


def test_annotation_negative_start(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv:2: column 'start_timestamp': start -1\.5 s is negative"):
        _segments(tmp_path, [["a_0", "a", "-1.5", "2.0", "0", "1"]])
    with pytest.raises(DataError, match=r"train\.csv:2: column 'start_timestamp': 'soon' is not a timestamp"):
        _segments(tmp_path, [["a_0", "a", "soon", "2.0", "0", "1"]])


def test_annotation_empty_split(tmp_path):
    with pytest.raises(DataError, match=r"val\.csv: the split has no segments"):
        _segments(tmp_path, [], name="val.csv")
    (tmp_path / "none.csv").write_text("")
    with pytest.raises(DataError, match=r"none\.csv: the file is empty"):
        read_segments(tmp_path / "none.csv", 3, 3)


def test_class_lists(tmp_path):
    p = write_csv(tmp_path / "verbs.csv", ["key", "id", "instances"], [["put", 1, 4], ["take", 0, 9]])
    assert read_classes(p) == ["take", "put"]
    p = write_csv(tmp_path / "gap.csv", ["id", "key"], [[0, "a"], [2, "c"]])
    with pytest.raises(DataError, match=r"gap\.csv:3: column 'id': id 2 breaks the numbering.*missing: \[1\]"):
        read_classes(p)
    p = write_csv(tmp_path / "dup.csv", ["id", "key"], [[0, "a"], [0, "b"]])
    with pytest.raises(DataError, match=r"dup\.csv:3: column 'id': id 0 already used on line 2"):
        read_classes(p)
