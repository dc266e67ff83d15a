"""usb_camera on ROS 2: a webcam (cv2.VideoCapture), or a video file standing in for one, as a camera.

    python -m fer_mask_ros.ros2.usb_camera --ros-args -r __ns:=/fer_mask -p device:=/path/video.mp4 \
        -r image_raw:=camera/front/image_raw -r camera_info:=camera/front/camera_info

Publishes image_raw (bgr8, sensor-data QoS) and camera_info (nominal pinhole from hfov_deg) with frame_id;
/diagnostics. Parameters: config/usb_camera.yaml (device, fps, width, height, frame_id, hfov_deg, loop). A device
that does not open: one FATAL line, exit 2. A camera that stops giving frames is reopened (warned, throttled); a video
file loops, or (loop false) the node ends at its end.
"""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from fer_mask_ros.imaging import open_video_capture
from fer_mask_ros.ros2.convert import array_to_image, camera_info
from fer_mask_ros.ros2.runtime import Counts, Diagnostics, NodeStartError, Params, image_qos, run_node

REOPEN_AFTER = 30  # failed grabs in a row before the device is reopened


def open_device(device: Any, width: int, height: int) -> Any:
    import cv2  # noqa: PLC0415

    cap = open_video_capture(device)
    if not cap.isOpened():
        return None
    if width > 0:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height > 0:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return cap


class UsbCameraNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("usb_camera", **kwargs)
        import cv2  # noqa: PLC0415

        self.params = p = Params(self, "usb_camera")
        text = str(p.get("device")).strip()
        self.device = int(text) if text.isdigit() else text
        self.is_file = isinstance(self.device, str) and os.path.isfile(self.device)
        self.size = (int(p.get("width")), int(p.get("height")))
        self.fps, self.frame_id, self.hfov = float(p.get("fps")), str(p.get("frame_id")), float(p.get("hfov_deg"))
        self.loop = bool(p.get("loop"))
        self.cap = open_device(self.device, *self.size)
        if self.cap is None:
            where = f"/dev/video{self.device}" if isinstance(self.device, int) else self.device
            raise NodeStartError(f"usb_camera: cannot open {where} (no such camera or video, or in use)")
        if self.is_file:  # a video plays at its own rate (or fps when lower), as a camera would
            file_fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if 0.5 < file_fps < 1000:
                self.fps = min(self.fps, file_fps) if self.fps > 0 else file_fps
        self.pub_image = self.create_publisher(Image, "image_raw", image_qos())
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", image_qos())
        self.counts = Counts()
        self.failed_grabs = self.reopens = 0
        self.ended = threading.Event()
        Diagnostics(self, self.diag_fields, self.diag_level)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usb_camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        next_t, failed_in_row = time.monotonic(), 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            ok, image = self.cap.read()
            if not ok or image is None:
                failed_in_row += 1
                if self.is_file and self.loop and failed_in_row <= 3:
                    self.cap.release()
                    self.cap = open_device(self.device, *self.size) or self.cap
                    continue
                if self.is_file:
                    self.get_logger().info(f"usb_camera: end of {self.device}")
                    self.ended.set()
                    return
                self.failed_grabs += 1
                self.get_logger().warn(f"usb_camera: no frame from {self.device} ({self.failed_grabs} failed grabs "
                                       "in all); reopening it", throttle_duration_sec=10.0)
                if failed_in_row % REOPEN_AFTER == 0:
                    self.cap.release()
                    self.cap = open_device(self.device, *self.size) or self.cap
                    self.reopens += 1
                self._stop.wait(0.1)
                continue
            failed_in_row = 0
            msg = array_to_image(image, "bgr8")
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = self.frame_id
            self.pub_image.publish(msg)
            vfov = math.degrees(2.0 * math.atan(math.tan(math.radians(self.hfov) / 2.0) * msg.height / msg.width))
            self.pub_info.publish(camera_info(msg.width, msg.height, msg.header, self.hfov, vfov))
            self.counts.add(time.monotonic() - t0)
            if period:
                next_t = max(next_t + period, time.monotonic())
                self._stop.wait(max(0.0, next_t - time.monotonic()))

    def diag_fields(self):
        d = self.counts.fields()
        d.update(device=str(self.device), failed_grabs=self.failed_grabs, reopens=self.reopens)
        return d

    def diag_level(self):
        return self.counts.level("camera frames", float(self.params.get("diag/stale_warn_s")),
                                 float(self.params.get("diag/latency_warn_ms")))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.cap.release()


def main(argv=None) -> int:
    import rclpy  # noqa: PLC0415

    def make() -> UsbCameraNode:
        node = UsbCameraNode()
        node.create_timer(0.5, lambda: rclpy.try_shutdown() if node.ended.is_set() else None)
        return node

    return run_node(make, "usb_camera", argv)


if __name__ == "__main__":
    raise SystemExit(main())
