"""Native RGB-D recordings as inputs: Azure Kinect / Orbbec Femto MKV and Intel RealSense .bag.

    from r3d.data.recordings import open_recording
    rec = open_recording("session.mkv")          # or "session.bag"
    rgb = rec.read_rgb([0, 5, 10])               # (3, H, W, 3) uint8
    depth = rec.depth_store().read([0, 5, 10])   # (3, h, w) float32 metres, depth paired with those colour frames

`r3d.data.recordings.common` describes the frame clock and the colour↔depth pairing; one module per format
(`mkv`, `bag`) registers its reader under its file suffix; `convert` writes a recording into the folder layout.
"""
from .common import (READERS, Pairing, Recording, RecordingDepthStore, RecordingIndex, StreamIndex, is_recording,
                     open_recording, pair_nearest, register_reader)
from .bag import RealSenseBagRecording
from .mkv import K4aMkvRecording

__all__ = ["READERS", "K4aMkvRecording", "Pairing", "Recording", "RecordingDepthStore", "RealSenseBagRecording",
           "RecordingIndex", "StreamIndex", "is_recording", "open_recording", "pair_nearest", "register_reader"]
