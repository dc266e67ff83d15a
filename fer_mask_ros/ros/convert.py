"""Conversions between ROS messages and the core library's types.

Images are converted with numpy only (no cv_bridge), so that every encoding the core's
`fer_mask_ros.imaging.encoding_to_bgr` knows works the same here, in bag replay and offline.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.hri_face import clipped_roi


def image_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> numpy array (H, W) or (H, W, C) in the message's own encoding (a view, no copy)."""
    from fer_mask_ros.imaging import raw_image_array  # noqa: PLC0415 - keep module import cheap

    return raw_image_array(msg.data, msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian)


def image_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (any encoding the pipeline supports) -> BGR uint8 (H, W, 3)."""
    from fer_mask_ros.imaging import encoding_to_bgr  # noqa: PLC0415 - keep module import cheap

    return encoding_to_bgr(image_to_array(msg), msg.encoding)


def compressed_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG, PNG, ... see imaging.header_size) -> BGR uint8 (H, W, 3); else
    ValueError. The size is read from the header and checked (imaging.MAX_IMAGE_PIXELS) before decoding."""
    from fer_mask_ros.imaging import decode_image  # noqa: PLC0415 - keep module import cheap

    fmt = (msg.format or "?").strip()[:40]
    data = bytes(msg.data)
    if not data:
        raise ValueError(f"empty compressed image (format {fmt!r})")
    try:
        return decode_image(data, "color")
    except ValueError as exc:
        raise ValueError(f"compressed image (format {fmt!r}, {len(data)} bytes): {exc}") from None


def msg_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/Image or sensor_msgs/CompressedImage -> BGR uint8 (H, W, 3); ValueError for bad input."""
    if hasattr(msg, "encoding"):
        return image_to_bgr(msg)
    return compressed_to_bgr(msg)


def image_topic_type(transport: str, base: str = "image") -> tuple:
    """(topic name, message class) for an image_transport-like `transport`: raw -> base (Image),
    compressed -> <resolved base>/compressed (CompressedImage). ValueError for anything else."""
    import rospy  # noqa: PLC0415
    from sensor_msgs.msg import CompressedImage, Image  # noqa: PLC0415

    if transport == "raw":
        return base, Image
    if transport == "compressed":
        return rospy.resolve_name(base) + "/compressed", CompressedImage
    raise ValueError(f"unknown image transport {transport!r}; use raw or compressed")


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """numpy uint8 (H, W[, C]) -> sensor_msgs/Image with `header` copied (same object fields)."""
    from sensor_msgs.msg import Image  # noqa: PLC0415

    arr = np.ascontiguousarray(array)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.strides[0])
    msg.data = arr.tobytes()
    return msg


def camera_info(width: int, height: int, header: Any, hfov_deg: float, vfov_deg: float) -> Any:
    """A nominal pinhole sensor_msgs/CameraInfo (no distortion) for a camera with this field of view."""
    import math  # noqa: PLC0415

    from sensor_msgs.msg import CameraInfo  # noqa: PLC0415

    info = CameraInfo()
    info.header = header
    info.width, info.height = int(width), int(height)
    fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    fy = (height / 2.0) / math.tan(math.radians(vfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info.distortion_model = "plumb_bob"
    info.D = [0.0] * 5
    info.K = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.R = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.P = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def roi_from_box(box: Sequence[float], width: Optional[int] = None, height: Optional[int] = None) -> Any:
    """(x, y, w, h) floats -> sensor_msgs/RegionOfInterest, clipped to the image when its size is given."""
    from sensor_msgs.msg import RegionOfInterest  # noqa: PLC0415

    roi = RegionOfInterest()
    roi.x_offset, roi.y_offset, roi.width, roi.height = clipped_roi(box, width, height)
    roi.do_rectify = False
    return roi


def face_msg(track_id: int, detection: Any, width: Optional[int] = None, height: Optional[int] = None) -> Any:
    """A core Detection (+ tracker id) -> fer_mask_ros/Face."""
    from fer_mask_ros.msg import Face  # noqa: PLC0415

    face = Face()
    face.id = int(track_id)
    face.roi = roi_from_box(detection.box, width, height)
    face.score = float(detection.score)
    lm = getattr(detection, "landmarks", None)
    if lm is not None:
        face.has_landmarks = True
        face.landmarks = [float(v) for v in np.asarray(lm, dtype=np.float32).reshape(-1)[:10]]
    else:
        face.has_landmarks = False
        face.landmarks = [0.0] * 10
    return face


def face_array_msg(header: Any, faces: Sequence[Any], width: int, height: int) -> Any:
    """Tracked faces (objects with .track_id and .detection) -> fer_mask_ros/FaceArray with the image header."""
    from fer_mask_ros.msg import FaceArray  # noqa: PLC0415

    msg = FaceArray()
    msg.header = header
    msg.image_width, msg.image_height = int(width), int(height)
    msg.faces = [face_msg(f.track_id, f.detection, width, height) for f in faces]
    return msg


def detection_from_face(face: Any) -> Any:
    """fer_mask_ros/Face -> core Detection (box from the roi, landmarks when present)."""
    from fer_mask_ros.perception.detection import Detection  # noqa: PLC0415

    r = face.roi
    landmarks = np.asarray(face.landmarks, dtype=np.float32).reshape(5, 2) if face.has_landmarks else None
    return Detection(box=(float(r.x_offset), float(r.y_offset), float(r.width), float(r.height)),
                     score=float(face.score), landmarks=landmarks)


def roi_has_pixels(roi: Any, width: int, height: int) -> bool:
    """True when a sensor_msgs/RegionOfInterest covers at least one pixel of a width x height image
    (False for a roi outside the image and for a 0 x 0 one: nothing there to classify)."""
    x0, y0 = int(roi.x_offset), int(roi.y_offset)
    return min(x0 + int(roi.width), int(width)) > x0 and min(y0 + int(roi.height), int(height)) > y0


def faces_with_pixels(faces: Sequence[Any], width: int, height: int) -> List[Any]:
    """The fer_mask_ros/Face entries whose roi covers at least one pixel of the image (message order kept)."""
    return [f for f in faces if roi_has_pixels(f.roi, width, height)]


def tracked_faces_from_msg(msg: Any) -> List[Any]:
    """fer_mask_ros/FaceArray -> [pipeline.TrackedFace] for FacePipeline.classify."""
    from fer_mask_ros.perception.pipeline import TrackedFace  # noqa: PLC0415

    return [TrackedFace(track_id=int(f.id), detection=detection_from_face(f)) for f in msg.faces]


def emotion_msg(header: Any, face_id: int, detection: Any, prediction: Any,
                width: Optional[int] = None, height: Optional[int] = None) -> Any:
    """A core Prediction for one face -> fer_mask_ros/EmotionStamped with the source image header."""
    from fer_mask_ros.msg import EmotionStamped  # noqa: PLC0415

    msg = EmotionStamped()
    msg.header = header
    msg.face_id = int(face_id)
    msg.roi = roi_from_box(detection.box, width, height)
    msg.emotion = str(prediction.emotion)
    msg.confidence = float(prediction.confidence)
    msg.labels = list(EMOTIONS)
    msg.probabilities = [float(p) for p in np.asarray(prediction.probabilities, dtype=np.float64).reshape(-1)]
    msg.masked = bool(prediction.masked)
    msg.mask_probability = float(prediction.mask_probability)
    return msg


def stamp_to_sec(stamp: Any) -> float:
    return float(stamp.secs) + 1e-9 * float(stamp.nsecs)
