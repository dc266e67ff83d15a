"""The REP-155 view of a face: id strings, normalised ROI, the 70-point landmarks, the padded crop, the aligned face."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_mask_ros.perception.hri_face import (
    LANDMARK_COUNT,
    LANDMARK_INDICES,
    aligned_face,
    check_id_prefix,
    clipped_roi,
    cropped_face,
    face_id,
    normalized_landmarks,
    normalized_roi,
)
from fer_mask_ros.perception.real_face_teacher import ARCFACE_TEMPLATE


def test_face_ids_are_short_and_start_with_a_letter():
    assert face_id(7) == "f7"
    assert face_id(12, "nao1_") == "nao1_12"
    with pytest.raises(ValueError, match="untracked"):
        face_id(0)
    assert check_id_prefix("face") == "face"
    for bad in ("", "1f", "f-", "f/x", "a" * 17):
        with pytest.raises(ValueError, match="prefix"):
            check_id_prefix(bad)


def test_normalized_roi():
    assert normalized_roi((32, 24, 64, 48), 320, 240) == pytest.approx((0.1, 0.1, 0.3, 0.3))
    # clipped to the image, non-finite values as 0
    assert normalized_roi((-10, 200, 400, 100), 320, 240) == pytest.approx((0.0, 200 / 240, 1.0, 1.0))
    assert normalized_roi((math.nan, 0, 32, 24), 320, 240) == pytest.approx((0.0, 0.0, 0.1, 0.1))
    with pytest.raises(ValueError, match="no pixels"):
        normalized_roi((0, 0, 1, 1), 0, 240)


@pytest.mark.parametrize("box,expected", [
    ((32.4, 24.6, 64, 48), (32, 25, 64, 48)),  # inside: rounded to whole pixels
    ((-10, -20, 50, 60), (0, 0, 40, 40)),  # partly outside, top left
    ((300, 200, 100, 100), (300, 200, 20, 40)),  # partly outside, bottom right
    ((-10, 200, 400, 100), (0, 200, 320, 40)),  # wider than the image
    ((5000, 5000, 50, 50), (320, 240, 0, 0)),  # fully outside, beyond the far edges: no pixel
    ((-100, -100, 50, 50), (0, 0, 0, 0)),  # fully outside, before the image
    ((10, 10, 0, 0), (10, 10, 0, 0)),  # zero size
    ((10, 10, -30, 5), (10, 10, 0, 5)),  # negative size: none
    ((math.nan, 5, 10, math.inf), (0, 5, 10, 0)),  # non-finite values count as 0
])
def test_clipped_roi_is_whole_pixels_inside_the_image(box, expected):
    got = clipped_roi(box, 320, 240)
    assert got == expected and all(type(v) is int for v in got)


def test_clipped_roi_without_an_image_size_clips_at_zero_only():
    assert clipped_roi((-5, 10, 1000, 20)) == (0, 10, 995, 20)
    assert clipped_roi((-5, 10, 1000, 20), width=320) == (0, 10, 320, 20)
    assert clipped_roi((5, 300, 10, 1000), height=240) == (5, 240, 10, 0)


def test_landmarks_land_on_the_hri_msgs_indices():
    # hri_msgs/FacialLandmarks: RIGHT_PUPIL=68 LEFT_PUPIL=69 NOSE=30 MOUTH_OUTER_RIGHT=48 MOUTH_OUTER_LEFT=54
    assert LANDMARK_INDICES == (68, 69, 30, 48, 54)
    lm = [100, 50, 140, 50, 120, 70, 105, 90, 135, 90]
    points = normalized_landmarks(lm, 200, 100, confidence=0.9)
    assert len(points) == LANDMARK_COUNT
    assert points[68] == pytest.approx((0.5, 0.5, 0.9))  # eye on the image left = the person's right
    assert points[69] == pytest.approx((0.7, 0.5, 0.9))
    assert points[30] == pytest.approx((0.6, 0.7, 0.9))
    assert points[48] == pytest.approx((0.525, 0.9, 0.9))
    assert points[54] == pytest.approx((0.675, 0.9, 0.9))
    assert sum(1 for p in points if p[2] > 0) == 5
    assert normalized_landmarks(np.asarray(lm).reshape(5, 2), 200, 100)[68] == pytest.approx((0.5, 0.5, 1.0))
    assert normalized_landmarks(None, 200, 100) == [(0.0, 0.0, 0.0)] * LANDMARK_COUNT
    with pytest.raises(ValueError, match="5 landmarks"):
        normalized_landmarks([1, 2, 3], 200, 100)


def test_crop_is_scaled_centred_and_zero_padded():
    image = np.zeros((240, 320, 3), np.uint8)
    image[40:140, 60:110] = (10, 200, 30)  # a 50 x 100 (w x h) face
    crop = cropped_face(image, (60, 40, 50, 100), 128, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    filled = np.argwhere(crop.any(axis=2))
    (y0, x0), (y1, x1) = filled.min(axis=0), filled.max(axis=0)
    assert (y0, y1) == (0, 127)  # the long side fills the crop
    assert x1 - x0 + 1 == 64 and x0 == 32  # the short side keeps the aspect ratio, centred
    assert (crop[64, 64] == (10, 200, 30)).all()
    assert not crop[:, :30].any() and not crop[:, 98:].any()  # zero padding


def test_crop_edge_cases():
    grey = np.full((240, 320), 255, np.uint8)
    crop = cropped_face(grey, (300, 220, 100, 100), 64, 32)  # partly outside: the visible part, scaled
    assert crop.shape == (32, 64) and crop.any()
    assert not cropped_face(grey, (400, 400, 10, 10), 64, 64).any()  # wholly outside: zeros
    assert not cropped_face(grey, (math.nan, 0, 0, 10), 64, 64).any()
    with pytest.raises(ValueError, match="no pixels"):
        cropped_face(grey, (0, 0, 10, 10), 0, 64)


def test_aligned_face_puts_the_eyes_level_on_the_template():
    # a face rolled by 30 degrees: its eyes, marked bright, come out level at the template's eye places
    image = np.zeros((240, 320, 3), np.uint8)
    angle = np.radians(30.0)
    centre = np.array([160.0, 120.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    template = ARCFACE_TEMPLATE - ARCFACE_TEMPLATE.mean(0)
    points = template @ rot.T * 0.8 + centre
    for x, y in points[:2]:
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    aligned, rotated = aligned_face(image, points.reshape(-1), (110, 60, 100, 120), 128, 128)
    assert rotated and aligned.shape == (128, 128, 3)
    want = ARCFACE_TEMPLATE * (128 / 112.0)
    for x, y in want[:2]:
        assert aligned[int(round(y)), int(round(x))].min() > 100
    assert aligned[int(round(want[0, 1])) + 12, int(round(want[0, 0]))].max() == 0  # level: nothing below the eye
    # non-square output: the template is scaled to fit and centred
    wide, _ = aligned_face(image, points.reshape(-1), (110, 60, 100, 120), 160, 128)
    assert wide.shape == (128, 160, 3) and wide[int(round(want[0, 1])), int(round(want[0, 0])) + 16].min() > 100


def test_aligned_face_without_usable_landmarks_is_the_crop():
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box = (40, 20, 60, 80)
    for landmarks in (None, [1.0] * 8, [np.nan] + [50.0] * 9, [50.0] * 10):
        aligned, rotated = aligned_face(image, landmarks, box, 64, 64)
        assert not rotated and np.array_equal(aligned, cropped_face(image, box, 64, 64))
    with pytest.raises(ValueError, match="no pixels"):
        aligned_face(image, None, box, 0, 64)
