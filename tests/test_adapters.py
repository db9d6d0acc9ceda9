"""Dataset adapters (r3d/data/adapters) and RGB frame folders (r3d/data/frames.py), each on a small fixture written
here to the format's own documentation (cited per test), read back through `AnticipationDataset` with the same
configs/*.yaml a user would train with. Numbers are computed by hand from what the fixture wrote: every RGB frame k
has background grey 20 + 6k and every depth frame k a background of 1000 + 50k mm (tests/fixtures.py)."""
import csv
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

import fixtures as fxm
from fixtures import make_root, rgb_frame, depth_frame, ts, write_csv, write_video
from r3d.config import load_config
from r3d.data.annotations import parse_timestamp
from r3d.data.dataset import AnticipationDataset
from r3d.data.errors import DataError
from r3d.data.formats import build_info
from r3d.data.frames import FrameFolder
from r3d.data.depth_writers import write_depth_png16

REPO = Path(__file__).resolve().parents[1]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SMALL = ["data.img_size=32", "data.num_workers=0"]


def _cfg(config, root, *overrides):
    return load_config(REPO / "configs" / config, [f"data.root={root}", *SMALL, *overrides])


def _bg_grey(sample):
    """Background grey (bottom-right pixel, green channel) of each sampled RGB frame, on the 0..255 scale."""
    rgb = sample["rgb"].permute(0, 2, 3, 1).numpy() * STD + MEAN
    return rgb[:, -1, -1, 1] * 255.0


def _window(start, fps, tau_a, tau_o, t):
    """Next-action indices by hand: frame floor(fps * (start - tau_a - (t-1-i) * tau_o / t)), padded at 0. The
    fixtures keep these times off frame boundaries, where floating point decides (r3d.data.protocols)."""
    return [max(0, int(np.floor(round(fps * (start - tau_a - (t - 1 - i) * tau_o / t), 6)))) for i in range(t)]


# -- RGB frame folders -------------------------------------------------------------------------------------------------
def _frame_folder(folder, count, name="{:06d}.jpg", skip=(), first=0):
    """Frame k (grey 20 + 6k) saved as `name`.format(first + k), except the numbers in `skip`."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        if first + k not in skip:
            cv2.imwrite(str(folder / name.format(first + k)), cv2.cvtColor(rgb_frame(k, 48, 64), cv2.COLOR_RGB2BGR))
    return folder


def test_frame_folder_reads_like_a_video(tmp_path):
    """Contract of r3d.data.io.read_rgb_frames: any order, duplicates, (K, H, W, 3) uint8 RGB."""
    ff = FrameFolder(_frame_folder(tmp_path / "v", 12), fps=10)
    assert (ff.num_frames, ff.first, ff.probe()) == (12, 0, (12, 10.0, 48, 64))
    got = ff.read([5, 2, 5])
    assert got.shape == (3, 48, 64, 3) and got.dtype == np.uint8
    assert np.abs(got[:, -1, -1, 1].astype(int) - [fxm.grey(5), fxm.grey(2), fxm.grey(5)]).max() <= 3
    assert got[0, 20, 20, 0] > 200 and got[0, 20, 20, 2] < 40  # the red marker: RGB order, not BGR
    with pytest.raises(DataError, match=r"frame index 12 is out of range 0\.\.11"):
        ff.read([12])


def test_frame_folder_gaps_and_names(tmp_path):
    with pytest.raises(DataError, match=r"000004\.jpg: frame missing"):
        FrameFolder(_frame_folder(tmp_path / "gap", 8, skip=(4,)), fps=10)
    # "number" numbering: a missing number shows the frame before it (UTKinect's jumps)
    ff = FrameFolder(tmp_path / "gap", fps=10, numbering="number")
    assert ff.num_frames == 8 and ff.numbers_of([3, 4, 5]).tolist() == [3, 3, 5]
    # EK100's 1-based frame_%010d.jpg: index 0 is frame_0000000001.jpg
    ek = FrameFolder(_frame_folder(tmp_path / "ek", 4, name="frame_{:010d}.jpg", first=1), fps=50)
    assert (ek.first, ek.num_frames, ek.name(1)) == (1, 4, "frame_0000000001.jpg")
    assert abs(int(ek.read([0])[0, -1, -1, 1]) - fxm.grey(0)) <= 3
    mixed = _frame_folder(tmp_path / "mixed", 2)
    cv2.imwrite(str(mixed / "img_7.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"mixed: frames named in more than one way"):
        FrameFolder(mixed, fps=10)
    with pytest.raises(DataError, match=r"frame folder without a frame rate.*dataset\.yaml"):
        FrameFolder(tmp_path / "ek", fps=None)


def test_folder_format_with_frame_folders(tmp_path):
    """A folder-format ROOT whose video is videos/<video_id>/ numbered jpgs; its rate is dataset.yaml `fps`."""
    fx = make_root(tmp_path, depth_kinds={"v0": "png"}, num_frames=40, fps=10.0, dataset_yaml={"fps": 10},
                   train_starts=(3.05, 2.55))
    (tmp_path / "videos" / "v0.mp4").unlink()
    _frame_folder(tmp_path / "videos" / "v0", 40)
    cfg = load_config(None, [f"data.root={tmp_path}", *SMALL, "data.tau_o=1.6", "data.num_frames=8"])
    ds = AnticipationDataset(cfg, "train", train=False)
    for i, row in enumerate(fx.train):
        s = ds[i]
        want = _window(parse_timestamp(row[3]), 10, 1.0, 1.6, 8)
        assert s["frame_idx"].tolist() == want
        assert np.abs(_bg_grey(s) - [fxm.grey(k) for k in want]).max() <= 3
        assert torch.allclose(s["depth"][:, 0, 0, 0], torch.tensor([fxm.depth_bg(k) / 4500 for k in want]))
    (tmp_path / "dataset.yaml").write_text("name: x\n")
    with pytest.raises(DataError, match=r"videos/v0: frame folder without a frame rate"):
        AnticipationDataset(cfg, "train", train=False)


# -- EPIC-KITCHENS-100 -------------------------------------------------------------------------------------------------
EK_VERBS = [["0", "take", "['take', 'grab']", "retrieve"], ["1", "put", "['put']", "leave"],
            ["2", "open", "['open']", "access"]]
EK_NOUNS = [["0", "cup", "['cup', 'mug']", "cutlery"], ["1", "box", "['box']", "containers"]]


def _ek_row(nid, vid, start, stop, verb, noun, fps):
    vname, nname = EK_VERBS[verb][1], EK_NOUNS[noun][1]
    return [nid, vid.split("_")[0], vid, ts(start), ts(start), ts(stop), int(start * fps), int(stop * fps),
            f"{vname} {nname}", vname, verb, nname, noun, f"['{nname}']", f"[{noun}]"]


@pytest.fixture(scope="module")
def ek_root(tmp_path_factory):
    """EPIC-KITCHENS-100 as the annotations README ("File Structure": EPIC_100_train/validation.csv with 15 columns,
    EPIC_100_test_timestamps.csv, EPIC_100_verb/noun_classes.csv, EPIC_100_video_info.csv) and the download scripts'
    README ("Folders structure": P01/videos/P01_01.MP4, P01/rgb_frames/P01_01.tar) describe it: P01_01 as an .MP4,
    P02_101 as extracted rgb_frames (frame_0000000001.jpg ...) at the 10 fps that EPIC_100_video_info.csv gives it."""
    from r3d.data.adapters.ek100 import EK100_COLUMNS

    root = tmp_path_factory.mktemp("ek100")
    frames = np.stack([rgb_frame(k, 48, 64) for k in range(40)])
    write_video(root / "P01" / "videos" / "P01_01.MP4", frames, 10.0)
    _frame_folder(root / "P02" / "rgb_frames" / "P02_101", 40, name="frame_{:010d}.jpg", first=1)
    (root / "depth").mkdir()
    np.savez(root / "depth" / "P01_01.npz", depth=np.stack([depth_frame(k, 32, 32) for k in range(40)]))
    ann = root / "annotations"
    train = [_ek_row("P01_01_0", "P01_01", 3.05, 4.0, 0, 0, 60), _ek_row("P01_01_1", "P01_01", 2.55, 2.9, 1, 1, 60),
             _ek_row("P02_101_0", "P02_101", 2.85, 3.5, 2, 0, 50)]
    write_csv(ann / "EPIC_100_train.csv", EK100_COLUMNS, train)
    write_csv(ann / "EPIC_100_validation.csv", EK100_COLUMNS, [_ek_row("P01_01_2", "P01_01", 2.2, 2.6, 0, 1, 60)])
    write_csv(ann / "EPIC_100_test_timestamps.csv",
              ["uid"] + list(EK100_COLUMNS[:8]), [[7] + _ek_row("P02_101_1", "P02_101", 2.0, 2.5, 0, 0, 50)[:8]])
    write_csv(ann / "EPIC_100_verb_classes.csv", ["id", "key", "instances", "category"], EK_VERBS)
    write_csv(ann / "EPIC_100_noun_classes.csv", ["id", "key", "instances", "category"], EK_NOUNS)
    write_csv(ann / "EPIC_100_video_info.csv", ["video_id", "duration", "fps", "resolution"],
              [["P01_01", 4.0, 10.0, "64x48"], ["P02_101", 4.0, 10.0, "64x48"]])
    return root


def test_ek100_official_files_end_to_end(ek_root):
    cfg = _cfg("ek100.yaml", ek_root, "model.modalities=[rgb,depth]", "data.tau_o=1.6", "data.num_frames=8")
    info = build_info(cfg)
    assert info.verb_classes == ["take", "put", "open"] and info.noun_classes == ["cup", "box"]
    assert info.actions == [(0, 0), (1, 1), (2, 0)]  # training pairs in order of first appearance
    assert info.video_path("P01_01") == ek_root / "P01" / "videos" / "P01_01.MP4"
    assert info.video_path("P02_101") == ek_root / "P02" / "rgb_frames" / "P02_101"
    segs = info.segments("train")
    assert [(s.narration_id, s.start, s.stop, s.verb, s.noun, s.participant_id, s.row) for s in segs] == [
        ("P01_01_0", 3.05, 4.0, 0, 0, "P01", 2), ("P01_01_1", 2.55, 2.9, 1, 1, "P01", 3),
        ("P02_101_0", 2.85, 3.5, 2, 0, "P02", 4)]
    test = info.segments("test")
    assert [(s.narration_id, s.start, s.verb, s.noun) for s in test] == [("P02_101_1", 2.0, -1, -1)]
    ds = AnticipationDataset(cfg, "train", train=False, info=info)
    for i, start in enumerate((3.05, 2.55, 2.85)):
        s = ds[i]
        want = _window(start, 10, 1.0, 1.6, 8)
        assert s["frame_idx"].tolist() == want
        assert np.abs(_bg_grey(s) - [fxm.grey(k) for k in want]).max() <= 3  # .MP4 and rgb_frames alike
        assert bool(s["present"]["depth"]) == (i < 2)  # P01_01 has ROOT/depth/P01_01.npz, P02_101 has none
        if i < 2:
            assert torch.allclose(s["depth"][:, 0, 0, 0], torch.tensor([fxm.depth_bg(k) / 4500 for k in want]))
    val = AnticipationDataset(cfg, "val", train=False, info=info)
    assert int(val[0]["action"]) == info.action_id(0, 1) >= info.num_actions  # (take, box) never seen in training


def test_ek100_pkl_twins(ek_root, tmp_path):
    """The README's "Pickle Files": pandas DataFrames indexed by narration_id, read when the .csv is absent."""
    pd = pytest.importorskip("pandas")
    import shutil

    root = tmp_path / "ek"
    shutil.copytree(ek_root, root)
    ann = root / "annotations"
    from_csv = build_info(_cfg("ek100.yaml", root)).segments("train")
    df = pd.read_csv(ann / "EPIC_100_train.csv").set_index("narration_id")
    df.to_pickle(ann / "EPIC_100_train.pkl")
    (ann / "EPIC_100_train.csv").unlink()
    from_pkl = build_info(_cfg("ek100.yaml", root)).segments("train")
    key = lambda s: (s.narration_id, s.video_id, s.start, s.stop, s.verb, s.noun, s.participant_id, s.row)
    assert [key(s) for s in from_pkl] == [key(s) for s in from_csv] and from_pkl[0].source.endswith(".pkl")
    df.iloc[1, df.columns.get_loc("verb_class")] = 99
    df.to_pickle(ann / "EPIC_100_train.pkl")
    with pytest.raises(DataError, match=r"EPIC_100_train\.pkl:3: column 'verb_class': class id 99 is unknown"):
        build_info(_cfg("ek100.yaml", root))


def test_ek100_pkl_without_pandas(ek_root, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "ek"
    shutil.copytree(ek_root, root)
    (root / "annotations" / "EPIC_100_train.csv").rename(root / "annotations" / "EPIC_100_train.pkl")
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(DataError, match=r"EPIC_100_train\.pkl: reading \.pkl annotations needs pandas"):
        build_info(_cfg("ek100.yaml", root))


def test_ek100_bad_input(ek_root, tmp_path):
    import shutil

    root = tmp_path / "ek"
    shutil.copytree(ek_root, root)
    path = root / "annotations" / "EPIC_100_validation.csv"
    rows = list(csv.reader(open(path)))
    rows[1][10] = "7"  # verb_class
    write_csv(path, rows[0], rows[1:])
    info = build_info(_cfg("ek100.yaml", root))
    with pytest.raises(DataError, match=r"EPIC_100_validation\.csv:2: column 'verb_class': class id 7 is unknown"):
        info.segments("val", require_labels=True)
    with pytest.raises(DataError, match=r"EPIC_100_nope\.csv: not found \(nor EPIC_100_nope\.pkl\)"):
        info.segments("nope")
    with pytest.raises(DataError, match=r"missing: folder not found \(config key 'data\.ek100\.annotations'"):
        build_info(_cfg("ek100.yaml", root, "data.ek100.annotations=missing"))


# -- RULSTM --------------------------------------------------------------------------------------------------------
def _rulstm_root(root, actions_header=True):
    """RULSTM's files as its repository has them (RULSTM/dataset.py, data/ek55/actions.csv, data/ek100/*.csv):
    headerless id,video,start_frame,end_frame,verb,noun,action rows whose frames count at 30 fps, and an actions.csv
    with EK55's header order id,action,verb,noun (or headerless id,verb,noun,action)."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    acts = [(0, "take_cup", 0, 0), (1, "put_box", 1, 1), (2, "open_lid", 2, 2), (3, "take_box", 0, 1)]
    with open(ann / "actions.csv", "w") as f:
        if actions_header:
            f.write("id,action,verb,noun\n" + "".join(f"{a}, {n},{v},{o}\n" for a, n, v, o in acts))
        else:
            f.write("".join(f"{a},{v},{o},{n}\n" for a, n, v, o in acts))
    (ann / "training.csv").write_text("P01_01_0,P01_01,91,120,0,0,0\nP01_01_1,P01_01,75,87,1,1,1\n")
    (ann / "validation.csv").write_text("P01_01_9,P01_01,84,99,0,1,3\n")
    write_video(root / "videos" / "P01_01.mp4", np.stack([rgb_frame(k, 48, 64) for k in range(40)]), 10.0)
    return root


def test_rulstm_end_to_end(tmp_path):
    root = _rulstm_root(tmp_path)
    cfg = _cfg("rulstm.yaml", root, "data.tau_o=1.6", "data.num_frames=8")
    info = build_info(cfg)
    assert info.actions == [(0, 0), (1, 1), (2, 2), (0, 1)]  # actions.csv in id order: RULSTM's action ids
    assert info.verb_classes == ["take", "put", "open"] and info.noun_classes == ["cup", "box", "lid"]
    segs = info.segments("train")
    assert [(s.narration_id, s.start, s.stop, s.verb, s.noun) for s in segs] == [
        ("P01_01_0", 91 / 30, 4.0, 0, 0), ("P01_01_1", 2.5, 87 / 30, 1, 1)]  # frame / 30
    ds = AnticipationDataset(cfg, "train", train=False, info=info)
    s = ds[0]  # a 10 fps video: the 30 fps frame numbers only fix the time (3.033 s)
    want = _window(91 / 30, 10, 1.0, 1.6, 8)
    assert s["frame_idx"].tolist() == want and np.abs(_bg_grey(s) - [fxm.grey(k) for k in want]).max() <= 3
    val = info.segments("validation")
    assert val[0].start == 84 / 30 and info.action_id(val[0].verb, val[0].noun) == 3
    # headerless actions.csv and class names from an EK class list next to it
    root2 = _rulstm_root(tmp_path / "b", actions_header=False)
    write_csv(root2 / "annotations" / "EPIC_100_verb_classes.csv", ["id", "key"], [[0, "t"], [1, "p"], [2, "o"]])
    info2 = build_info(_cfg("rulstm.yaml", root2))
    assert info2.actions == info.actions and info2.verb_classes == ["t", "p", "o"]


def test_rulstm_bad_rows(tmp_path):
    root = _rulstm_root(tmp_path)
    (root / "annotations" / "training.csv").write_text("P01_01_0,P01_01,91,120,0,0,2\n")
    with pytest.raises(DataError, match=r"training\.csv:1: column 'action': action 2 but actions\.csv gives \(verb "
                                        r"0, noun 0\) the id 0"):
        build_info(_cfg("rulstm.yaml", root)).segments("train")
    (root / "annotations" / "training.csv").write_text("P01_01_0,P01_01,90,120,0\n")
    with pytest.raises(DataError, match=r"training\.csv:1: 5 fields"):
        build_info(_cfg("rulstm.yaml", root)).segments("train")
    (root / "annotations" / "training.csv").write_text("P01_01_0,P01_01,90,x,0,0,0\n")
    with pytest.raises(DataError, match=r"training\.csv:1: column 'end_frame' is 'x', not an integer"):
        build_info(_cfg("rulstm.yaml", root)).segments("train")


# -- NTU RGB+D ---------------------------------------------------------------------------------------------------------
def test_ntu_names_and_published_splits():
    """Shahroudy et al. CVPR 2016 Sec. 3.2 (cross-subject: 20 training subjects; cross-view: cameras 2, 3 train) and
    Liu et al. TPAMI 2019 (cross-subject: 53 training subjects of 106; cross-setup: even setups train)."""
    from r3d.data.adapters import ntu

    assert ntu.NTU60_XSUB_TRAIN_SUBJECTS == (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35,
                                             38)
    assert ntu.NTU120_XSUB_TRAIN_SUBJECTS == (
        1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54, 55,
        56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
    assert len(ntu.NTU60_XSUB_TRAIN_SUBJECTS) == 20 and len(ntu.NTU120_XSUB_TRAIN_SUBJECTS) == 53
    assert ntu.XVIEW_TRAIN_CAMERAS == (2, 3)
    s = ntu.parse_name("S001C002P003R002A013")
    assert s == (1, 2, 3, 2, 13) and ntu.sample_name(s) == "S001C002P003R002A013"
    assert ntu.parse_name("S001C002P003R002A013_rgb") is None and ntu.parse_name("S1C2P3R2A13") is None
    # every subject / camera / setup, classified: exactly the published training sets
    grid = [ntu.NtuName(setup, cam, subj, 1, 1) for setup in range(1, 33) for cam in (1, 2, 3) for subj in (1, 3)]
    assert {x.camera for x in grid if ntu.train_split_of(x, "xview")} == {2, 3}
    assert {x.setup for x in grid if ntu.train_split_of(x, "xset", 120)} == set(range(2, 33, 2))
    subjects = [ntu.NtuName(1, 1, p, 1, 1) for p in range(1, 107)]
    assert [x.subject for x in subjects[:40] if ntu.train_split_of(x, "xsub", 60)] == list(
        ntu.NTU60_XSUB_TRAIN_SUBJECTS)
    assert len([x for x in subjects if ntu.train_split_of(x, "xsub", 120)]) == 53
    assert len(ntu.ACTION_NAMES) == 120 and ntu.ACTION_NAMES[0] == "drink water"
    assert ntu.ACTION_NAMES[59] == "walking apart from each other" and ntu.ACTION_NAMES[60] == "put on headphone"


NTU_SAMPLES = {"S001C001P001R001A001": 30, "S002C002P003R002A060": 30, "S018C003P045R001A061": 30}


@pytest.fixture(scope="module")
def ntu_root(tmp_path_factory):
    """The NTU RGB+D archives extracted as the README names them: nturgb+d_rgb/<name>_rgb.avi and masked depth
    nturgb+d_depth_masked/<name>/MDepth-%08d.png (16-bit mm, numbered from 1, as its MATLAB samples read Depth-%08d).
    RGB has 30 frames at 30 fps, depth 24: the counts differ, as in the dataset."""
    root = tmp_path_factory.mktemp("ntu")
    for name, n in NTU_SAMPLES.items():
        write_video(root / "nturgb+d_rgb" / f"{name}_rgb.avi", np.stack([rgb_frame(k, 48, 64) for k in range(n)]),
                    30.0)
        for k in range(24):
            write_depth_png16(root / "nturgb+d_depth_masked" / name / f"MDepth-{k + 1:08d}.png", depth_frame(k, 32, 32))
    (root / "nturgb+d_rgb" / "readme.txt").write_text("not a sample")
    return root


def test_ntu60_end_to_end(ntu_root):
    cfg = _cfg("ntu60_xsub.yaml", ntu_root, "data.tau_o=0.35", "data.num_frames=4")
    info = build_info(cfg)
    assert len(info.verb_classes) == 60 and info.noun_classes == ["person"] and info.num_actions == 60
    assert all(info.action_id(v, 0) == v for v in range(60))
    train, val = info.segments("train"), info.segments("val")
    # S018/A061 is NTU-120 only; P001 is a training subject, P003 is not
    assert [(s.narration_id, s.start, s.stop, s.verb, s.noun, s.participant_id) for s in train] == [
        ("S001C001P001R001A001", 0.5, 1.0, 0, 0, "P001")]
    assert [(s.narration_id, s.verb) for s in val] == [("S002C002P003R002A060", 59)]
    ds = AnticipationDataset(cfg, "train", train=False, info=info)
    s = ds[0]
    # observed = 0.5 of a 1 s clip, tau_a = 0, tau_o = 0.35: times 0.2375, 0.325, 0.4125, 0.5 s -> RGB 7, 9, 12, 15
    assert s["frame_idx"].tolist() == [7, 9, 12, 15] and int(s["verb"]) == 0 and int(s["action"]) == 0
    assert np.abs(_bg_grey(s) - [fxm.grey(k) for k in (7, 9, 12, 15)]).max() <= 3
    # depth by normalised time: floor(i * 24 / 30) -> 5, 7, 9, 12 (MDepth-00000006.png, ...)
    assert ds.items[0].depth_idx.tolist() == [5, 7, 9, 12]
    assert torch.allclose(s["depth"][:, 0, 0, 0], torch.tensor([fxm.depth_bg(j) / 4500 for j in (5, 7, 9, 12)]))
    xview = build_info(_cfg("ntu60_xsub.yaml", ntu_root, "data.ntu.protocol=xview"))
    assert [s.narration_id for s in xview.segments("train")] == ["S002C002P003R002A060"]


def test_ntu120_and_bad_input(ntu_root, tmp_path):
    info = build_info(_cfg("ntu120_xsub.yaml", ntu_root))
    assert len(info.verb_classes) == 120
    assert [s.narration_id for s in info.segments("train")] == ["S001C001P001R001A001", "S018C003P045R001A061"]
    xset = build_info(_cfg("ntu120_xsub.yaml", ntu_root, "data.ntu.protocol=xset"))
    assert [s.narration_id for s in xset.segments("train")] == ["S002C002P003R002A060", "S018C003P045R001A061"]
    whole = build_info(_cfg("ntu120_xsub.yaml", ntu_root, "data.ntu.observed=0.0")).segments("val")
    assert [(s.start, s.stop) for s in whole] == [(0.0, 1.0)]  # the whole clip, for the long-term protocol
    with pytest.raises(DataError, match=r"config key 'data\.ntu\.protocol' is 'xset'"):
        build_info(_cfg("ntu60_xsub.yaml", ntu_root, "data.ntu.protocol=xset"))
    with pytest.raises(DataError, match=r"config key 'data\.ntu\.observed' is 1\.5"):
        build_info(_cfg("ntu60_xsub.yaml", ntu_root, "data.ntu.observed=1.5"))
    bad = tmp_path / "bad"
    (bad / "nturgb+d_rgb").mkdir(parents=True)
    (bad / "nturgb+d_rgb" / "S001C004P001R001A001_rgb.avi").write_bytes(b"x")
    with pytest.raises(DataError, match=r"S001C004P001R001A001_rgb\.avi: not a valid NTU sample name"):
        build_info(_cfg("ntu60_xsub.yaml", bad)).segments("train")
    with pytest.raises(DataError, match=r"nturgb\+d_rgb: not found"):
        build_info(_cfg("ntu60_xsub.yaml", tmp_path / "empty"))


# -- UTKinect-Action3D ------------------------------------------------------------------------------------------------
UTK_LABELS = """s01_e01
walk: 115 125
sitDown: 130 136
carry: NaN NaN
s02_e01
push: 220 230
"""
UTK_GAPS = {"s01_e01": (100, {103, 120, 121}), "s02_e01": (200, set())}


def _write_opencv_image_xml(path, tag, depth):
    """A depth frame as OpenCV's legacy cvSave writes an IplImage (type_id "opencv-image", dt "w" = 16U)."""
    h, w = depth.shape
    values = "\n".join(" ".join(str(int(v)) for v in row) for row in depth)
    path.write_text(f'<?xml version="1.0"?>\n<opencv_storage>\n<{tag} type_id="opencv-image">\n  <width>{w}</width>\n'
                    f'  <height>{h}</height>\n  <origin>top-left</origin>\n  <layout>interleaved</layout>\n'
                    f'  <dt>w</dt>\n  <data>\n    {values}</data></{tag}>\n</opencv_storage>\n')


@pytest.fixture(scope="module")
def utk_root(tmp_path_factory):
    """UTKinect-Action3D as its archives extract: actionLabel.txt (session line, then `action: start end`, NaN for
    an action not recorded), RGB/<session>/colorImg<N>.jpg and depth/<session>/depthImg<N>.xml whose frame numbers
    jump (frames were kept only while the skeleton was tracked). Capture frame first + k shows RGB frame k and depth
    (1000 + 50k) mm stored as mm << 3 (the adapter's assumed Kinect SDK 1.x packing)."""
    root = tmp_path_factory.mktemp("utk")
    (root / "actionLabel.txt").write_text(UTK_LABELS)
    for session, (first, gaps) in UTK_GAPS.items():
        (root / "RGB" / session).mkdir(parents=True)
        (root / "depth" / session).mkdir(parents=True)
        for k in range(40):
            if first + k in gaps:
                continue
            cv2.imwrite(str(root / "RGB" / session / f"colorImg{first + k}.jpg"),
                        cv2.cvtColor(rgb_frame(k, 48, 64), cv2.COLOR_RGB2BGR))
            _write_opencv_image_xml(root / "depth" / session / f"depthImg{first + k}.xml", f"depthImg{first + k}",
                                    depth_frame(k, 24, 32).astype(np.int64) * 8)
    return root


def test_utkinect_labels_and_segments(utk_root):
    from r3d.data.adapters.utkinect import ACTIONS, read_action_labels

    labels = read_action_labels(utk_root / "actionLabel.txt")
    assert labels == {"s01_e01": [("walk", 115, 125, 2), ("sitDown", 130, 136, 3)],
                      "s02_e01": [("push", 220, 230, 6)]}  # carry: NaN NaN is skipped
    info = build_info(_cfg("utkinect.yaml", utk_root))
    assert info.verb_classes == list(ACTIONS) and info.noun_classes == ["person"] and info.depth_scale == 0.000125
    train = info.segments("train")  # subject 1 is odd: train; s02 is val
    assert [(s.narration_id, s.start, s.stop, s.verb, s.participant_id, s.row) for s in train] == [
        ("s01_e01_walk", 15 / 30, 26 / 30, 0, "s01", 2), ("s01_e01_sitDown", 30 / 30, 37 / 30, 1, "s01", 3)]
    assert [(s.narration_id, s.start, s.verb) for s in info.segments("val")] == [("s02_e01_push", 20 / 30, 6)]
    und = build_info(_cfg("utkinect.yaml", utk_root, "data.utkinect.undefined=true"))
    assert und.verb_classes[-1] == "undefined" and und.num_actions == 11
    assert [(s.narration_id, round(s.start * 30), round(s.stop * 30), s.verb) for s in und.segments("train")] == [
        ("s01_e01_undefined_0", 0, 15, 10), ("s01_e01_walk", 15, 26, 0), ("s01_e01_undefined_1", 26, 30, 10),
        ("s01_e01_sitDown", 30, 37, 1), ("s01_e01_undefined_2", 37, 40, 10)]  # the 40 frames, tiled


def test_utkinect_end_to_end(utk_root):
    cfg = _cfg("utkinect.yaml", utk_root, "data.tau_a=0.21", "data.tau_o=0.2", "data.num_frames=2")
    ds = AnticipationDataset(cfg, "train", train=False)
    s = ds[1]  # sitDown at 1.0 s: frames at 0.69 and 0.79 s = capture frames 120 (not stored: shows 119) and 123
    assert s["narration_id"] == "s01_e01_sitDown" and s["frame_idx"].tolist() == [20, 23]
    assert np.abs(_bg_grey(s) - [fxm.grey(19), fxm.grey(23)]).max() <= 3
    assert torch.allclose(s["depth"][:, 0, 0, 0], torch.tensor([1.95 / 4.5, 2.15 / 4.5]))  # depthImg119, 123 (mm<<3)
    assert int(s["verb"]) == 1 and int(s["action"]) == 1 and int(s["noun"]) == 0


def test_utkinect_depth_xml_and_overrides(utk_root, tmp_path):
    from r3d.data.adapters.utkinect import read_opencv_xml_depth

    d = read_opencv_xml_depth(utk_root / "depth" / "s01_e01" / "depthImg105.xml")
    assert d.shape == (24, 32) and d.dtype == np.int32 and np.array_equal(d, depth_frame(5, 24, 32) * 8)
    mat = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000)  # OpenCV's own writer: type_id "opencv-matrix"
    fs = cv2.FileStorage(str(tmp_path / "m.xml"), cv2.FILE_STORAGE_WRITE)
    fs.write("depthImg5", mat)
    fs.release()
    assert np.array_equal(read_opencv_xml_depth(tmp_path / "m.xml"), mat)
    (tmp_path / "bad.xml").write_text('<?xml version="1.0"?><opencv_storage><d type_id="opencv-image"><width>4'
                                      '</width><height>2</height><data>1 2 3</data></d></opencv_storage>')
    with pytest.raises(DataError, match=r"bad\.xml: <data> has 3 values for a 2x4 image"):
        read_opencv_xml_depth(tmp_path / "bad.xml")
    import shutil

    root = tmp_path / "utk"
    shutil.copytree(utk_root, root)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"depth_scale": 0.001}))  # a copy storing plain mm
    assert build_info(_cfg("utkinect.yaml", root)).depth_scale == 0.001
    (root / "actionLabel.txt").write_text(UTK_LABELS.replace("push: 220 230", "jump: 220 230"))
    with pytest.raises(DataError, match=r"actionLabel\.txt:6: unknown action 'jump'"):
        build_info(_cfg("utkinect.yaml", root)).segments("val")
    (root / "actionLabel.txt").write_text(UTK_LABELS.replace("walk: 115 125", "walk 115 125"))
    with pytest.raises(DataError, match=r"actionLabel\.txt:2: 'walk 115 125' is neither a session"):
        build_info(_cfg("utkinect.yaml", root)).segments("train")


def test_adapters_registered_and_configs_load():
    from r3d.registry import DATASETS

    names = {e.name for e in DATASETS.entries()}
    assert {"folder", "ek100", "rulstm", "ntu", "utkinect"} <= names
    for config, fmt in (("ek100.yaml", "ek100"), ("rulstm.yaml", "rulstm"), ("ntu60_xsub.yaml", "ntu"),
                        ("ntu120_xsub.yaml", "ntu"), ("utkinect.yaml", "utkinect")):
        assert load_config(REPO / "configs" / config).data.format == fmt
