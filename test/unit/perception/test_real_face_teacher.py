"""The real-face teacher: alignment onto the ArcFace template and its ONNX session (a tiny stand-in model)."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.errors import ModelError
from fer_mask_ros.perception.real_face_teacher import (
    ARCFACE_TEMPLATE,
    FER_CROP_LANDMARKS,
    RealFaceTeacher,
    align_face,
    similarity_transform,
)


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.radians(20), 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[0, 0], [10, 0], [5, 6], [1, 11], [9, 11]], dtype=np.float64)
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)
    with pytest.raises(ValueError):
        similarity_transform(src, dst[:3])


def _synthetic_face(landmarks, size=(240, 320)):
    """A grey image with a bright dot at each landmark, in a different colour each (BGR)."""
    image = np.full(size + (3,), 60, np.uint8)
    for k, (x, y) in enumerate(landmarks):
        cv2.circle(image, (int(round(x)), int(round(y))), 3, (40 * k + 50, 255, 200 - 30 * k), -1)
    return image


def test_align_face_puts_the_landmarks_on_the_arcface_template():
    # a face at a known place, size and roll in a photo: landmarks = the template moved
    angle = np.radians(-12)
    rot = 1.9 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE @ rot.T + np.array([70.0, 20.0])
    face = align_face(_synthetic_face(landmarks), landmarks)
    assert face.shape == (112, 112, 3) and face.dtype == np.uint8
    rgb = cv2.cvtColor(_synthetic_face(landmarks), cv2.COLOR_BGR2RGB)
    for k, (x, y) in enumerate(ARCFACE_TEMPLATE):
        colour = rgb[int(round(landmarks[k, 1])), int(round(landmarks[k, 0]))]
        # the dot's colour is found within 1.5 px of the template point
        ys, xs = np.nonzero(np.all(np.abs(face.astype(int) - colour.astype(int)) < 12, axis=2))
        assert len(xs), f"landmark {k} not in the aligned face"
        assert abs(xs.mean() - x) < 1.5 and abs(ys.mean() - y) < 1.5


def test_align_face_takes_grey_crops_and_refuses_bad_landmarks():
    crop = np.full((48, 48), 100, np.uint8)
    assert align_face(crop, FER_CROP_LANDMARKS).shape == (112, 112, 3)
    with pytest.raises(ValueError, match="5 finite"):
        align_face(crop, FER_CROP_LANDMARKS[:4])
    with pytest.raises(ValueError, match="5 finite"):
        align_face(crop, np.full((5, 2), np.nan))


def test_teacher_session_scales_the_input_and_gives_seven_logits(tiny_teacher_onnx):
    teacher = RealFaceTeacher(tiny_teacher_onnx)
    faces = np.zeros((2, 112, 112, 3), np.uint8)
    faces[1] = 255
    logits = teacher.logits(faces)
    # (x / 255 - 0.5) / 0.5: black -> -1, white -> +1
    assert logits.shape == (2, 7)
    assert np.allclose(logits[0, :3], -1) and np.allclose(logits[1, :3], 1)
    assert np.allclose(teacher.probabilities(faces).sum(1), 1)
    assert teacher.face_logits(np.zeros((100, 100, 3), np.uint8), None) is None
    assert teacher.fer_crop_logits(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)


def test_teacher_refuses_a_missing_or_foreign_model(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        RealFaceTeacher(str(tmp_path / "none.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX"):
        RealFaceTeacher(str(junk))
    assert os.path.isfile(junk)
