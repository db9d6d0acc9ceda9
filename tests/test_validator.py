"""The validator on datasets with several problems at once, and the depth range check it shares with training.

- Faults of different kinds planted together in one ROOT are all reported by one `validate_root` run (a bad CSV row
  drops that row, not its split; a broken RGB video does not stop its depth from being checked).
- Depth that (nearly) vanishes under depth_scale / depth_min / depth_max is an error naming the measured span, in
  the validator and when a dataset is built for training; most of it cut is a warning.
"""
import re
import shutil

import cv2
import numpy as np
import pytest

from conftest import REPO, run_tool
from fixtures import make_root
from r3d.data.dataset import build_datasets
from r3d.data.errors import DataError
from r3d.data.depth_writers import write_depth_png16
from r3d.data.io import read_png16
from r3d.data.validate import validate_root
from test_bad_input import cfg_for, edit_csv, one_line


def test_every_planted_fault_is_reported_in_one_run(tiny_copy):
    root = tiny_copy
    edit_csv(root / "annotations" / "train.csv", 1, "verb_class", "99")             # unknown class id (v0000_0)
    (root / "videos" / "v0002.mp4").write_bytes(b"")                                 # 0-byte video
    (root / "depth" / "v0003" / "000007.png").unlink()                               # missing depth frame
    eight_bit = root / "depth" / "v0004" / "000005.png"                              # 8-bit depth PNG
    cv2.imwrite(str(eight_bit), (read_png16(eight_bit) // 256).astype(np.uint8))
    pngs = sorted((root / "depth" / "v0001").glob("*.png"))
    metres = np.stack([read_png16(p) for p in pngs]).astype(np.float32) / 1000.0
    metres[3, 4, 5] = np.nan                                                         # NaN in an npz depth file
    shutil.rmtree(root / "depth" / "v0001")
    np.savez(root / "depth" / "v0001.npz", depth=metres)
    for column in ("start_timestamp", "stop_timestamp"):                            # segment past its video's end
        edit_csv(root / "annotations" / "val.csv", 4, column, "00:05:00.00")
    expected = {
        "annotations": f"{root / 'annotations' / 'train.csv'}:2: column 'verb_class': class id 99 is unknown",
        "videos": f"{root / 'videos' / 'v0002.mp4'}: video is empty (0 bytes)",
        "depth store": f"{root / 'depth' / 'v0003' / '000007.png'}: depth frame missing",
        "depth values": f"{eight_bit}: 8-bit grey PNG where a 16-bit single-channel depth PNG is expected",
        "segments": f"{root / 'annotations' / 'val.csv'}:5: segment 'v0005_1' starts at 300.000 s, after the end of",
    }
    report = validate_root(root, cfg_for(root))
    errors = {f.check: f.message for f in report.errors}
    assert set(errors) == set(expected), report.table()
    for check, text in expected.items():
        assert errors[check].startswith(text), errors[check]
    [nan] = [f.message for f in report.warnings if f.check == "depth values"]
    assert nan.startswith(f"{root / 'depth' / 'v0001.npz'}: 1 non-finite depth values (NaN/inf) are read as 0")
    assert report.checks["videos"].checked == 6 and report.checks["annotations"].checked == 2
    assert report.checks["segments"].checked == 9  # 12 rows, less the bad row and the two of the 0-byte v0002
    r = run_tool([REPO / "tools/validate_data.py", root], check=False)
    assert r.returncode == 1, r.stderr
    for text in (*expected.values(), "v0001.npz: 1 non-finite depth values"):
        assert text in r.stdout
    assert "5 error(s), 1 warning(s)" in r.stdout


# -- depth range ---------------------------------------------------------------------------------------------------
NEAR = np.linspace(1800, 1990, 40)    # mm: 40 of 1024 readings (3.9 %) below 2.0 m
FAR = np.linspace(2050, 4000, 984)    # the rest between 2.05 and 4.0 m


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A ROOT whose depth spans 1.8–4.0 m in every frame (v0: PNG folder, v1: npz of uint16 mm); (root, frame mm)."""
    root = tmp_path_factory.mktemp("scene")
    make_root(root, depth_kinds={"v0": "png", "v1": "npz"})
    frame = np.concatenate([NEAR, FAR]).round().astype(np.uint16).reshape(32, 32)
    for p in sorted((root / "depth" / "v0").glob("*.png")):
        write_depth_png16(p, frame)
    np.savez(root / "depth" / "v1.npz", depth=np.stack([frame] * 30))
    return root, frame


def _assert_span(message: str, frame: np.ndarray, scale: float) -> None:
    """The message gives the 1st–99th percentile span (to its 2 decimals) of the 6 sampled frames (3 per video)."""
    lo, hi = np.percentile(np.repeat(frame.astype(np.float64).ravel() * scale, 6), [1, 99])
    m = re.search(r"span (\d+\.\d\d)–(\d+\.\d\d) m \(1st–99th percentile", message)
    assert m and abs(float(m.group(1)) - lo) < 0.006 and abs(float(m.group(2)) - hi) < 0.006, (message, lo, hi)


@pytest.mark.parametrize("override, scale, cut", [
    ("data.depth_scale=0.01", 0.01, "depth_max=4.5 m drops 100 %"),   # centimetres assumed on millimetres
    ("data.depth_max=2.0", 0.001, f"depth_max=2 m drops {100 * 984 / 1024:.0f} %"),  # the range misses the scene
])
def test_depth_that_vanishes_is_an_error_naming_the_measured_span(scene, override, scale, cut):
    root, frame = scene
    report = validate_root(root, cfg_for(root, override))
    [error] = report.errors
    assert error.check == "depth range" and cut in error.message
    _assert_span(error.message, frame, scale)
    assert "the model would see (nearly) no depth" in error.message
    assert error.message.endswith("fix depth_scale (0.001 = millimetres) or depth_min / depth_max in dataset.yaml "
                                  "or data.depth_*")
    with pytest.raises(DataError) as e:  # training refuses the same, before any epoch
        build_datasets(cfg_for(root, override))
    assert re.search(r"split 'train' of .*: depth readings span ", one_line(e)) and cut in one_line(e)
    _assert_span(one_line(e), frame, scale)


def test_depth_mostly_cut_is_a_warning_and_a_good_range_is_described(scene, caplog):
    root, frame = scene
    inside = 40 + int((FAR <= 2500).sum())
    report = validate_root(root, cfg_for(root, "data.depth_max=2.5"))
    [warning] = report.warnings
    assert report.errors == [] and warning.check == "depth range"
    _assert_span(warning.message, frame, 0.001)
    assert f"depth_max=2.5 m drops {100 * (1 - inside / 1024):.0f} %" in warning.message
    assert len(build_datasets(cfg_for(root, "data.depth_max=2.5"))[0]) == 4  # 2 videos x 2 rows; warning logged
    assert any("most depth is discarded" in r.getMessage() for r in caplog.records)
    clean = validate_root(root, cfg_for(root))
    assert clean.errors == [] and clean.warnings == []
    [info] = [f.message for f in clean.findings("info") if f.check == "depth range"]
    assert info.startswith("depth readings of 6 frame(s) of 2 video(s) span ")
    assert info.endswith("(1st–99th percentile); 100 % lie inside depth_min..depth_max = 0.2..4.5 m")
    _assert_span(info, frame, 0.001)
