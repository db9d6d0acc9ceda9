"""Readers: RGB frames through decord (order, duplicates, errors), and every depth store read back bit-exact."""
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest

from fixtures import rgb_frame, write_video
from r3d.data.errors import DataError
from r3d.data.depth_writers import write_depth_ffv1, write_depth_png16
from r3d.data.io import (MkvDepthStore, NpyDepthStore, NpzDepthStore, PngDepthStore, open_depth, probe_video,
                         read_png16, read_rgb_frames)


def _depth_mm(t=4, h=6, w=7, seed=0):
    """uint16 depth covering the whole range: 0, 255, 256, 4095, 65535 and random values."""
    d = np.random.default_rng(seed).integers(0, 65536, (t, h, w), dtype=np.uint16)
    d[0, 0, :5] = [0, 255, 256, 4095, 65535]
    return d


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames = np.stack([rgb_frame(k, 48, 64) for k in range(12)])
    return write_video(tmp_path_factory.mktemp("vid") / "v.mp4", frames, 10.0)


def _pyav_frames(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


# -- RGB ---------------------------------------------------------------------------------------------------------------
def test_probe_video(video):
    assert tuple(probe_video(video)) == (12, 10.0, 48, 64)


def test_read_rgb_order_and_duplicates(video):
    ref = _pyav_frames(video)  # an independent decoder
    idx = [5, 2, 5, 0, 11, 2]
    out = read_rgb_frames(video, idx)
    assert out.shape == (6, 48, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out, ref[idx])
    # the frame index is visible in the pixels: background grey 20 + 6k (mp4v keeps it within ±2)
    assert np.abs(out[:, -1, -1, 1].astype(int) - (20 + 6 * np.array(idx))).max() <= 2
    assert read_rgb_frames(video, []).shape == (0, 48, 64, 3)


def test_read_rgb_width_decord_cannot_batch(tmp_path):
    # decord2 3.4 fails on 48-px-wide frames; the PyAV fallback must return the same frames as OpenCV decodes
    import cv2

    frames = np.stack([rgb_frame(k, 32, 48) for k in range(6)])
    path = write_video(tmp_path / "w48.mp4", frames, 10.0)
    out = read_rgb_frames(path, [4, 1])
    cap = cv2.VideoCapture(str(path))
    ref = []
    for _ in range(5):
        ok, f = cap.read()
        assert ok
        ref.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    assert out.shape == (2, 32, 48, 3)
    assert np.abs(out.astype(int) - np.stack([ref[4], ref[1]]).astype(int)).mean() < 2.0


def test_video_errors_name_the_file(tmp_path, video):
    with pytest.raises(DataError, match=r"v\.mp4: frame index 12 is out of range 0\.\.11"):
        read_rgb_frames(video, [3, 12])
    with pytest.raises(DataError, match=r"v\.mp4: frame index -1"):
        read_rgb_frames(video, [-1])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4: video is empty \(0 bytes\)"):
        probe_video(empty)
    with pytest.raises(DataError, match=r"empty\.mp4: video is empty"):
        read_rgb_frames(empty, [0])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    with pytest.raises(DataError, match=r"junk\.mp4: cannot be decoded"):
        probe_video(junk)
    with pytest.raises(DataError, match=r"missing\.mp4: video not found"):
        probe_video(tmp_path / "missing.mp4")


# -- depth -------------------------------------------------------------------------------------------------------------
def test_png16_round_trip_bit_exact(tmp_path):
    d = _depth_mm()
    for i, f in enumerate(d):
        write_depth_png16(tmp_path / "v" / f"{i:06d}.png", f)
    for i, f in enumerate(d):
        got = read_png16(tmp_path / "v" / f"{i:06d}.png")
        assert got.dtype == np.uint16 and np.array_equal(got, f)
    store = PngDepthStore(tmp_path / "v", 1.0)
    assert store.num_frames == 4
    assert np.array_equal(store.read([3, 0, 3]), d[[3, 0, 3]].astype(np.float32))
    # metres: units × depth_scale
    assert np.allclose(PngDepthStore(tmp_path / "v", 0.001).read([0])[0, 0, :5], [0, 0.255, 0.256, 4.095, 65.535])


def test_png16_after_decord_import_in_subprocess(tmp_path):
    """decord imported BEFORE cv2 (the order that breaks cv2's PNG reader with decord 0.6.0) still reads exactly."""
    d = _depth_mm(t=2)
    for i, f in enumerate(d):
        write_depth_png16(tmp_path / "v" / f"{i:06d}.png", f)
    np.save(tmp_path / "expected.npy", d)
    code = textwrap.dedent(f"""
        import decord  # first, on purpose
        import cv2
        import numpy as np
        from r3d.data.io import PngDepthStore
        d = np.load({str(tmp_path / 'expected.npy')!r})
        img = cv2.imread({str(tmp_path / 'v' / '000001.png')!r}, cv2.IMREAD_UNCHANGED)
        assert img is not None and img.dtype == np.uint16 and np.array_equal(img, d[1]), "cv2.imread"
        got = PngDepthStore({str(tmp_path / 'v')!r}, 1.0).read([1, 0])
        assert np.array_equal(got, d[[1, 0]].astype(np.float32)), "store"
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stderr[-2000:]


def test_png_8bit_and_multichannel_rejected(tmp_path):
    import cv2

    (tmp_path / "v").mkdir()
    cv2.imwrite(str(tmp_path / "v" / "000000.png"), np.full((4, 5), 200, np.uint8))
    with pytest.raises(DataError, match=r"v/000000\.png: uint8 \(8-bit\) PNG where a 16-bit depth PNG is expected"):
        PngDepthStore(tmp_path / "v", 0.001).read([0])
    cv2.imwrite(str(tmp_path / "v" / "000000.png"), np.full((4, 5, 3), 200, np.uint16))
    with pytest.raises(DataError, match=r"000000\.png: depth PNG has 3 channels"):
        read_png16(tmp_path / "v" / "000000.png")
    (tmp_path / "v" / "000000.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"000000\.png: cv2\.imread returned None.*zlib"):
        read_png16(tmp_path / "v" / "000000.png")


def test_png_folder_gaps_and_empty(tmp_path):
    d = _depth_mm(t=3)
    for i in (0, 2):
        write_depth_png16(tmp_path / "v" / f"{i:06d}.png", d[i])
    with pytest.raises(DataError, match=r"v/000001\.png: depth frame missing"):
        PngDepthStore(tmp_path / "v", 0.001)
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match=r"/e: depth folder has no 000000\.png-style frames"):
        PngDepthStore(tmp_path / "e", 0.001)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_uint16_and_float_round_trip(tmp_path, compressed):
    save = np.savez_compressed if compressed else np.savez
    d = _depth_mm()
    save(tmp_path / "u.npz", depth=d, other=np.zeros(3))
    store = NpzDepthStore(tmp_path / "u.npz", 1.0)
    assert store.num_frames == 4 and (store._mmap_args is None) == compressed
    assert np.array_equal(store.read([2, 1, 2]), d[[2, 1, 2]].astype(np.float32))
    assert np.array_equal(NpzDepthStore(tmp_path / "u.npz", 0.001).read([3]), d[[3]].astype(np.float32) *
                          np.float32(0.001))
    metres = np.random.default_rng(1).uniform(0, 8, (3, 5, 4)).astype(np.float32)
    metres[1, 2, 3], metres[2, 0, 0], metres[2, 0, 1] = np.nan, np.inf, -np.inf
    save(tmp_path / "f.npz", depth=metres)
    store = NpzDepthStore(tmp_path / "f.npz", 0.001)  # float data is metres already: the scale is not applied
    got = store.read([0, 1, 2])
    expected = np.where(np.isfinite(metres), metres, 0)
    assert np.array_equal(got, expected) and store.nonfinite == 3
    save(tmp_path / "k.npz", frames=d)
    with pytest.raises(DataError, match=r"k\.npz: no key 'depth' \(keys: \['frames'\]\)"):
        NpzDepthStore(tmp_path / "k.npz", 0.001)


def test_npy_round_trip(tmp_path):
    d = _depth_mm()
    np.save(tmp_path / "u.npy", d)
    assert np.array_equal(NpyDepthStore(tmp_path / "u.npy", 1.0).read([3, 0]), d[[3, 0]].astype(np.float32))
    metres = (d.astype(np.float64) / 1000).astype(np.float32)
    np.save(tmp_path / "m.npy", metres)
    assert np.array_equal(NpyDepthStore(tmp_path / "m.npy", 0.001).read([1]), metres[[1]])
    np.save(tmp_path / "bad.npy", d[0])
    with pytest.raises(DataError, match=r"bad\.npy: array has shape \(6, 7\), expected \(T, H, W\)"):
        NpyDepthStore(tmp_path / "bad.npy", 0.001)


def test_ffv1_mkv_round_trip_bit_exact(tmp_path):
    d = _depth_mm(t=5, h=24, w=32)
    write_depth_ffv1(tmp_path / "v.mkv", d, 29.97)
    store = MkvDepthStore(tmp_path / "v.mkv", 1.0)
    assert store.num_frames == 5 and store.fps == pytest.approx(29.97)
    assert np.array_equal(store.read([4, 0, 2, 4]), d[[4, 0, 2, 4]].astype(np.float32))
    # an 8-bit video is not depth
    with av.open(str(tmp_path / "gray8.mkv"), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, "gray"
        for pkt in s.encode(av.VideoFrame.from_ndarray(np.zeros((24, 32), np.uint8), format="gray")):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with pytest.raises(DataError, match=r"gray8\.mkv: no 16-bit gray video stream"):
        MkvDepthStore(tmp_path / "gray8.mkv", 0.001)


def test_open_depth_picks_what_exists(tmp_path):
    d = _depth_mm(t=2)
    assert open_depth(tmp_path, "a", 0.001) is None  # no depth/ at all
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "a.npy", d)
    np.savez(tmp_path / "depth" / "b.npz", depth=d)
    write_depth_ffv1(tmp_path / "depth" / "c.mkv", d, 10.0)
    write_depth_png16(tmp_path / "depth" / "e" / "000000.png", d[0])
    np.savez(tmp_path / "depth" / "e.npz", depth=d)  # the PNG folder comes first
    kinds = {v: open_depth(tmp_path, v, 0.001) for v in "abcde"}
    assert {v: (s.kind if s else None) for v, s in kinds.items()} == {"a": "npy", "b": "npz", "c": "mkv", "d": None,
                                                                     "e": "png"}
    assert np.array_equal(kinds["c"].read([1]), d[[1]].astype(np.float32) * np.float32(0.001))


def test_writers_reject_wrong_dtype(tmp_path):
    with pytest.raises(ValueError, match="uint16"):
        write_depth_png16(tmp_path / "x.png", np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="3-D uint16"):
        write_depth_ffv1(tmp_path / "x.mkv", np.zeros((3, 3), np.uint16), 10.0)
