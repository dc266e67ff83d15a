"""A face's head pose in the camera from its 5 landmarks: the ROS4HRI (REP-155) `face_<id>` frame, without ROS.

REP-155's face frame has its origin at the sellion (the deepest point of the nose bridge), x pointing forward
(out of the face), y to the person's left and z up. `head_pose` fits a generic adult face (the 5 points below,
millimetres in that frame) to the detector's 5 landmarks with OpenCV's solvePnP (SQPnP, then Levenberg-Marquardt)
and a pinhole camera, and returns the face frame in the camera's optical frame (x right, y down, z forward; m).

Limits, said plainly: the model is one average face, so the distance scales with the person's true eye
distance (about +-10 % for most adults) and a child's face reads farther away than it is; five points fix yaw
and pitch only roughly (a few tens of degrees on a small or blurry face); with no calibration the intrinsics
are a nominal pinhole (`nominal_intrinsics`). A fit that fails, lands behind the camera, or does not reproject
onto the landmarks falls back to `pose_from_box`: position from the box's size and direction, the face turned
squarely to the camera (`method` says which was used).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

#: The detector's 5 points (image-left eye = the person's right eye, image-right eye, nose tip, mouth corner on
#: the image left, on the image right) on a generic adult face, in the face frame (mm): interpupillary distance
#: 63 mm, nose tip 48 mm below and 22 mm in front of the sellion, mouth 50 mm wide and 72 mm below it.
FACE_MODEL_MM = np.array([[-12.0, -31.5, -3.0], [-12.0, 31.5, -3.0], [22.0, 0.0, -48.0],
                          [-5.0, -25.0, -72.0], [-5.0, 25.0, -72.0]], dtype=np.float64)
#: Height of a detector box on an adult face (brow to chin, mm), for the position estimate without landmarks.
FACE_BOX_HEIGHT_MM = 180.0
#: Horizontal field of view assumed when the camera publishes no camera_info (a typical webcam / NAO camera).
DEFAULT_HFOV_DEG = 60.0
#: A fit whose mean reprojection error exceeds this share of the eye distance is not trusted, nor one nearer
#: than MIN_DISTANCE_M (a face closer than that fills more than the image).
MAX_REPROJECTION = 0.1
MIN_DISTANCE_M = 0.1
#: gaze_<id> in face_<id>: REP-155's gaze frame sits at the face, z along the gaze (here the head's forward
#: axis, x of the face), x to the person's right, y down (an optical frame); quaternion (x, y, z, w).
GAZE_IN_FACE = (-0.5, 0.5, -0.5, 0.5)


class HeadPose(NamedTuple):
    translation: Tuple[float, float, float]  # metres, camera optical frame
    rotation: Tuple[float, float, float, float]  # quaternion (x, y, z, w): face frame -> camera optical frame
    method: str  # "pnp" (5 landmarks) or "box" (size and direction of the face box)


def nominal_intrinsics(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """3x3 camera matrix of a pinhole camera with this horizontal field of view, square pixels, centred."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} has no pixels")
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"horizontal field of view {hfov_deg} must be in (0, 180) degrees")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def usable_intrinsics(k: Optional[Sequence[float]]) -> Optional[np.ndarray]:
    """A camera_info K (9 values) as a 3x3 matrix, or None when it is missing or not a pinhole matrix."""
    if k is None or len(k) != 9:
        return None
    m = np.asarray(k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)) or m[0, 0] <= 0 or m[1, 1] <= 0 or m[2, 2] != 1.0:
        return None
    return m


def head_pose(landmarks: Optional[Sequence[float]], box: Sequence[float], camera: np.ndarray) -> HeadPose:
    """The face frame in the camera optical frame, from 5 landmarks (10 values or (5, 2), pixels) when they are
    usable, else from the box (x, y, w, h). ValueError for a box without pixels and no usable landmarks."""
    points = _landmarks(landmarks)
    if points is not None:
        pose = _pnp(points, camera)
        if pose is not None:
            return pose
    return pose_from_box(box, camera)


def pose_from_box(box: Sequence[float], camera: np.ndarray) -> HeadPose:
    """Position from the box's height (an adult face is FACE_BOX_HEIGHT_MM) and its centre's direction; the face
    turned squarely to the camera (its x axis pointing at the camera centre)."""
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"face box {tuple(box)} has no pixels")
    fx, fy, cx, cy = camera[0, 0], camera[1, 1], camera[0, 2], camera[1, 2]
    z = fy * FACE_BOX_HEIGHT_MM / 1000.0 / h
    # the sellion is about 40 % down a detector box (brow to chin)
    u, v = x + w / 2.0, y + 0.4 * h
    t = np.array([(u - cx) * z / fx, (v - cy) * z / fy, z])
    return HeadPose(tuple(float(c) for c in t), _facing(t), "box")


def quaternion_from_matrix(r: np.ndarray) -> Tuple[float, float, float, float]:
    """Rotation matrix (3x3, proper) -> unit quaternion (x, y, z, w) with w >= 0."""
    r = np.asarray(r, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = ((r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s)
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = (0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s)
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = ((r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = ((r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s, (r[1, 0] - r[0, 1]) / s)
    q = np.asarray(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(c) for c in q)


def matrix_from_quaternion(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = (float(c) for c in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _landmarks(landmarks: Optional[Sequence[float]]) -> Optional[np.ndarray]:
    if landmarks is None:
        return None
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1)
    if pts.size != 10 or not np.all(np.isfinite(pts)):
        return None
    pts = pts.reshape(5, 2)
    if np.hypot(*(pts[1] - pts[0])) < 2.0:  # eyes on one pixel: nothing to fit
        return None
    return pts


def _pnp(points: np.ndarray, camera: np.ndarray) -> Optional[HeadPose]:
    model = FACE_MODEL_MM / 1000.0
    try:
        ok, rvec, tvec = cv2.solvePnP(model, points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:  # SQPnP's answer, polished by Levenberg-Marquardt (SQPnP alone is off by degrees on exact points)
            ok, rvec, tvec = cv2.solvePnP(model, points, camera, None, rvec, tvec, useExtrinsicGuess=True,
                                          flags=cv2.SOLVEPNP_ITERATIVE)
    except cv2.error:
        return None
    if not ok or not np.all(np.isfinite(tvec)) or float(tvec.reshape(-1)[2]) < MIN_DISTANCE_M:
        return None
    projected, _ = cv2.projectPoints(model, rvec, tvec, camera, None)
    error = np.linalg.norm(projected.reshape(5, 2) - points, axis=1).mean()
    if error > MAX_REPROJECTION * np.hypot(*(points[1] - points[0])):
        return None
    r, _ = cv2.Rodrigues(rvec)
    if r[2, 0] > 0.0:  # the face's forward axis points away from the camera: a mirror solution
        return None
    return HeadPose(tuple(float(c) for c in tvec.reshape(3)), quaternion_from_matrix(r), "pnp")


def _facing(t: np.ndarray) -> Tuple[float, float, float, float]:
    """Rotation of a face at `t` (camera optical frame) looking at the camera, upright (z as close to -y)."""
    forward = -t / np.linalg.norm(t)  # face x: towards the camera
    up = np.array([0.0, -1.0, 0.0])  # image up
    left = np.cross(up, forward)  # face y = z x x
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    return quaternion_from_matrix(np.column_stack([forward, left, up]))
