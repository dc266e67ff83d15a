"""Aligned face crop shared by training-crop building and the live graph.

The expression classifier is trained on FER2013: 48x48 grey faces, framed from about
the eyebrows/forehead to the chin.  ``aligned_crop`` turns a detector box (+ landmarks)
into a crop with that framing:

* rotate so that the eye line is horizontal (when landmarks exist and look sane),
* take a square of side ``(1 + margin) * face_size`` centred ``center_dy * face_size``
  below the box centre (``face_size`` = the detector's box height),
* resize to ``size`` x ``size`` grey uint8, replicating edge pixels where the square
  leaves the image, so faces at borders and tiny faces still give a full crop.

CROP_MARGIN and CROP_CENTER_DY were calibrated on FER2013 test faces (see
docs/DETECTION.md, "Crop calibration").
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from fer_mask_ros.imaging import to_grey
from fer_mask_ros.perception.detection import Detection

__all__ = ["CROP_CENTER_DY", "CROP_MARGIN", "INPUT_SIZE", "MAX_ROLL_DEG", "aligned_crop", "crop_transform", "eye_angle"]

#: Side of the grey square crop the expression classifier takes (aligned crops default to it).
INPUT_SIZE = 48

#: Square side = (1 + CROP_MARGIN) * box height (calibrated, docs/DETECTION.md).
CROP_MARGIN = 0.15
#: Crop centre = box centre + CROP_CENTER_DY * box height (positive = down; calibrated).
CROP_CENTER_DY = -0.05
#: Eye lines steeper than this are treated as landmark errors: no rotation.
MAX_ROLL_DEG = 45.0


def eye_angle(landmarks: Optional[np.ndarray]) -> Optional[float]:
    """Roll angle in degrees of the eye line (image-left eye -> image-right eye), or None."""
    if landmarks is None:
        return None
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        return None
    dx, dy = pts[1] - pts[0]
    if math.hypot(dx, dy) < 1.0:
        return None
    angle = math.degrees(math.atan2(dy, dx))
    if abs(angle) > MAX_ROLL_DEG:
        return None
    return angle


def crop_transform(
    detection: Detection,
    out_size: int,
    margin: float = CROP_MARGIN,
    center_dy: float = CROP_CENTER_DY,
    rotate: bool = True,
) -> Tuple[np.ndarray, float]:
    """2x3 affine matrix mapping image pixels to crop pixels, and the square's side in image pixels."""
    x, y, w, h = [float(v) for v in detection.box]
    face = max(h, 1e-3)
    side = max(1.0, (1.0 + float(margin)) * face)
    angle = eye_angle(detection.landmarks) if rotate else None
    angle = 0.0 if angle is None else angle
    cx = x + w / 2.0
    cy = y + h / 2.0
    # the centre offset is along the face's own vertical axis
    rad = math.radians(angle)
    cx -= math.sin(rad) * center_dy * face
    cy += math.cos(rad) * center_dy * face
    scale = out_size / side
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[0, 2] += out_size / 2.0 - cx
    m[1, 2] += out_size / 2.0 - cy
    return m, side


def _to_grey(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("aligned_crop expects a uint8 image array")
    try:
        return to_grey(image)
    except ValueError:
        raise ValueError(f"aligned_crop expects an HxW, HxWx3 or HxWx4 image, got shape {image.shape}") from None


def aligned_crop(
    image: np.ndarray,
    detection: Detection,
    size: int = 48,
    margin: float = CROP_MARGIN,
    center_dy: float = CROP_CENTER_DY,
    rotate: bool = True,
) -> np.ndarray:
    """Grey uint8 (size, size) crop of the face, FER2013-style framing.

    image: BGR, BGRA or grey uint8.  Parts of the square outside the image are filled by
    replicating the border pixels.  An empty image gives a mid-grey crop.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    grey = _to_grey(image)
    if grey.shape[0] == 0 or grey.shape[1] == 0:
        return np.full((size, size), 128, np.uint8)
    # warp at up to 4x the output size, then area-downsample: avoids aliasing for big faces
    _, side = crop_transform(detection, size, margin, center_dy, rotate)
    factor = int(max(1, min(4, side // size)))
    work = size * factor
    m, _ = crop_transform(detection, work, margin, center_dy, rotate)
    crop = cv2.warpAffine(
        np.ascontiguousarray(grey), m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop
