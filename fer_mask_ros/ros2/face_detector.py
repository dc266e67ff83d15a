"""face_detector on ROS 2: image -> faces (fer_mask_ros_interfaces/msg/FaceArray, header = the image header).

    python -m fer_mask_ros.ros2.face_detector --ros-args -r __ns:=/fer_mask -r image:=camera/front/image_raw

Subscribes image (sensor-data QoS, keep last 1: the newest frame wins); publishes faces and image_annotated (only
while someone subscribes), /diagnostics. Parameters: config/face_detector.yaml (detector, detector_model,
score_threshold, min_face, num_threads, full_scan_interval, tracker.*, publish_annotated, diag.*); transport
`compressed` subscribes image/compressed. Bad images are skipped and counted (a throttled warning).
"""
from __future__ import annotations

import time
from typing import Any

import cv2
from fer_mask_ros_interfaces.msg import FaceArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from fer_mask_ros.ros2.convert import array_to_image, face_array_msg, msg_to_bgr
from fer_mask_ros.ros2.runtime import Counts, Diagnostics, NodeStartError, Params, image_qos, run_node, stamp_to_sec


class FaceDetectorNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("face_detector", **kwargs)
        self.params = p = Params(self, "face_detector")
        from fer_mask_ros.perception.detection import detector_from_settings  # noqa: PLC0415
        from fer_mask_ros.perception.pipeline import FacePipeline  # noqa: PLC0415
        from fer_mask_ros.perception.tracking import Tracker  # noqa: PLC0415

        settings = {"detector": p.get("detector"), "detector_model": p.get("detector_model"),
                    "score_threshold": p.get("score_threshold"), "min_face": p.get("min_face", 0),
                    "num_threads": p.get("num_threads")}
        try:
            detector = detector_from_settings(settings)
        except Exception as exc:
            raise NodeStartError(f"face_detector: cannot load the face detector: {exc}") from None
        try:
            self.pipeline = FacePipeline(detector=detector, full_scan_interval=float(p.get("full_scan_interval")),
                                         tracker=Tracker.from_settings(p.group("tracker")))
        except ValueError as exc:
            raise NodeStartError(f"face_detector: full_scan_interval / tracker: {exc}") from None
        self.counts = Counts()
        self.faces_seen = 0
        self.pub_faces = self.create_publisher(FaceArray, "faces", 10)
        self.pub_image = self.create_publisher(Image, "image_annotated", image_qos())
        compressed = str(p.get("transport")) == "compressed"
        self.create_subscription(CompressedImage if compressed else Image,
                                 "image/compressed" if compressed else "image", self.on_image, image_qos(1),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        Diagnostics(self, self.diag_fields, self.diag_level)

    def on_image(self, msg: Any) -> None:
        t0 = time.monotonic()
        try:
            bgr = msg_to_bgr(msg)
        except ValueError as exc:
            self.counts.bad(str(exc))
            self.get_logger().warn(f"face_detector: skipped a bad image ({self.counts.bad_input} in all): {exc}",
                                   throttle_duration_sec=5.0)
            return
        try:
            faces = self.pipeline.detect(bgr, stamp_to_sec(msg.header.stamp))
        except Exception as exc:  # counted, the node goes on
            self.counts.error(f"{type(exc).__name__}: {exc}")
            self.get_logger().error(f"face_detector: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)
            return
        h, w = bgr.shape[:2]
        self.pub_faces.publish(face_array_msg(msg.header, faces, w, h))
        self.faces_seen += len(faces)
        if bool(self.params.get("publish_annotated")) and self.pub_image.get_subscription_count() > 0:
            self.pub_image.publish(array_to_image(annotate(bgr, faces), "bgr8", msg.header))
        self.counts.add(time.monotonic() - t0)

    def diag_fields(self):
        d = self.counts.fields()
        d.update(faces_seen=self.faces_seen, full_scans=self.pipeline.full_scans,
                 region_scans=self.pipeline.region_scans)
        return d

    def diag_level(self):
        return self.counts.level("images", float(self.params.get("diag/stale_warn_s")),
                                 float(self.params.get("diag/latency_warn_ms")))


def annotate(bgr: Any, faces: Any) -> Any:
    out = bgr.copy()
    for f in faces:
        x, y, w, h = (int(round(v)) for v in f.detection.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 200, 0), 2)
        cv2.putText(out, f"#{f.track_id}", (x, max(10, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 200, 0), 1)
    return out


def main(argv=None) -> int:
    return run_node(FaceDetectorNode, "face_detector", argv)


if __name__ == "__main__":
    raise SystemExit(main())
