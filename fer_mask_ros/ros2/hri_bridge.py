"""hri_bridge on ROS 2: the graph's faces and smoothed expressions as ROS4HRI (REP-155) topics, hri_msgs 2.x.

    python -m fer_mask_ros.ros2.hri_bridge --ros-args -r __ns:=/fer_mask -r image:=camera/front/image_raw

Subscribes image (sensor-data QoS), faces and emotion_array, paired on the header stamp. Publishes
<prefix>/faces/tracked (hri_msgs/msg/IdsList) and per face id f<N>: roi (NormalizedRegionOfInterest2D), cropped and
aligned (sensor_msgs/msg/Image bgr8, crop_width x crop_height), landmarks (FacialLandmarks, 5 of 70 points),
expression (Expression: expression, valence, arousal, confidence), masked (std_msgs/msg/Bool, ours). Every header
is the source image's; a face's publishers go when it has been unseen for forget_after_s (image time). No TF frames
(face_<id>, gaze_<id>) here: the ROS 1 bridge has them. Parameters: config/hri_bridge.yaml (those it uses). Without
hri_msgs the node says in one line why it is off (make setup-ros2 builds it from HRI_MSGS2_SRC).
The conversions are the core's (perception/hri_face.py, interaction/affect.py), as on ROS 1.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Dict, Optional

from fer_mask_ros_interfaces.msg import EmotionArray, FaceArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from fer_mask_ros.interaction.affect import affect
from fer_mask_ros.perception.hri_face import (
    aligned_face,
    check_id_prefix,
    cropped_face,
    face_id,
    normalized_landmarks,
    normalized_roi,
)
from fer_mask_ros.ros2.convert import array_to_image, msg_to_bgr
from fer_mask_ros.ros2.runtime import Counts, Diagnostics, NodeStartError, Params, image_qos, run_node, stamp_key
from fer_mask_ros.ros2.runtime import stamp_to_sec as _sec

FACE_TOPICS = ("roi", "cropped", "aligned", "landmarks", "expression", "masked")


def hri_msgs_missing() -> Optional[str]:
    try:
        import hri_msgs.msg  # noqa: F401, PLC0415
    except ImportError as exc:
        return (f"hri_msgs for ROS 2 (ROS4HRI, https://github.com/ros4hri/hri_msgs, BSD) is not installed ({exc}): "
                "put its ROS 2 source beside this repository as ../shared/ros4hri/hri_msgs-ros2, or name it with "
                "HRI_MSGS2_SRC=/path, and run make setup-ros2")
    return None


class HriBridgeNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("hri_bridge", **kwargs)
        self.params = p = Params(self, "hri_bridge")
        reason = hri_msgs_missing()
        if reason:
            raise NodeStartError(f"hri_bridge: off: {reason}")
        from hri_msgs.msg import Expression, FacialLandmarks, IdsList, NormalizedRegionOfInterest2D  # noqa: PLC0415

        self.types = {"roi": NormalizedRegionOfInterest2D, "cropped": Image, "aligned": Image,
                      "landmarks": FacialLandmarks, "expression": Expression, "masked": Bool}
        self.ids_list = IdsList
        prefix = str(p.get("prefix"))
        self.prefix = (prefix if prefix.startswith("/") else self.get_namespace().rstrip("/") + "/" + prefix)
        self.prefix = self.prefix.rstrip("/")
        try:
            self.id_prefix = check_id_prefix(str(p.get("id_prefix")))
        except ValueError as exc:
            raise NodeStartError(f"hri_bridge: {exc}") from None
        self.crop = (int(p.get("crop_width")), int(p.get("crop_height")))
        self.forget_after_s = float(p.get("forget_after_s"))
        self.max_faces = int(p.get("max_faces", 32))
        self.faces: Dict[str, Dict[str, Any]] = {}  # id -> topic name -> publisher
        self.last_seen: Dict[str, float] = {}
        self.counts = Counts()
        self.appeared = self.left = self.faces_dropped = 0
        self._parts: OrderedDict[tuple, Dict[str, Any]] = OrderedDict()  # stamp -> {image, faces, emotions}
        self._queue = int(p.get("sync_queue_size"))
        self._lock = threading.Lock()
        self.tracked_pub = self.create_publisher(IdsList, f"{self.prefix}/faces/tracked", 5)
        group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, "image", lambda m: self.on_part("image", m), image_qos(self._queue),
                                 callback_group=group)
        self.create_subscription(FaceArray, "faces", lambda m: self.on_part("faces", m), self._queue,
                                 callback_group=group)
        self.create_subscription(EmotionArray, "emotion_array", lambda m: self.on_part("emotions", m), self._queue,
                                 callback_group=group)
        Diagnostics(self, self.diag_fields)
        self.get_logger().info(f"hri_bridge: REP-155 faces under {self.prefix}/faces (ids {self.id_prefix}<n>)")

    def on_part(self, kind: str, msg: Any) -> None:
        key = stamp_key(msg.header.stamp)
        with self._lock:
            parts = self._parts.setdefault(key, {})
            parts[kind] = msg
            while len(self._parts) > self._queue:
                self._parts.popitem(last=False)
            if len(parts) < 3:
                return
            del self._parts[key]
        t0 = time.monotonic()
        try:
            self.frame(parts["image"], parts["faces"], parts["emotions"])
        except Exception as exc:  # a bad message must not stop the bridge
            self.counts.error(f"{type(exc).__name__}: {exc}")
            self.get_logger().error(f"hri_bridge: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)
            return
        self.counts.add(time.monotonic() - t0)

    def frame(self, image: Any, faces: Any, emotions: Any) -> None:
        header, t = emotions.header, _sec(emotions.header.stamp)
        width, height = int(faces.image_width or image.width), int(faces.image_height or image.height)
        by_track = {int(f.id): f for f in faces.faces}
        present = OrderedDict()
        for e in emotions.emotions:
            if int(e.face_id) > 0:
                present.setdefault(face_id(e.face_id, self.id_prefix), e)
        gone = [f for f, seen in self.last_seen.items() if f not in present and abs(t - seen) > self.forget_after_s]
        for fid in gone:
            for pub in self.faces.pop(fid).values():
                self.destroy_publisher(pub)
            del self.last_seen[fid]
            self.left += 1
        for fid in list(present):
            if fid not in self.faces:
                if len(self.faces) >= self.max_faces:
                    self.faces_dropped += 1
                    del present[fid]
                    continue
                base = f"{self.prefix}/faces/{fid}"
                self.faces[fid] = {n: self.create_publisher(self.types[n], f"{base}/{n}", 5) for n in FACE_TOPICS}
                self.appeared += 1
            self.last_seen[fid] = t
        self.tracked_pub.publish(self.ids_list(header=header, ids=list(self.faces)))
        bgr = None
        for fid, e in present.items():
            pubs, face = self.faces[fid], by_track.get(int(e.face_id))
            box = (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height)
            a = affect(e.emotion, e.confidence, list(e.labels), list(e.probabilities))
            pubs["expression"].publish(self.types["expression"](header=header, expression=a.expression,
                                                                valence=a.valence, arousal=a.arousal,
                                                                confidence=a.confidence))
            pubs["masked"].publish(Bool(data=bool(e.masked)))
            c = min(1.0, max(0.0, float(face.score) if face is not None else float(e.confidence)))
            xmin, ymin, xmax, ymax = normalized_roi(box, width, height)
            pubs["roi"].publish(self.types["roi"](header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=c))
            landmarks = list(face.landmarks) if face is not None and face.has_landmarks else None
            if landmarks is not None:
                from hri_msgs.msg import NormalizedPointOfInterest2D as Point  # noqa: PLC0415, N814

                points = [Point(x=x, y=y, c=pc) for x, y, pc in normalized_landmarks(landmarks, width, height, c)]
                pubs["landmarks"].publish(self.types["landmarks"](header=header, landmarks=points, width=width,
                                                                  height=height))
            wants = {n: pubs[n].get_subscription_count() > 0 for n in ("cropped", "aligned")}
            if any(wants.values()):
                if bgr is None:
                    bgr = msg_to_bgr(image)
                if wants["cropped"]:
                    pubs["cropped"].publish(array_to_image(cropped_face(bgr, box, *self.crop), "bgr8", header))
                if wants["aligned"]:
                    aligned, _ = aligned_face(bgr, landmarks, box, *self.crop)
                    pubs["aligned"].publish(array_to_image(aligned, "bgr8", header))

    def diag_fields(self):
        d = self.counts.fields()
        d.update(faces_tracked=len(self.faces), faces_appeared=self.appeared, faces_left=self.left,
                 faces_dropped=self.faces_dropped, prefix=self.prefix)
        return d


def main(argv=None) -> int:
    return run_node(HriBridgeNode, "hri_bridge", argv)


if __name__ == "__main__":
    raise SystemExit(main())
