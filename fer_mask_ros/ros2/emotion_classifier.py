"""emotion_classifier on ROS 2: image + the FaceArray of the same image -> EmotionStamped per face; classify_image.

    python -m fer_mask_ros.ros2.emotion_classifier --ros-args -r __ns:=/fer_mask -r image:=camera/front/image_raw

Subscribes image (sensor-data QoS) and faces, paired on the header stamp (exact; nearest within sync_slop_s when it
is > 0; at most sync_queue_size images kept). Publishes emotions (one per face, smoothed per face id, header = the
image header), emotion_array (one per paired image), /diagnostics. Service classify_image
(fer_mask_ros_interfaces/srv/ClassifyImage): detect + classify one image, no smoothing. Parameters:
config/emotion_classifier.yaml.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from fer_mask_ros_interfaces.msg import EmotionArray, EmotionStamped, FaceArray
from fer_mask_ros_interfaces.srv import ClassifyImage
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from fer_mask_ros.ros2.convert import emotion_msg, image_to_bgr, msg_to_bgr, tracked_faces_from_msg
from fer_mask_ros.ros2.runtime import (
    Counts,
    Diagnostics,
    NodeStartError,
    Params,
    StampMatcher,
    image_qos,
    run_node,
    stamp_to_sec,
)


class EmotionClassifierNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("emotion_classifier", **kwargs)
        self.params = p = Params(self, "emotion_classifier")
        from fer_mask_ros.perception.classifier import EmotionClassifier  # noqa: PLC0415
        from fer_mask_ros.perception.pipeline import FacePipeline  # noqa: PLC0415
        from fer_mask_ros.perception.schedule import ClassifySchedule  # noqa: PLC0415
        from fer_mask_ros.perception.zoo import make_zoo  # noqa: PLC0415

        options = {"backend": str(p.get("backend"))}
        if int(p.get("num_threads")) > 0:
            options["num_threads"] = int(p.get("num_threads"))
        self._threads = options.get("num_threads")
        try:
            self.classifier = EmotionClassifier(p.get("model") or None, **options)
            # classifier: one zoo member, or the fusion of them (models/ZOO.md); our net gives the mask flag
            self.zoo = make_zoo(str(p.get("classifier")), self._threads, classifier=self.classifier)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else repr(exc)
            raise NodeStartError(f"emotion_classifier: cannot load the expression model: {first}") from None
        try:
            rates = {str(k): float(v) for k, v in p.group("classify_hz").items()}
            schedule = ClassifySchedule(rates, refind_s=float(p.get("classify_refind_s")))
            self.pipeline = FacePipeline(zoo=self.zoo, schedule=schedule,
                                         half_life_s=float(p.get("smoothing_half_life_s")),
                                         smoothing_timeout_s=float(p.get("smoothing_timeout_s")))
        except (TypeError, ValueError) as exc:
            raise NodeStartError(f"emotion_classifier: classify_hz / classify_refind_s / smoothing_*: {exc}") from None
        self.max_faces = int(p.get("max_faces"))
        self.matcher = StampMatcher(int(p.get("sync_queue_size")), float(p.get("sync_slop_s")))
        self.counts = Counts()
        self.faces_classified = self.faces_dropped = self.faces_outside = self.service_calls = self.service_busy = 0
        self._service_pipeline = None
        self._service_lock = threading.Lock()
        self._service_slots = threading.BoundedSemaphore(int(p.get("service_max_concurrent")))
        self.pub = self.create_publisher(EmotionStamped, "emotions", 20)
        self.pub_array = self.create_publisher(EmotionArray, "emotion_array", 5)
        compressed = str(p.get("transport")) == "compressed"
        self.create_subscription(CompressedImage if compressed else Image,
                                 "image/compressed" if compressed else "image", self.matcher.add_image,
                                 image_qos(int(p.get("sync_queue_size"))), callback_group=ReentrantCallbackGroup())
        # keep last 1: when classifying is slower than the camera, the newest FaceArray wins
        self.create_subscription(FaceArray, "faces", self.on_faces, 1, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(ClassifyImage, "classify_image", self.on_classify,
                            callback_group=ReentrantCallbackGroup())
        Diagnostics(self, self.diag_fields, self.diag_level)

    def on_faces(self, faces_msg: Any) -> None:
        image = self.matcher.match(faces_msg)
        if image is None:
            return
        t0 = time.monotonic()
        out = EmotionArray(header=image.header)
        if faces_msg.faces:
            try:
                bgr = msg_to_bgr(image)
            except ValueError as exc:
                self.counts.bad(str(exc))
                return
            h, w = bgr.shape[:2]
            faces = [f for f in tracked_faces_from_msg(faces_msg) if has_pixels(f.detection.box, w, h)]
            self.faces_outside += len(faces_msg.faces) - len(faces)  # never classified, nor spoken about
            if len(faces) > self.max_faces:
                self.faces_dropped += len(faces) - self.max_faces
                faces = sorted(faces, key=lambda f: -f.detection.score)[:self.max_faces]
            try:
                results = self.pipeline.classify(bgr, faces, stamp_to_sec(image.header.stamp), smooth=True)
            except Exception as exc:  # counted, the node goes on
                self.counts.error(f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"emotion_classifier: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)
                return
            for r in results:
                msg = emotion_msg(image.header, r.track_id, r.detection, r.prediction, w, h)
                self.pub.publish(msg)
                out.emotions.append(msg)
            self.faces_classified += len(results)
        self.pub_array.publish(out)
        self.counts.add(time.monotonic() - t0)

    def on_classify(self, request: Any, response: Any) -> Any:
        """classify_image: detect + classify one image, as `python -m fer_mask_ros classify` does; an empty answer
        for a bad image or while ~service_max_concurrent calls run (counted in the diagnostics)."""
        self.service_calls += 1
        if not self._service_slots.acquire(blocking=False):
            self.service_busy += 1
            return response
        try:
            bgr = image_to_bgr(request.image)
            h, w = bgr.shape[:2]
            with self._service_lock:
                if self._service_pipeline is None:
                    from fer_mask_ros.perception.detection import detector_from_settings  # noqa: PLC0415
                    from fer_mask_ros.perception.pipeline import FacePipeline  # noqa: PLC0415
                    from fer_mask_ros.perception.zoo import make_zoo  # noqa: PLC0415

                    detector = detector_from_settings({"detector": self.params.get("detector"),
                                                       "detector_model": self.params.get("detector_model"),
                                                       "score_threshold": self.params.get("score_threshold")})
                    still = str(self.params.get("still_classifier"))  # photos: the fusion by default
                    zoo = self.zoo if still == self.zoo.name else make_zoo(still, self._threads,
                                                                           classifier=self.classifier)
                    self._service_pipeline = FacePipeline(detector=detector, zoo=zoo)
            from fer_mask_ros.perception.photo import classify_image  # noqa: PLC0415

            results = classify_image(self._service_pipeline, bgr, stamp_to_sec(request.image.header.stamp))
            response.emotions = [emotion_msg(request.image.header, r.track_id, r.detection, r.prediction, w, h)
                                 for r in results]
        except ValueError as exc:
            self.counts.bad(str(exc))
            self.get_logger().warn(f"emotion_classifier: classify_image: {exc}", throttle_duration_sec=5.0)
        finally:
            self._service_slots.release()
        return response

    def diag_fields(self):
        d = self.counts.fields()
        d.update(faces_classified=self.faces_classified, faces_dropped=self.faces_dropped,
                 faces_outside=self.faces_outside,
                 unmatched_faces=self.matcher.unmatched, service_calls=self.service_calls,
                 service_busy=self.service_busy, backend=getattr(self.classifier, "backend", ""),
                 classifier=self.zoo.name, fresh_share=round(self.pipeline.schedule.fresh_share, 4))
        return d

    def diag_level(self):
        return self.counts.level("image + faces pairs", float(self.params.get("diag/stale_warn_s")),
                                 float(self.params.get("diag/latency_warn_ms")))


def has_pixels(box, width: int, height: int) -> bool:
    """A face box with at least one pixel inside the image (the ROS 1 node skips the others the same way)."""
    x, y, w, h = box
    return w > 0 and h > 0 and x < width and y < height and x + w > 0 and y + h > 0


def main(argv=None) -> int:
    return run_node(EmotionClassifierNode, "emotion_classifier", argv)


if __name__ == "__main__":
    raise SystemExit(main())
