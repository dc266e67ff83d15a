"""A tracked face as ROS4HRI (REP-155) describes it, without ROS: its id string, its region normalised to
[0, 1], its 5 landmarks at their places among the 70 of hri_msgs/FacialLandmarks, the face image scaled,
centred and zero-padded to a fixed size (/humans/faces/<id>/cropped), and the same face aligned: warped by a
similarity (rotation, uniform scale, shift) that puts its 5 landmarks where the ArcFace template has them, so
the eyes are level and at fixed places (/humans/faces/<id>/aligned)."""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_mask_ros.perception.real_face_teacher import ARCFACE_TEMPLATE, FACE_SIZE, similarity_transform

#: REP-155 face ids are short strings starting with a letter; ours are the prefix + the tracker id
DEFAULT_ID_PREFIX = "f"
_ID_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")

#: hri_msgs/FacialLandmarks has 70 points (dlib/OpenPose order); the detector's 5, in its order
#: (eye on the image left, eye on the image right, nose tip, mouth corner image left, image right), go to:
#: RIGHT_PUPIL, LEFT_PUPIL, NOSE, MOUTH_OUTER_RIGHT, MOUTH_OUTER_LEFT. "Right" is the person's right,
#: which a camera (not a mirror) shows on the image left.
LANDMARK_COUNT = 70
LANDMARK_INDICES = (68, 69, 30, 48, 54)


def check_id_prefix(prefix: str) -> str:
    """The prefix if it makes valid REP-155 ids and ROS names (a letter, then up to 15 of [A-Za-z0-9_])."""
    if not _ID_PREFIX.match(prefix or ""):
        raise ValueError(f"face id prefix {prefix!r} must be a letter followed by at most 15 letters, digits or _")
    return prefix


def face_id(track_id: int, prefix: str = DEFAULT_ID_PREFIX) -> str:
    """Tracker id (from 1, never reused in a run) -> REP-155 face id, e.g. 7 -> "f7". ValueError for an
    untracked face (id 0): it has no stable identity to publish topics under."""
    track_id = int(track_id)
    if track_id <= 0:
        raise ValueError(f"face id {track_id}: untracked faces (id 0) have no REP-155 id")
    return f"{prefix}{track_id}"


def normalized_roi(box: Sequence[float], width: int, height: int) -> Tuple[float, float, float, float]:
    """(x, y, w, h) in pixels -> (xmin, ymin, xmax, ymax) in [0, 1] of an image width x height.
    Non-finite values count as 0; ValueError for an image without pixels."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} has no pixels")
    x, y, w, h = (float(v) if np.isfinite(float(v)) else 0.0 for v in box)
    return (_unit(x / width), _unit(y / height), _unit((x + w) / width), _unit((y + h) / height))


def clipped_roi(box: Sequence[float], width: Optional[int] = None,
                height: Optional[int] = None) -> Tuple[int, int, int, int]:
    """(x, y, w, h) in pixels -> whole pixels (x, y, w, h) clipped to an image width x height (sensor_msgs
    RegionOfInterest's fields); a side whose size is None is clipped at 0 only. Non-finite values count as 0;
    a box with no pixel in the image gives w or h 0 (at the image's edge)."""
    x, y, w, h = (float(v) if np.isfinite(float(v)) else 0.0 for v in box)
    x0, y0, x1, y1 = max(0.0, x), max(0.0, y), x + w, y + h
    if width is not None:
        x0, x1 = min(x0, float(width)), min(x1, float(width))
    if height is not None:
        y0, y1 = min(y0, float(height)), min(y1, float(height))
    return int(round(x0)), int(round(y0)), max(0, int(round(x1 - x0))), max(0, int(round(y1 - y0)))


def normalized_landmarks(landmarks: Optional[Sequence[float]], width: int, height: int,
                         confidence: float = 1.0) -> List[Tuple[float, float, float]]:
    """5 landmarks (x0, y0, ..., x4, y4 in pixels, or (5, 2)) -> 70 (x, y, c) in [0, 1] in hri_msgs order;
    the points we do not have (and all of them when `landmarks` is None) are (0, 0, 0)."""
    points = [(0.0, 0.0, 0.0)] * LANDMARK_COUNT
    if landmarks is None:
        return points
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} has no pixels")
    xy = np.asarray(landmarks, dtype=np.float64).reshape(-1)
    if xy.size != 10:
        raise ValueError(f"expected 5 landmarks (10 values), got {xy.size} values")
    c = _unit(float(confidence))
    for k, index in enumerate(LANDMARK_INDICES):
        x, y = xy[2 * k], xy[2 * k + 1]
        if np.isfinite(x) and np.isfinite(y):
            points[index] = (_unit(x / width), _unit(y / height), c)
    return points


def cropped_face(image: np.ndarray, box: Sequence[float], width: int, height: int) -> np.ndarray:
    """The face box of `image` (H, W[, C]) scaled to fit width x height with its aspect ratio kept,
    centred and zero-padded (REP-155 /humans/faces/<id>/cropped). A box outside the image gives zeros."""
    if width <= 0 or height <= 0:
        raise ValueError(f"crop size {width}x{height} has no pixels")
    out = np.zeros((height, width) + image.shape[2:], dtype=image.dtype)
    ih, iw = image.shape[:2]
    x, y, w, h = (float(v) if np.isfinite(float(v)) else 0.0 for v in box)
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(iw, int(round(x + w))), min(ih, int(round(y + h)))
    if x1 <= x0 or y1 <= y0:
        return out
    face = image[y0:y1, x0:x1]
    fh, fw = face.shape[:2]
    scale = min(width / fw, height / fh)
    sw, sh = max(1, min(width, int(round(fw * scale)))), max(1, min(height, int(round(fh * scale))))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(face), (sw, sh), interpolation=interp)
    ox, oy = (width - sw) // 2, (height - sh) // 2
    out[oy:oy + sh, ox:ox + sw] = resized.reshape((sh, sw) + image.shape[2:])
    return out


def aligned_face(image: np.ndarray, landmarks: Optional[Sequence[float]], box: Sequence[float], width: int,
                 height: int) -> Tuple[np.ndarray, bool]:
    """The face warped so that its 5 landmarks (10 values or (5, 2), pixels) land on the ArcFace template scaled
    to fit width x height (centred; zeros outside the image), and True. Without 5 finite landmarks, or eyes on
    one pixel, it is `cropped_face` (not rotated) and False."""
    if width <= 0 or height <= 0:
        raise ValueError(f"aligned size {width}x{height} has no pixels")
    points = None if landmarks is None else np.asarray(landmarks, dtype=np.float64).reshape(-1)
    if points is None or points.size != 10 or not np.all(np.isfinite(points)):
        return cropped_face(image, box, width, height), False
    points = points.reshape(5, 2)
    if np.hypot(*(points[1] - points[0])) < 1.0:
        return cropped_face(image, box, width, height), False
    scale = min(width, height) / float(FACE_SIZE)
    template = ARCFACE_TEMPLATE * scale + [(width - FACE_SIZE * scale) / 2.0, (height - FACE_SIZE * scale) / 2.0]
    m = similarity_transform(points, template)
    out = cv2.warpAffine(np.ascontiguousarray(image), m, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape((height, width) + image.shape[2:]), True


def _unit(v: float) -> float:
    return min(1.0, max(0.0, float(v)))
