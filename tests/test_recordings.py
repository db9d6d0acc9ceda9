"""Native recordings (Azure Kinect MKV, RealSense bag) read back against what `recording_fixtures` wrote: frames,
depth units bit for bit, timestamps, the colour↔depth pairing, the one-line errors for bad recordings, and the
converter's folder output read through r3d's own folder readers."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from r3d.data.errors import DataError
from r3d.data.io import DepthStore, PngDepthStore, read_rgb_frames
from r3d.data.recordings import K4aMkvRecording, RealSenseBagRecording, is_recording, open_recording, pair_nearest
from r3d.data.recordings.convert import ANNOTATION_HEADER, convert_recording

from recording_fixtures import (color_frame, depth_frame, write_k4a_mkv, write_pyav_mkv, write_realsense_bag)

# Colour frame k (k = 0..11) at BASE + k·P, colour frame 7 dropped; depth frame k (k = -1..11) at
# BASE + k·P + 400 µs, depth frame 4 dropped. So colour 4 has no depth within half a period, and depth -1 and 7
# are never taken.
P_US, BASE_US, DEPTH_LAG_US = 33_333, 5_000_000, 400
COLOR_K = [k for k in range(12) if k != 7]
DEPTH_K = [k for k in range(-1, 12) if k != 4]
# colour position -> depth position expected (-1: none); depth positions count from depth k = -1
EXPECTED_PAIRS = [DEPTH_K.index(k) if k in DEPTH_K else -1 for k in COLOR_K]


def _arrays():
    color = np.stack([color_frame(k) for k in COLOR_K])
    depth = np.stack([depth_frame(k + 1) for k in DEPTH_K])  # +1: keep every depth value positive and distinct
    return color, depth


@pytest.fixture(scope="module")
def k4a(tmp_path_factory):
    color, depth = _arrays()
    path = tmp_path_factory.mktemp("k4a") / "kinect.mkv"
    written = write_k4a_mkv(path, depth, [BASE_US + k * P_US + DEPTH_LAG_US for k in DEPTH_K], color,
                            [BASE_US + k * P_US for k in COLOR_K])
    return path, written


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    color, depth = _arrays()
    path = tmp_path_factory.mktemp("bag") / "realsense.bag"
    write_realsense_bag(path, depth, [10**18 + (BASE_US + k * P_US + DEPTH_LAG_US) * 1000 for k in DEPTH_K], color,
                        [10**18 + (BASE_US + k * P_US) * 1000 for k in COLOR_K])
    return path


def _one_line_error(exc: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def _check_clock_and_pairing(rec) -> None:
    expected_t = np.array([(k - COLOR_K[0]) * P_US for k in COLOR_K]) / 1e6
    np.testing.assert_allclose(rec.timestamps, expected_t, atol=1e-9)
    expected_dt = np.array([k * P_US + DEPTH_LAG_US for k in DEPTH_K]) / 1e6
    np.testing.assert_allclose(rec.depth_timestamps, expected_dt, atol=1e-9)
    assert rec.depth_index.tolist() == EXPECTED_PAIRS
    assert rec.pairing.unmatched_frames == 1 and rec.pairing.unused_depth_frames == 2
    assert rec.pairing.max_offset == pytest.approx(DEPTH_LAG_US / 1e6, abs=1e-9)
    assert rec.fps == pytest.approx(1e6 / P_US, rel=1e-4)  # nominal 30, measured 30.0003
    assert (rec.num_frames, rec.num_depth_frames) == (len(COLOR_K), len(DEPTH_K))


def _check_depth(rec, depth: np.ndarray) -> None:
    order = [11, 0, 3, 3, 7]
    np.testing.assert_array_equal(rec.read_depth_units(order), depth[order])  # bit for bit, in mm
    store = rec.depth_store()
    assert isinstance(store, DepthStore) and store.num_frames == rec.num_frames and store.fps == rec.fps
    frames = [9, 4, 0, 4]
    metres = store.read(frames)
    for m, i in zip(metres, frames):
        j = EXPECTED_PAIRS[i]
        expected = np.zeros_like(depth[0]) if j < 0 else depth[j]
        np.testing.assert_array_equal(m, expected.astype(np.float32) * np.float32(0.001))


def _identify(frames: np.ndarray, originals: np.ndarray) -> list:
    """Index of the original each frame is closest to (mean absolute difference)."""
    err = np.abs(frames[:, None].astype(int) - originals[None].astype(int)).mean(axis=(2, 3, 4))
    return err.argmin(axis=1).tolist()


# -- Azure Kinect MKV -------------------------------------------------------------------------------------------------
def test_k4a_fixture_has_the_k4arecorder_layout(k4a):
    path, written = k4a
    with av.open(str(path)) as c:
        streams = {s.metadata["title"]: s for s in c.streams.video}
        assert sorted(streams) == ["COLOR", "DEPTH", "IR"]
        assert streams["DEPTH"].codec_context.codec_tag == "b16g" and streams["IR"].codec_context.codec_tag == "b16g"
        assert streams["DEPTH"].codec_context.pix_fmt == "gray16be"
        assert streams["COLOR"].codec_context.codec_tag == "MJPG" and streams["COLOR"].codec_context.name == "mjpeg"
        assert streams["DEPTH"].metadata["K4A_DEPTH_TRACK"] == str(written["uids"]["DEPTH"])
        assert c.metadata["K4A_START_OFFSET_NS"] == str(written["start_offset_us"] * 1000)


def test_k4a_mkv_frames_depth_timestamps_and_pairing(k4a):
    path, written = k4a
    color, depth = _arrays()
    rec = open_recording(path)
    assert isinstance(rec, K4aMkvRecording) and rec.has_rgb and rec.depth_scale == 0.001
    _check_clock_and_pairing(rec)
    _check_depth(rec, depth)
    order = [10, 0, 3, 3]
    rgb = rec.read_rgb(order)
    assert rgb.shape == (4, *color.shape[1:]) and rgb.dtype == np.uint8
    assert _identify(rgb, color) == order
    for frame, i in zip(rgb, order):  # FFmpeg's MJPEG decoder against OpenCV's on the same JPEG bytes
        ref = cv2.cvtColor(cv2.imdecode(np.frombuffer(written["jpegs"][i], np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
        assert np.abs(frame.astype(int) - ref).max() <= 3
    assert rec.probe() == (len(COLOR_K), rec.fps, color.shape[1], color.shape[2])


def test_mkv_without_k4a_names_falls_back_on_codec(tmp_path):
    color, depth = _arrays()
    path = tmp_path / "unnamed.mkv"
    write_k4a_mkv(path, depth, [k * P_US for k in range(len(depth))], color, [k * P_US for k in range(len(color))],
                  names=False, tags=False)
    rec = open_recording(path)
    np.testing.assert_array_equal(rec.read_depth_units([5]), depth[5:6])  # DEPTH (written before IR), not IR
    assert any("unnamed 16-bit grey tracks" in n for n in rec.notes)
    assert _identify(rec.read_rgb([2, 6]), color) == [2, 6]


def test_pyav_mkv_h264_random_access_equals_sequential_decode(tmp_path):
    color = np.stack([color_frame(k) for k in range(20)])
    depth = np.stack([depth_frame(k) for k in range(20)])
    path = tmp_path / "pyav.mkv"
    write_pyav_mkv(path, depth, color)
    with av.open(str(path)) as c:  # independent route: every colour frame decoded in order
        s = next(s for s in c.streams.video if s.codec_context.name == "h264")
        sequential = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])
    rec = open_recording(path)
    assert not rec.index.color.keyframe.all()  # inter-coded: reads must start at a key frame
    order = [17, 2, 2, 9, 0, 19, 10]
    np.testing.assert_array_equal(rec.read_rgb(order), sequential[order])
    np.testing.assert_array_equal(rec.read_depth_units(order), depth[order])
    np.testing.assert_allclose(rec.timestamps, np.arange(20) / 30, atol=1e-3)  # Matroska stores milliseconds


def test_depth_only_mkv(tmp_path):
    depth = np.stack([depth_frame(k) for k in range(6)])
    path = tmp_path / "depth_only.mkv"
    write_k4a_mkv(path, depth, [100 + k * P_US for k in range(6)], fps=30)
    rec = open_recording(path)
    assert not rec.has_rgb and rec.num_frames == 6 and rec.depth_index.tolist() == list(range(6))
    assert rec.probe() == (6, rec.fps, depth.shape[1], depth.shape[2])
    np.testing.assert_array_equal(rec.depth_store().read([5, 1]), depth[[5, 1]].astype(np.float32) * np.float32(1e-3))
    with pytest.raises(DataError) as e:
        rec.read_rgb([0])
    _one_line_error(e, path, "no colour stream")


# -- RealSense bag ----------------------------------------------------------------------------------------------------
def test_realsense_bag_frames_depth_timestamps_and_pairing(bag):
    color, depth = _arrays()
    rec = open_recording(bag)
    assert isinstance(rec, RealSenseBagRecording) and rec.index.clock == "image header stamps"
    assert rec.depth_scale == 0.001 and rec.depth_scale_source == "the bag's Depth Units option"
    _check_clock_and_pairing(rec)
    _check_depth(rec, depth)
    order = [10, 0, 3, 3]
    np.testing.assert_array_equal(rec.read_rgb(order), color[order])  # rgb8 is lossless


@pytest.mark.parametrize("encoding,tol", [("bgr8", 0), ("rgba8", 0), ("bgra8", 0), ("mono8", 0), ("yuv422", 6),
                                          ("YUYV", 6)])
def test_bag_colour_encodings_and_padded_rows(tmp_path, encoding, tol):
    color, depth = np.stack([color_frame(k) for k in range(3)]), np.stack([depth_frame(k) for k in range(3)])
    path = tmp_path / f"{encoding}.bag"
    ns = [10**9 + k * P_US * 1000 for k in range(3)]
    write_realsense_bag(path, depth, ns, color, ns, color_encoding=encoding, pad=8)
    rec = open_recording(path)
    expected = np.repeat(color[..., :1], 3, -1) if encoding == "mono8" else color
    assert np.abs(rec.read_rgb([2, 0]).astype(int) - expected[[2, 0]]).max() <= tol  # chroma subsampled: ±6
    np.testing.assert_array_equal(rec.read_depth_units([1]), depth[1:2])


def test_bag_depth_units_newer_librealsense_layout_and_bag_clock(tmp_path):
    depth = np.stack([depth_frame(k) for k in range(4)])
    newer = tmp_path / "newer.bag"  # header frame_id "1" + float32 depth_units after the pixels (D405: 0.1 mm)
    write_realsense_bag(newer, depth, [10**9 + k * P_US * 1000 for k in range(4)], rs_v1_fields=True,
                        depth_units=0.0001)
    rec = open_recording(newer)
    assert not rec.has_rgb and rec.depth_scale == 0.0001
    assert rec.depth_scale_source == "depth_units field of the depth images"
    np.testing.assert_array_equal(rec.depth_store().read([3]), depth[3:4].astype(np.float32) * np.float32(1e-4))
    unstamped = tmp_path / "unstamped.bag"  # no header stamps, no units, LZ4 chunks
    write_realsense_bag(unstamped, depth, [10**9 + k * P_US * 1000 for k in range(4)], zero_stamps=True,
                        depth_units=None, compression="lz4")
    rec = open_recording(unstamped)
    assert rec.index.clock == "bag message times" and rec.depth_scale == 0.001
    assert rec.depth_scale_source.startswith("default")
    np.testing.assert_allclose(rec.timestamps, np.arange(4) * P_US / 1e6, atol=1e-9)
    np.testing.assert_array_equal(rec.read_depth_units([0, 3]), depth[[0, 3]])


# -- bad recordings ---------------------------------------------------------------------------------------------------
def test_truncated_recordings(k4a, bag, tmp_path):
    for src in (k4a[0], bag):
        cut = tmp_path / f"cut{src.suffix}"
        data = src.read_bytes()
        cut.write_bytes(data[:int(len(data) * 0.6)])
        with pytest.raises(DataError) as e:
            open_recording(cut)
        _one_line_error(e, cut, "truncated")


def test_missing_depth(tmp_path):
    color, depth = _arrays()
    mkv = tmp_path / "passive_ir.mkv"  # k4arecorder --depth-mode PASSIVE_IR: COLOR + IR, no DEPTH track
    write_k4a_mkv(mkv, depth, [k * P_US for k in range(len(depth))], color, [k * P_US for k in range(len(color))],
                  depth_track=False, depth_mode="PASSIVE_IR")
    with pytest.raises(DataError) as e:
        open_recording(mkv)
    _one_line_error(e, mkv, "no depth track (K4A_DEPTH_MODE=PASSIVE_IR)", "IR (rawvideo/b16g")
    bagfile = tmp_path / "no_depth.bag"
    ns = [10**9 + k * P_US * 1000 for k in range(3)]
    write_realsense_bag(bagfile, depth[:3], ns, color[:3], ns, depth_topic=False)
    with pytest.raises(DataError) as e:
        open_recording(bagfile)
    _one_line_error(e, bagfile, "no depth topic", "/device_0/sensor_1/Color_0/image/data")


def test_colour_and_depth_without_overlap(tmp_path):
    color, depth = _arrays()
    mkv = tmp_path / "apart.mkv"
    write_k4a_mkv(mkv, depth, [10_000_000 + k * P_US for k in range(len(depth))], color,
                  [k * P_US for k in range(len(color))])
    bagfile = tmp_path / "apart.bag"
    write_realsense_bag(bagfile, depth, [10**10 + k * P_US * 1000 for k in range(len(depth))], color,
                        [k * P_US * 1000 + 1 for k in range(len(color))])
    for path in (mkv, bagfile):
        with pytest.raises(DataError) as e:
            open_recording(path)
        _one_line_error(e, path, "no overlapping timestamps")


def test_unsupported_encodings(tmp_path):
    depth = np.stack([depth_frame(k) for k in range(3)])
    ns = [10**9 + k * P_US * 1000 for k in range(3)]
    float_depth = tmp_path / "float_depth.bag"
    write_realsense_bag(float_depth, depth.astype(np.float32) / 1000, ns, depth_encoding="32FC1")
    with pytest.raises(DataError) as e:
        open_recording(float_depth)
    _one_line_error(e, float_depth, "encoding '32FC1'", "not supported")
    mkv = tmp_path / "gray8_depth.mkv"
    with av.open(str(mkv), "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=30)
        s.width, s.height, s.pix_fmt = 16, 12, "gray"
        s.metadata["title"] = "DEPTH"
        for k in range(3):
            f = av.VideoFrame.from_ndarray((depth[k] // 16).astype(np.uint8), format="gray")
            f.pts = k
            c.mux(s.encode(f))
        c.mux(s.encode())
    with pytest.raises(DataError) as e:
        open_recording(mkv)
    _one_line_error(e, mkv, "not 16-bit grey", "not supported")


def test_unknown_and_empty_files(k4a, tmp_path):
    other = tmp_path / "clip.avi"
    other.write_bytes(b"x")
    with pytest.raises(DataError) as e:
        open_recording(other)
    _one_line_error(e, other, ".mkv", ".bag")
    assert not is_recording(other) and is_recording(tmp_path / "a.MKV") and is_recording("b.bag")
    assert is_recording(k4a[0], look_inside=True)
    colour_only = tmp_path / "colour_only.mkv"
    with av.open(str(colour_only), "w", format="matroska") as c:
        s = c.add_stream("mjpeg", rate=30)
        s.width, s.height, s.pix_fmt = 32, 24, "yuvj420p"
        f = av.VideoFrame.from_ndarray(color_frame(0), format="rgb24")
        c.mux(s.encode(f))
        c.mux(s.encode())
    assert is_recording(colour_only) and not is_recording(colour_only, look_inside=True)  # a plain colour .mkv
    empty = tmp_path / "empty.bag"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as e:
        open_recording(empty)
    _one_line_error(e, empty, "0 bytes")


def test_pair_nearest_by_hand():
    p = pair_nearest(np.array([0.0, 0.1, 0.2, 0.3]), np.array([0.02, 0.09, 0.26]), tolerance=0.05)
    # 0.0 -> 0.02; 0.1 -> 0.09; 0.2: nearest 0.26 is 0.06 away (> 0.05); 0.3 -> 0.26
    assert p.depth_index.tolist() == [0, 1, -1, 2]
    assert (p.unmatched_frames, p.unused_depth_frames) == (1, 0)
    assert p.max_offset == pytest.approx(0.04)


# -- converter --------------------------------------------------------------------------------------------------------
def _check_converted(root: Path, rec, vid: str, fps: float) -> np.ndarray:
    src = rec.uniform_frames(fps)
    store = PngDepthStore(root / "depth" / vid, 0.001)
    assert store.num_frames == len(src)
    units = np.stack([cv2.imread(str(store.frame_path(k)), cv2.IMREAD_UNCHANGED) for k in range(len(src))])
    np.testing.assert_array_equal(units, rec.read_paired_depth_units(src))  # bit for bit, mm
    video = read_rgb_frames(root / "videos" / f"{vid}.mp4", range(len(src)))
    err = np.abs(video.astype(int) - rec.read_rgb(src).astype(int))
    assert err.mean() <= 2.0 and err.max() <= 10, (err.mean(), err.max())  # measured: mean 1.17-1.26, max 6
    return src


@pytest.mark.parametrize("which", ["k4a", "bag"])
def test_convert_then_read_the_folder_back(which, k4a, bag, tmp_path):
    path = k4a[0] if which == "k4a" else bag
    _, depth = _arrays()
    root = tmp_path / "root"
    res = convert_recording(path, root, video_id="rec1")
    rec = open_recording(path)
    src = _check_converted(root, rec, "rec1", rec.fps)
    # 12 output frames over 12 colour periods: the dropped colour frame 7 is filled by its nearest neighbour (k=8)
    assert src.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10] and res.frames == 12 and res.repeated_frames == 1
    assert res.depth_exact and res.frames_without_depth == 1  # colour frame 4
    png4 = cv2.imread(str(root / "depth" / "rec1" / "000004.png"), cv2.IMREAD_UNCHANGED)
    png0 = cv2.imread(str(root / "depth" / "rec1" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert not png4.any() and np.array_equal(png0, depth[DEPTH_K.index(0)])
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    assert meta["depth_scale"] == 0.001 and meta["fps"] == pytest.approx(rec.fps, rel=1e-6)
    # readings span 1.037–4.012 m: r3d's default range (0.2–4.5 m) already covers them
    assert (meta["depth_min"], meta["depth_max"]) == (0.2, 4.5)
    assert (root / "annotations" / "train.csv").read_text().strip() == ",".join(ANNOTATION_HEADER)
    assert (root / "annotations" / "verb_classes.csv").read_text().strip() == "id,key"


def test_convert_keeps_user_files_refuses_overwrite_and_resamples(k4a, tmp_path):
    root = tmp_path / "root"
    (root / "annotations").mkdir(parents=True)
    mine = "narration_id,video_id,start_timestamp,stop_timestamp,verb_class,noun_class\nx,rec1,0,0.1,0,0\n"
    (root / "annotations" / "train.csv").write_text(mine)
    (root / "dataset.yaml").write_text("depth_scale: 0.0005\nfps: 15\ndepth_max: 3.0\n")
    res = convert_recording(k4a[0], root, video_id="rec1")
    assert (root / "annotations" / "train.csv").read_text() == mine
    assert (root / "dataset.yaml").read_text() == "depth_scale: 0.0005\nfps: 15\ndepth_max: 3.0\n"
    assert res.dataset_yaml == "kept" and str(root / "annotations" / "train.csv") not in res.templates
    assert res.fps == 15 and res.frames == 6 and not res.depth_exact  # 12 colour periods at 30 fps = 0.4 s
    rec = open_recording(k4a[0])
    src = rec.uniform_frames(15)
    assert src.tolist() == [0, 2, 4, 6, 7, 9]  # nearest colour frame to k / 15 s (colour k=7 was dropped)
    units = np.stack([cv2.imread(str(root / "depth" / "rec1" / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
                      for k in range(6)])
    np.testing.assert_array_equal(units, rec.read_paired_depth_units(src) * 2)  # mm -> 0.5 mm units
    # depth_frame values: 1000 + 37k + 3x + 5y mm (k = 1..12, x < 16, y < 12), one 4000+k reading per frame:
    # readings above depth_max 3.0 m are the 4000+k ones, 1 of the 16*12-6 valid readings of each frame
    assert any("depth range 0.2–3.0 m drops 0.5 %" in n for n in res.notes), res.notes
    store = rec.depth_store(src, 15)  # the same resampled clock read straight from the recording
    assert (store.num_frames, store.fps) == (6, 15)
    np.testing.assert_array_equal(store.read(range(6)), units.astype(np.float32) * np.float32(0.0005))
    with pytest.raises(DataError) as e:
        convert_recording(k4a[0], root, video_id="rec1")
    _one_line_error(e, root / "videos" / "rec1.mp4", "--overwrite")
    convert_recording(k4a[0], root, video_id="rec1", overwrite=True, fps=30)
    assert len(list((root / "depth" / "rec1").iterdir())) == 12


def test_convert_depth_only(tmp_path):
    depth = np.stack([depth_frame(k) for k in range(5)])
    path = tmp_path / "depth.bag"
    write_realsense_bag(path, depth, [10**9 + k * P_US * 1000 for k in range(5)])
    res = convert_recording(path, tmp_path / "root")
    assert res.video is None and not (tmp_path / "root" / "videos").exists() and res.frames == 5
    store = PngDepthStore(tmp_path / "root" / "depth" / "depth", 0.001)
    np.testing.assert_array_equal(store.read(range(5)), depth.astype(np.float32) * np.float32(0.001))


def test_convert_odd_frame_size(tmp_path):
    color = np.stack([color_frame(k, 23, 31) for k in range(4)])  # yuv420p needs even sizes: written as yuv444p
    depth = np.stack([depth_frame(k) for k in range(4)])
    ns = [10**9 + k * P_US * 1000 for k in range(4)]
    path = tmp_path / "odd.bag"
    write_realsense_bag(path, depth, ns, color, ns)
    convert_recording(path, tmp_path / "root")
    video = read_rgb_frames(tmp_path / "root" / "videos" / "odd.mp4", range(4))
    assert video.shape == color.shape and np.abs(video.astype(int) - color).mean() <= 2.0


def test_convert_tool_cli(k4a, tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_recording_tool",
                                                  Path(__file__).resolve().parents[1] / "tools" /
                                                  "convert_recording.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(k4a[0]), str(tmp_path / "root")]) == 0
    out = capsys.readouterr().out
    assert "11 colour frames at 30 fps" in out and "1 frames without depth, 2 depth frames unused" in out
    assert (tmp_path / "root" / "videos" / "kinect.mp4").is_file()
    assert tool.main([str(tmp_path / "missing.bag"), str(tmp_path / "root")]) == 2
    assert "recording not found" in capsys.readouterr().err
