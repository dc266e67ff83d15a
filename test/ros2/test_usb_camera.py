"""The ROS 2 usb_camera on a video file (the bundled clip): bgr8 frames with its frame_id and a matching camera_info;
a device that does not open is refused in one line."""
from __future__ import annotations

import threading

import pytest

from fer_mask_ros.config import DATA_DIR

CLIP = str(DATA_DIR / "demo_clip.avi")


def test_video_file_as_camera(ros):
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    from fer_mask_ros.ros2.runtime import image_qos
    from fer_mask_ros.ros2.usb_camera import UsbCameraNode

    got = {"image": [], "info": []}
    enough = threading.Event()

    def keep(kind):
        def cb(msg):
            got[kind].append(msg)
            if len(got["image"]) >= 5 and got["info"]:
                enough.set()
        return cb

    node = UsbCameraNode(parameter_overrides=[Parameter("device", value=CLIP), Parameter("fps", value=30),
                                              Parameter("frame_id", value="clip_frame")])
    watcher = ros.create_node("usb_watcher")
    watcher.create_subscription(Image, "image_raw", keep("image"), image_qos(10))
    watcher.create_subscription(CameraInfo, "camera_info", keep("info"), image_qos(10))
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    executor.add_node(watcher)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        assert enough.wait(120.0), f"{len(got['image'])} images, {len(got['info'])} camera_info"
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.close()
    image, info = got["image"][0], got["info"][0]
    assert (image.width, image.height, image.encoding, image.header.frame_id) == (320, 240, "bgr8", "clip_frame")
    assert (info.width, info.height, info.header.frame_id) == (320, 240, "clip_frame") and info.k[0] > 0


def test_a_missing_device_is_refused(ros, tmp_path):
    from rclpy.parameter import Parameter

    from fer_mask_ros.ros2.runtime import NodeStartError
    from fer_mask_ros.ros2.usb_camera import UsbCameraNode

    missing = str(tmp_path / "no_such_video.mp4")
    with pytest.raises(NodeStartError, match="usb_camera: cannot open .*no_such_video.mp4"):
        UsbCameraNode(parameter_overrides=[Parameter("device", value=missing)])
