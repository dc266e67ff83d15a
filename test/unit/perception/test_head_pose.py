"""Head pose from 5 landmarks (REP-155 face_<id> frame): a generic face seen at a known pose is found again."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_mask_ros.perception.head_pose import (
    FACE_MODEL_MM,
    GAZE_IN_FACE,
    head_pose,
    matrix_from_quaternion,
    nominal_intrinsics,
    pose_from_box,
    quaternion_from_matrix,
    usable_intrinsics,
)

#: the face frame (x forward, y the person's left, z up) of a face looking straight at the camera, in the
#: camera optical frame (x right, y down, z forward)
FACING = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    return FACING @ rz @ ry


def project(r: np.ndarray, t, camera) -> np.ndarray:
    points, _ = cv2.projectPoints(FACE_MODEL_MM / 1000.0, cv2.Rodrigues(r)[0], np.asarray(t, float), camera, None)
    return points.reshape(5, 2)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, (np.trace(a.T @ b) - 1.0) / 2.0))))


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (25, 0), (-30, 10), (0, -20), (45, 5)])
def test_pose_of_a_generic_face_is_found_again(yaw, pitch):
    camera = nominal_intrinsics(640, 480)
    r, t = rotation(yaw, pitch), (0.15, -0.05, 1.2)
    pose = head_pose(project(r, t, camera).reshape(-1), (0, 0, 10, 10), camera)
    assert pose.method == "pnp"
    assert np.allclose(pose.translation, t, atol=0.01)
    assert angle_deg(matrix_from_quaternion(pose.rotation), r) < 1.0


def test_one_pixel_of_noise_on_a_small_face_costs_degrees_not_the_answer():
    # QVGA, face 1 m away: 17 px between the eyes (the bundled clip's faces are about this size)
    camera = nominal_intrinsics(320, 240)
    r, t = rotation(20, 0), (0.1, -0.05, 1.0)
    clean = project(r, t, camera)
    errors, depths, fitted = [], [], 0
    for seed in range(20):
        noisy = clean + np.random.default_rng(seed).normal(0.0, 1.0, clean.shape)
        pose = head_pose(noisy, (0, 0, 10, 10), camera)
        fitted += pose.method == "pnp"
        errors.append(angle_deg(matrix_from_quaternion(pose.rotation), r))
        depths.append(pose.translation[2])
    assert fitted >= 15 and np.median(errors) < 20.0 and abs(np.median(depths) - 1.0) < 0.1


def test_without_landmarks_the_box_gives_position_and_a_face_turned_to_the_camera():
    camera = nominal_intrinsics(320, 240)
    for landmarks in (None, [np.nan] * 10, [5.0] * 10, [1.0, 2.0]):
        pose = head_pose(landmarks, (140, 90, 40, 50), camera)
        assert pose.method == "box"
    pose = pose_from_box((140, 90, 40, 50), camera)
    x, y, z = pose.translation
    assert z == pytest.approx(camera[1, 1] * 0.18 / 50) and abs(x) < 0.02 and abs(y) < 0.05
    forward = matrix_from_quaternion(pose.rotation)[:, 0]
    assert np.dot(forward, -np.asarray(pose.translation) / np.linalg.norm(pose.translation)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no pixels"):
        head_pose(None, (10, 10, 0, 20), camera)


def test_a_mirror_or_nonsense_fit_falls_back_to_the_box():
    camera = nominal_intrinsics(320, 240)
    # eyes swapped (a face seen from behind, or a detector that mixed the points up)
    r, t = rotation(0, 0), (0.0, 0.0, 1.0)
    points = project(r, t, camera)[[1, 0, 2, 4, 3]]
    assert head_pose(points, (140, 90, 40, 50), camera).method == "box"
    scattered = np.array([[10, 10], [300, 20], [150, 230], [20, 200], [310, 220]], float)
    assert head_pose(scattered, (140, 90, 40, 50), camera).method == "box"


def test_quaternions_and_intrinsics():
    for yaw, pitch in [(0, 0), (90, 0), (180, 0), (-120, 40)]:
        r = rotation(yaw, pitch)
        q = quaternion_from_matrix(r)
        assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
        assert np.allclose(matrix_from_quaternion(q), r, atol=1e-9)
    # gaze frame: z along the face's forward axis (x), x to the person's right (-y), y down (-z)
    g = matrix_from_quaternion(GAZE_IN_FACE)
    assert np.allclose(g[:, 2], [1, 0, 0]) and np.allclose(g[:, 0], [0, -1, 0]) and np.allclose(g[:, 1], [0, 0, -1])
    k = nominal_intrinsics(320, 240, 60.0)
    assert k[0, 0] == pytest.approx(160 / math.tan(math.radians(30))) and k[0, 2] == pytest.approx(159.5)
    assert np.array_equal(usable_intrinsics(k.reshape(-1).tolist()), k)
    for bad in (None, [0.0] * 9, [1.0] * 4, [np.nan] * 9):
        assert usable_intrinsics(bad) is None
    with pytest.raises(ValueError):
        nominal_intrinsics(320, 240, 190.0)
