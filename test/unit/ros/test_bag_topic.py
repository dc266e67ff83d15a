"""BagSource with the default topic opens a record.launch bag: /<ns>/camera/<front|bottom>/image_raw[/compressed]."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

rosbag = pytest.importorskip("rosbag")
sensor_msgs = pytest.importorskip("sensor_msgs.msg")
genpy = pytest.importorskip("genpy")

from fer_mask_ros.errors import AnalysisError  # noqa: E402
from fer_mask_ros.ros.bag import BagSource  # noqa: E402


def write_bag(path, topics):
    frame = np.full((48, 64, 3), 120, np.uint8)
    with rosbag.Bag(str(path), "w") as bag:
        for i in range(3):
            t = genpy.Time(100 + i)
            for topic in topics:
                msg = sensor_msgs.CompressedImage(format="jpeg", data=cv2.imencode(".jpg", frame)[1].tobytes())
                msg.header.stamp = t
                bag.write(topic, msg, t)


def test_record_launch_topic_is_found(tmp_path):
    path = tmp_path / "rec.bag"
    write_bag(path, ["/robot1/camera/bottom/image_raw/compressed"])
    source = BagSource(str(path), faces_topic=None)
    assert source.topic == "/robot1/camera/bottom/image_raw/compressed"
    assert source.total == 3


def test_two_cameras_still_ask(tmp_path):
    path = tmp_path / "two.bag"
    write_bag(path, ["/robot1/camera/front/image_raw/compressed", "/robot2/camera/front/image_raw/compressed"])
    with pytest.raises(AnalysisError, match="choose one with --topic"):
        BagSource(str(path), faces_topic=None)
