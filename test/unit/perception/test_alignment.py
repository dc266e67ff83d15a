from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_mask_ros.perception.alignment import aligned_crop, eye_angle
from fer_mask_ros.perception.detection import Detection


def pattern_image(h=200, w=240):
    """A face-sized asymmetric pattern centred at (120, 100)."""
    img = np.full((h, w), 60, np.uint8)
    cv2.rectangle(img, (80, 60), (160, 140), 200, -1)
    cv2.rectangle(img, (90, 75), (110, 85), 20, -1)  # image-left "eye"
    cv2.rectangle(img, (130, 75), (150, 85), 20, -1)  # image-right "eye"
    cv2.rectangle(img, (105, 115), (135, 125), 100, -1)  # "mouth"
    return img


LANDMARKS = np.array([[100, 80], [140, 80], [120, 100], [108, 120], [132, 120]], np.float32)


@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_shape_and_dtype(channels):
    grey = pattern_image()
    if channels is None:
        img = grey
    elif channels == 1:
        img = grey[:, :, None]
    elif channels == 3:
        img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    else:
        img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGRA)
    crop = aligned_crop(img, Detection((80, 60, 80, 80), 0.9, LANDMARKS), size=48)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    crop64 = aligned_crop(img, Detection((80, 60, 80, 80), 0.9), size=64)
    assert crop64.shape == (64, 64)


def test_crop_frames_the_box():
    img = pattern_image()
    crop = aligned_crop(img, Detection((80, 60, 80, 80), 0.9), size=80, margin=0.0, center_dy=0.0)
    ref = img[60:140, 80:160]
    assert np.abs(crop.astype(int) - ref.astype(int)).mean() < 6


def test_rotation_by_eye_line_undoes_roll():
    img = pattern_image()
    angle = 25.0
    m = cv2.getRotationMatrix2D((120, 100), angle, 1.0)
    rotated = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    pts = np.hstack([LANDMARKS, np.ones((5, 1), np.float32)]) @ m.T
    assert eye_angle(pts) == pytest.approx(-angle, abs=0.5)
    box = (80, 60, 80, 80)  # same centre and size as the upright face
    upright = aligned_crop(img, Detection(box, 0.9, LANDMARKS), size=48).astype(int)
    aligned = aligned_crop(rotated, Detection(box, 0.9, pts.astype(np.float32)), size=48).astype(int)
    unaligned = aligned_crop(rotated, Detection(box, 0.9, None), size=48).astype(int)
    err_aligned = np.abs(aligned - upright).mean()
    err_unaligned = np.abs(unaligned - upright).mean()
    assert err_aligned < 6
    assert err_unaligned > 2 * err_aligned


def test_implausible_landmarks_do_not_rotate():
    bad = LANDMARKS.copy()
    bad[1] = [100, 130]  # eyes one above the other: 90 degrees
    assert eye_angle(bad) is None
    assert eye_angle(np.full((5, 2), np.nan)) is None
    assert eye_angle(None) is None


@pytest.mark.parametrize("box", [(-30, -30, 80, 80), (200, 160, 80, 80), (-500, -500, 40, 40), (0, 0, 240, 200)])
def test_borders_are_padded(box):
    img = pattern_image()
    crop = aligned_crop(img, Detection(box, 0.5), size=48)
    assert crop.shape == (48, 48)
    assert crop.min() >= 0


def test_tiny_face_and_tiny_image():
    img = pattern_image()
    assert aligned_crop(img, Detection((119, 99, 2, 2), 0.5), size=48).shape == (48, 48)
    assert aligned_crop(img, Detection((10, 10, 0, 0), 0.5), size=48).shape == (48, 48)
    tiny = np.full((3, 3), 77, np.uint8)
    crop = aligned_crop(tiny, Detection((0, 0, 3, 3), 0.5), size=48)
    assert crop.shape == (48, 48) and int(crop.mean()) == 77
    assert aligned_crop(np.zeros((0, 0), np.uint8), Detection((0, 0, 1, 1), 0.5)).shape == (48, 48)


def test_big_face_is_area_downsampled():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1000, 1000), dtype=np.uint8)  # fine noise averages out when area-downsampled
    crop = aligned_crop(img, Detection((100, 100, 800, 800), 0.9), size=48, margin=0.0)
    assert crop.std() < 15
    assert math.isclose(crop.mean(), 127.5, abs_tol=10)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError):
        aligned_crop(np.zeros((10, 10), np.float32), Detection((0, 0, 5, 5), 0.5))
    with pytest.raises(ValueError):
        aligned_crop(np.zeros((10, 10, 2), np.uint8), Detection((0, 0, 5, 5), 0.5))
