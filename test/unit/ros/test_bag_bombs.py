"""`analyze` on a bag whose CompressedImage topic carries image bombs: they are skipped (counted in the
notes), never decoded, and the other frames are analysed (it crashed with cv2.error)."""
from __future__ import annotations

import csv
import json

import cv2
import pytest

from fer_mask_ros.cli import main
from fer_mask_ros.simulation.face_frames import FaceFrames
from fer_mask_ros.simulation.hostile_images import png_bomb


def test_bag_with_png_bombs(tmp_path, tiny_model_path):
    rosbag = pytest.importorskip("rosbag")
    import genpy
    from sensor_msgs.msg import CompressedImage

    frames = FaceFrames(320, 240, 1, n_frames=4)
    path = tmp_path / "bombs.bag"
    payloads = [cv2.imencode(".jpg", frames.frame(0))[1].tobytes(), png_bomb(60000, 60000),
                png_bomb(30000, 30000, zero_rows=True), cv2.imencode(".jpg", frames.frame(1))[1].tobytes()]
    with rosbag.Bag(str(path), "w") as bag:
        for i, data in enumerate(payloads):
            msg = CompressedImage(format="png" if data.startswith(b"\x89PNG") else "jpeg", data=data)
            msg.header.stamp = genpy.Time(1_700_000_000 + i, 0)
            bag.write("/cam/compressed", msg, msg.header.stamp)
    out = tmp_path / "out"
    rc = main(["analyze", "--no-progress", str(path), "--output", str(out), "--model", tiny_model_path,
               "--topic", "/cam/compressed"])
    assert rc == 0
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert any("skipped 2 undecodable" in n and "too large" in n for n in notes), notes
    with open(out / "frames.csv", newline="") as f:
        frames_seen = {int(row["frame"]) for row in csv.DictReader(f)}
    assert frames_seen == {0, 3}, frames_seen
