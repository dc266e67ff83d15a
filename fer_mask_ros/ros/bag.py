"""The rosbag reader of offline analysis (registered in fer_mask_ros.analysis.sources for .bag files).

See fer_mask_ros.analysis.analyse for how bag stamps and recorded FaceArray / EmotionArray topics are used.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from fer_mask_ros.analysis.sources import DEFAULT_TOPIC, Frame, Sampler
from fer_mask_ros.errors import AnalysisError

IMAGE_TYPES = ("sensor_msgs/Image", "sensor_msgs/CompressedImage")
FACE_ARRAY_TYPE = "fer_mask_ros/FaceArray"
EMOTION_ARRAY_TYPE = "fer_mask_ros/EmotionArray"


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.secs) * 1_000_000_000 + int(stamp.nsecs)


def _pick_topic(topics: Dict[str, Any], msg_type: str, wanted: Optional[str], near: str, what: str,
                path: str) -> Optional[str]:
    """'none' -> None; a name -> it (must exist with that type); 'auto' -> the only one / the one nearest `near`."""
    if wanted in (None, "", "none"):
        return None
    if wanted != "auto":
        if wanted not in topics:
            raise AnalysisError(f"{path}: no topic {wanted} in the bag")
        if topics[wanted].msg_type != msg_type:
            raise AnalysisError(f"{path}: {what} topic {wanted} is {topics[wanted].msg_type}, not {msg_type}")
        return wanted
    found = sorted(t for t, info in topics.items() if info.msg_type == msg_type and info.message_count > 0)
    if len(found) <= 1:
        return found[0] if found else None
    ns = near.rsplit("/", 1)[0]
    same = [t for t in found if t.rsplit("/", 1)[0] == ns]
    if len(same) == 1:
        return same[0]
    raise AnalysisError(f"{path}: several {msg_type} topics ({', '.join(found)}); choose one with --{what}-topic")


def _deserialize(raw: Tuple) -> Optional[Any]:
    """A message from rosbag's raw tuple. A topic may carry both image types: when the bytes do not
    fit the connection's type (a bag written with both on one connection), the other image type is
    tried; None when neither fits."""
    datatype, data, _, _, pytype = raw[:5]
    classes = [pytype]
    try:
        from sensor_msgs.msg import CompressedImage, Image

        classes += [c for c in (Image, CompressedImage) if c._type != datatype]
    except ImportError:
        pass
    for k, cls in enumerate(classes):
        msg = cls()
        try:
            msg.deserialize(data)
        except Exception:  # genpy.DeserializationError, struct.error, UnicodeDecodeError, ...
            continue
        if msg._type == "sensor_msgs/Image" and len(msg.data) != msg.height * msg.step:
            continue
        if k == 0 or _fits(msg, len(data)):
            return msg
    return None


def _fits(msg: Any, size: int) -> bool:
    """Did deserialising consume the whole buffer (a wrong type rarely does)?"""
    import io

    buf = io.BytesIO()
    try:
        msg.serialize(buf)
    except Exception:
        return False
    return len(buf.getvalue()) == size


def bag_open_problem(path: str, exc: BaseException) -> str:
    """Why rosbag.Bag(path) failed, in a few words; an unindexed bag (what a killed `rosbag record` or
    record.launch leaves) says that `rosbag reindex` recovers it."""
    if type(exc).__name__ == "ROSBagUnindexedException":
        return (f"an unindexed bag (a recording that was cut short, e.g. a killed record.launch): "
                f"`rosbag reindex {path}` recovers it (the original is kept as a .orig.bag)")
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"not a readable rosbag ({type(exc).__name__}: {text})"


class BagSource:
    kind = "rosbag"

    def __init__(self, path: str, topic: str = DEFAULT_TOPIC, faces_topic: Optional[str] = "auto",
                 sampler: Optional[Sampler] = None, sync_slop: float = 0.0) -> None:
        self.path = path
        self.topic = topic
        self.sampler = sampler or Sampler()
        self.sync_slop = float(sync_slop)
        self.notes: List[str] = []
        if not os.path.isfile(path):
            raise AnalysisError(f"{path}: no such file")
        try:
            import rosbag
        except ImportError as exc:
            raise AnalysisError(f"{path}: reading .bag files needs ROS 1 (the rosbag Python package: {exc})") from None
        try:
            self._bag = rosbag.Bag(path, "r")
        except Exception as exc:  # ROSBagException, ROSBagFormatException, OSError, ...
            raise AnalysisError(f"{path}: {bag_open_problem(path, exc)}") from None
        topics = self._bag.get_type_and_topic_info().topics
        if topic == DEFAULT_TOPIC and topic not in topics:
            # record.launch's camera topic: /<ns>/camera/<front|bottom>/image_raw[/compressed], when it is the only one
            ours = [t for t, i in topics.items() if i.msg_type in IMAGE_TYPES and i.message_count > 0
                    and re.fullmatch(r"/[^/]+/camera/(front|bottom)/image_raw(/compressed)?", t)]
            topic = ours[0] if len(ours) == 1 else topic
            self.topic = topic
        if topic not in topics or topics[topic].message_count == 0:
            images = sorted(t for t, i in topics.items() if i.msg_type in IMAGE_TYPES and i.message_count > 0)
            hint = f"; image topics in the bag: {', '.join(images)}" if images else "; the bag has no image topics"
            self._bag.close()
            raise AnalysisError(f"{path}: no messages on topic {topic}{hint} (choose one with --topic)")
        self.msg_type = topics[topic].msg_type
        if self.msg_type not in IMAGE_TYPES:
            self._bag.close()
            raise AnalysisError(f"{path}: topic {topic} is {self.msg_type}, not sensor_msgs/Image or CompressedImage")
        self.total = int(topics[topic].message_count)
        freq = topics[topic].frequency
        self._rate = float(freq) if freq and math.isfinite(freq) and freq > 0 else None
        try:
            self.faces_topic = _pick_topic(topics, FACE_ARRAY_TYPE, faces_topic, topic, "faces", path)
            self.emotions_topic = (_pick_topic(topics, EMOTION_ARRAY_TYPE, "auto", self.faces_topic, "emotions", path)
                                   if self.faces_topic else None)
        except AnalysisError:
            self._bag.close()
            raise
        self.frames_read = 0
        self.skipped_bad = 0
        self.live: Dict[Tuple[int, int], Tuple[str, np.ndarray]] = {}  # (stamp ns, face id) -> live answer
        self.start_stamp: Optional[float] = None
        self._last_time = 0.0
        if self.faces_topic and self.sampler.active:
            self.notes.append("--every/--max-fps ignored: the recorded FaceArray decides which frames are processed")

    @staticmethod
    def declared_frames(path: str, topic: str = DEFAULT_TOPIC) -> int:
        """Messages on `topic` by the bag's index (no message is read)."""
        import rosbag

        with rosbag.Bag(path, "r") as bag:
            info = bag.get_type_and_topic_info().topics.get(topic)
        return int(info.message_count) if info is not None else 0

    @property
    def duration(self) -> float:
        return self._last_time

    @property
    def output_fps(self) -> float:
        """Frame rate for the annotated video: the topic's recorded rate (10 when unknown)."""
        return self._rate or 10.0

    def _decode(self, msg: Any) -> Optional[np.ndarray]:
        if getattr(msg, "_type", self.msg_type) == "sensor_msgs/CompressedImage":
            from fer_mask_ros.ros.convert import compressed_to_bgr  # size checked in the header first

            return compressed_to_bgr(msg)
        from fer_mask_ros.ros.convert import image_to_bgr  # the live nodes' own conversion

        return image_to_bgr(msg)

    def _recorded_faces(self) -> Tuple[Dict[int, Any], List[int]]:
        from fer_mask_ros.ros.convert import tracked_faces_from_msg

        processed = None
        if self.emotions_topic:
            processed = set()
            for _, msg, _ in self._bag.read_messages(topics=[self.emotions_topic]):
                key = _stamp_ns(msg.header.stamp)
                processed.add(key)
                for e in msg.emotions:
                    self.live[(key, int(e.face_id))] = (str(e.emotion), np.asarray(e.probabilities, np.float64))
        faces: Dict[int, Any] = {}
        for _, msg, _ in self._bag.read_messages(topics=[self.faces_topic]):
            key = _stamp_ns(msg.header.stamp)
            if processed is None or key in processed:
                faces[key] = tracked_faces_from_msg(msg)
        return faces, sorted(faces)

    def __iter__(self) -> Iterator[Frame]:
        import bisect

        recorded, keys = self._recorded_faces() if self.faces_topic else (None, [])
        slop_ns = int(round(self.sync_slop * 1e9))
        first = None
        try:
            for i, (_, raw, bag_time) in enumerate(self._bag.read_messages(topics=[self.topic], raw=True)):
                self.frames_read = i + 1
                msg = _deserialize(raw)
                if msg is None:
                    self.skipped_bad += 1
                    if self.skipped_bad == 1:
                        self._first_bad = f"message {i}: neither a sensor_msgs/Image nor a CompressedImage"
                    continue
                stamp_msg = msg.header.stamp if _stamp_ns(msg.header.stamp) else bag_time
                key = _stamp_ns(stamp_msg)
                stamp = float(stamp_msg.secs) + 1e-9 * float(stamp_msg.nsecs)  # as the nodes' stamp_to_sec
                if first is None:
                    first = key
                    self.start_stamp = key * 1e-9
                t = (key - first) * 1e-9
                self._last_time = max(self._last_time, t)
                faces = None
                if recorded is not None:
                    match = key if key in recorded else None
                    if match is None and slop_ns > 0 and keys:
                        j = bisect.bisect_left(keys, key)
                        near = [k for k in keys[max(0, j - 1):j + 1] if abs(k - key) <= slop_ns]
                        match = min(near, key=lambda k: abs(k - key)) if near else None
                    if match is None or match not in recorded:
                        continue
                    faces = recorded.pop(match)
                elif not self.sampler.keep(i, t):
                    continue
                try:
                    image = self._decode(msg)
                except ValueError as exc:
                    self.skipped_bad += 1
                    if self.skipped_bad == 1:
                        self._first_bad = f"message {i}: {exc}"
                    continue
                yield Frame(index=i, time=t, stamp=stamp, image=image, faces=faces, key=key)
        finally:
            self._bag.close()
            if self.skipped_bad:
                self.notes.append(f"skipped {self.skipped_bad} undecodable images (first: {self._first_bad})")
