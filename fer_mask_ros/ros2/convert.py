"""Conversions between ROS 2 messages (sensor_msgs, fer_mask_ros_interfaces) and the core library's types.

The same conversions as the ROS 1 side's (numpy only, no cv_bridge, which PyPI's ROS 2 does not carry); the
decoding of pixel encodings is the core's `imaging.encoding_to_bgr`, as everywhere else.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.hri_face import clipped_roi


def image_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/msg/Image -> BGR uint8 (H, W, 3); ValueError for a malformed image or an unknown encoding."""
    from fer_mask_ros.imaging import encoding_to_bgr, raw_image_array  # noqa: PLC0415

    if int(msg.height) == 0 or int(msg.width) == 0:
        raise ValueError(f"malformed {msg.encoding} image: {msg.width}x{msg.height}, step {msg.step}, "
                         f"{len(msg.data)} bytes")
    arr = raw_image_array(msg.data, msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian)
    return encoding_to_bgr(arr.copy(), msg.encoding)


def compressed_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/msg/CompressedImage -> BGR uint8; ValueError for empty or undecodable data."""
    from fer_mask_ros.imaging import decode_image  # noqa: PLC0415

    data = bytes(msg.data)
    if not data:
        raise ValueError(f"empty compressed image (format {msg.format[:40]!r})")
    return decode_image(data, "color")


def msg_to_bgr(msg: Any) -> np.ndarray:
    return image_to_bgr(msg) if hasattr(msg, "encoding") else compressed_to_bgr(msg)


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """numpy uint8 (H, W[, C]) -> sensor_msgs/msg/Image with `header` copied."""
    from sensor_msgs.msg import Image  # noqa: PLC0415

    arr = np.ascontiguousarray(array)
    msg = Image(height=int(arr.shape[0]), width=int(arr.shape[1]), encoding=encoding, is_bigendian=0,
                step=int(arr.strides[0]))
    if header is not None:
        msg.header = header
    msg.data = arr.tobytes()
    return msg


def camera_info(width: int, height: int, header: Any, hfov_deg: float, vfov_deg: float) -> Any:
    """A nominal pinhole sensor_msgs/msg/CameraInfo (no distortion) for this field of view."""
    import math  # noqa: PLC0415

    from sensor_msgs.msg import CameraInfo  # noqa: PLC0415

    fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    fy = (height / 2.0) / math.tan(math.radians(vfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraInfo(header=header, width=int(width), height=int(height), distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def roi_from_box(box: Sequence[float], width: Optional[int] = None, height: Optional[int] = None) -> Any:
    """(x, y, w, h) -> sensor_msgs/msg/RegionOfInterest, clipped to the image when its size is given."""
    from sensor_msgs.msg import RegionOfInterest  # noqa: PLC0415

    x, y, w, h = clipped_roi(box, width, height)
    return RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False)


def face_array_msg(header: Any, faces: Sequence[Any], width: int, height: int) -> Any:
    """Tracked faces (.track_id, .detection) -> fer_mask_ros_interfaces/msg/FaceArray with the image header."""
    from fer_mask_ros_interfaces.msg import Face, FaceArray  # noqa: PLC0415

    out = []
    for f in faces:
        lm = getattr(f.detection, "landmarks", None)
        points = [float(v) for v in np.asarray(lm, dtype=np.float32).reshape(-1)[:10]] if lm is not None else []
        out.append(Face(id=int(f.track_id), roi=roi_from_box(f.detection.box, width, height),
                        score=float(f.detection.score), has_landmarks=lm is not None,
                        landmarks=np.asarray(points or [0.0] * 10, dtype=np.float32)))
    return FaceArray(header=header, image_width=int(width), image_height=int(height), faces=out)


def tracked_faces_from_msg(msg: Any) -> List[Any]:
    """FaceArray -> [pipeline.TrackedFace] for FacePipeline.classify."""
    from fer_mask_ros.perception.detection import Detection  # noqa: PLC0415
    from fer_mask_ros.perception.pipeline import TrackedFace  # noqa: PLC0415

    out = []
    for f in msg.faces:
        r = f.roi
        lm = np.asarray(f.landmarks, dtype=np.float32).reshape(5, 2) if f.has_landmarks else None
        out.append(TrackedFace(track_id=int(f.id), detection=Detection(
            box=(float(r.x_offset), float(r.y_offset), float(r.width), float(r.height)), score=float(f.score),
            landmarks=lm)))
    return out


def emotion_msg(header: Any, face_id: int, detection: Any, prediction: Any,
                width: Optional[int] = None, height: Optional[int] = None) -> Any:
    """A core Prediction for one face -> fer_mask_ros_interfaces/msg/EmotionStamped with the source image header."""
    from fer_mask_ros_interfaces.msg import EmotionStamped  # noqa: PLC0415

    return EmotionStamped(header=header, face_id=int(face_id), roi=roi_from_box(detection.box, width, height),
                          emotion=str(prediction.emotion), confidence=float(prediction.confidence),
                          labels=list(EMOTIONS),
                          probabilities=[float(p) for p in np.asarray(prediction.probabilities).reshape(-1)],
                          masked=bool(prediction.masked), mask_probability=float(prediction.mask_probability))
