"""nao_camera on ROS 2: NAO camera over qi -> image_raw (sensor_msgs/msg/Image rgb8, sensor-data QoS), camera_info.

    python -m fer_mask_ros.ros2.nao_camera --ros-args -r __ns:=/fer_mask -p nao_ip:=192.168.1.10 \
        -r image_raw:=camera/front/image_raw -r camera_info:=camera/front/camera_info

Parameters: config/nao_camera.yaml (camera, resolution, fps, frame_id, use_robot_stamp, nao_ip, nao_port, nao_url,
nao_user; the password only from $NAO_PASSWORD), plus diag.* thresholds. Keeps trying to (re)connect.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from fer_mask_ros.ros2.convert import array_to_image, camera_info
from fer_mask_ros.ros2.runtime import Counts, Diagnostics, NodeStartError, Params, exit_now, image_qos, run_node

FRAME_IDS = {0: "CameraTop_optical_frame", 1: "CameraBottom_optical_frame"}
HFOV_DEG, VFOV_DEG = 56.3, 43.7  # NAO V6


def nao_url(params: Params) -> str:
    from fer_mask_ros.robot.connection import make_url  # noqa: PLC0415

    url = str(params.get("nao_url", ""))
    return url or make_url(str(params.get("nao_ip", "127.0.0.1")), int(params.get("nao_port", 9559)))


class NaoCameraNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("nao_camera", **kwargs)
        self.params = Params(self, "nao_camera")
        from fer_mask_ros.robot.camera import NaoCamera  # noqa: PLC0415
        from fer_mask_ros.robot.connection import NaoConnection  # noqa: PLC0415

        p = self.params
        self.url = nao_url(p)
        self.fps = float(p.get("fps"))
        self.frame_id = str(p.get("frame_id")) or FRAME_IDS.get(int(p.get("camera")), FRAME_IDS[0])
        self.use_robot_stamp = bool(p.get("use_robot_stamp"))
        try:
            self.connection = NaoConnection(self.url, user=str(p.get("nao_user", "")) or None)
            self.camera = NaoCamera(self.connection, camera=int(p.get("camera")), resolution=p.get("resolution"),
                                    colorspace=11, fps=int(round(self.fps)), name="fer_mask_ros_camera")
        except Exception as exc:
            raise NodeStartError(f"nao_camera: {exc}") from None
        self.pub_image = self.create_publisher(Image, "image_raw", image_qos())
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", image_qos())
        self.counts = Counts()
        Diagnostics(self, self.diag_fields, self.diag_level, hardware_id=f"NAO {self.url}")
        self._stop = threading.Event()
        self.connection.start(wait=0.0)
        self._thread = threading.Thread(target=self._run, name="nao_camera", daemon=True)
        self._thread.start()
        self.get_logger().info(f"nao_camera: {self.url}, camera {self.camera.camera}, "
                               f"{self.camera.size[0]}x{self.camera.size[1]} at {self.fps:g} fps")

    def _run(self) -> None:
        period = 1.0 / max(self.fps, 1e-3)
        next_t = time.monotonic()
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                got = self.camera.grab()
                if got is not None:
                    self.publish(*got, t0)
            except Exception as exc:  # the grab thread never dies
                self.counts.error(f"{type(exc).__name__}: {exc}")
            next_t = max(next_t + period, time.monotonic())
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def publish(self, rgb: Any, robot_stamp: float, t0: Optional[float] = None) -> None:
        from builtin_interfaces.msg import Time  # noqa: PLC0415

        msg = array_to_image(rgb, "rgb8")
        if self.use_robot_stamp:
            msg.header.stamp = Time(sec=int(robot_stamp), nanosec=int((robot_stamp % 1.0) * 1e9))
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        self.pub_image.publish(msg)
        self.pub_info.publish(camera_info(msg.width, msg.height, msg.header, HFOV_DEG, VFOV_DEG))
        self.counts.add(time.monotonic() - (t0 or time.monotonic()))

    def diag_fields(self):
        d = self.counts.fields()
        d.update(grab_failures=self.camera.failures, camera_last_error=self.camera.last_error or "")
        d.update({"nao_" + k: v for k, v in self.connection.diagnostics().items()})
        return d

    def diag_level(self):
        if not self.connection.connected:
            return 2, f"NAO {self.connection.state}: {self.connection.last_error or self.url}"
        return self.counts.level("camera images", float(self.params.get("diag/stale_warn_s")),
                                 float(self.params.get("diag/latency_warn_ms")))

    def close(self) -> None:
        self._stop.set()
        closer = threading.Thread(target=lambda: (self.camera.close(), self.connection.close()), daemon=True)
        closer.start()
        closer.join(2.0)  # never hang on a robot that is already gone


def main(argv=None) -> int:
    return run_node(NaoCameraNode, "nao_camera", argv)


if __name__ == "__main__":
    exit_now(main())  # qi: no native teardown at exit
