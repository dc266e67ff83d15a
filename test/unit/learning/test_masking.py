from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
from conftest import fake_face, make_fer_folder, write_image

from fer_mask_ros.cli import main
from fer_mask_ros.learning.masking import MASK_KINDS, apply_mask, mask_images

H = W = 48
LOWER = (slice(int(0.75 * H), H), slice(int(0.25 * W), int(0.75 * W)))  # mouth and chin
EYES = slice(int(0.25 * H), int(0.42 * H))  # eye band, full width


def _alpha(image, seed, **kw):
    _, alpha = apply_mask(image, np.random.default_rng(seed), return_alpha=True, **kw)
    return alpha


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_mask_covers_lower_face_and_leaves_eyes(kind):
    face = fake_face(3)
    for seed in range(6):
        out, alpha = apply_mask(face, np.random.default_rng(seed), kind=kind, return_alpha=True)
        assert out.shape == face.shape and out.dtype == np.uint8
        assert alpha.shape == (H, W) and alpha.min() >= 0 and alpha.max() <= 1
        assert alpha[LOWER].mean() > 0.6, (kind, seed)
        assert alpha[EYES].mean() < 0.05, (kind, seed)
        # the eyes themselves are untouched, the mouth is not
        assert np.array_equal(out[EYES, int(0.25 * W):int(0.75 * W)], face[EYES, int(0.25 * W):int(0.75 * W)])
        assert np.abs(out[LOWER].astype(int) - face[LOWER].astype(int)).mean() > 3


def test_random_kind_and_whole_batch():
    faces = np.stack([fake_face(i % 7, seed=i) for i in range(6)])
    out = mask_images(faces, seed=1)
    assert out.shape == faces.shape
    assert all(not np.array_equal(out[i], faces[i]) for i in range(6))
    assert np.array_equal(out, mask_images(faces, seed=1))
    assert not np.array_equal(out, mask_images(faces, seed=2))


def test_unknown_kind():
    with pytest.raises(ValueError, match="balaclava"):
        apply_mask(fake_face(0), np.random.default_rng(0), kind="balaclava")


def test_deterministic_per_seed():
    face = fake_face(1, colour=True)
    a = apply_mask(face, np.random.default_rng(7))
    b = apply_mask(face, np.random.default_rng(7))
    c = apply_mask(face, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, face)


def test_grey_and_bgr_same_placement():
    grey = fake_face(2)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    out_g, a_g = apply_mask(grey, np.random.default_rng(3), return_alpha=True)
    out_c, a_c = apply_mask(bgr, np.random.default_rng(3), return_alpha=True)
    assert out_g.shape == (H, W) and out_c.shape == (H, W, 3)
    assert np.array_equal(a_g, a_c)
    # the input is not modified in place
    assert np.array_equal(grey, fake_face(2))


@pytest.mark.parametrize("bad", [
    np.zeros((48, 48), np.float32),
    np.zeros((0, 48), np.uint8),
    np.zeros((48, 48, 4), np.uint8),
    np.zeros((48, 48, 1), np.uint8),
    np.zeros((2, 48, 48, 3), np.uint8),
])
def test_bad_input(bad):
    with pytest.raises(ValueError, match="apply_mask"):
        apply_mask(bad, np.random.default_rng(0))


# ------------------------------------------------------------------ landmark placement

LANDMARKS = np.array([[70, 80], [130, 80], [100, 112], [78, 138], [122, 138]], dtype=np.float64)


def _centroid(alpha):
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]]
    total = alpha.sum()
    return np.array([(xs * alpha).sum() / total, (ys * alpha).sum() / total])


def _orientation(alpha):
    m = cv2.moments(alpha.astype(np.float32))
    return math.degrees(0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"]))


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_landmark_placement_covers_mouth_not_eyes(kind):
    image = np.full((240, 200, 3), 150, np.uint8)
    alpha = _alpha(image, 0, landmarks=LANDMARKS, kind=kind)
    for x, y in LANDMARKS[2:]:  # nose tip and mouth corners
        assert alpha[int(y), int(x)] > 0.5, (kind, x, y)
    for x, y in LANDMARKS[:2]:
        assert alpha[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].max() == 0, kind


def test_landmark_placement_follows_landmarks():
    image = np.full((240, 240), 150, np.uint8)
    shift = np.array([35.0, 25.0])
    a0 = _alpha(image, 5, landmarks=LANDMARKS, kind="surgical")
    a1 = _alpha(image, 5, landmarks=LANDMARKS + shift, kind="surgical")
    assert np.allclose(_centroid(a1) - _centroid(a0), shift, atol=1.0)
    assert abs(a1.sum() - a0.sum()) < 0.02 * a0.sum()


def test_landmark_placement_rotates_with_eye_line():
    image = np.full((260, 260), 150, np.uint8)
    centre = np.array([100.0, 110.0])
    rad = math.radians(25)
    rot = np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    rotated = (LANDMARKS - centre) @ rot.T + centre + 30
    a0 = _alpha(image, 2, landmarks=LANDMARKS, kind="flat")
    a1 = _alpha(image, 2, landmarks=rotated, kind="flat")
    assert abs(_orientation(a0)) < 3
    assert abs(_orientation(a1) - 25) < 3
    # and it still covers the (rotated) mouth but not the eyes
    for x, y in rotated[3:]:
        assert a1[int(round(y)), int(round(x))] > 0.5
    for x, y in rotated[:2]:
        assert a1[int(round(y)), int(round(x))] == 0


def test_bad_landmarks():
    with pytest.raises(ValueError):
        apply_mask(np.zeros((100, 100), np.uint8), np.random.default_rng(0), landmarks=np.zeros((3, 2)))


# ------------------------------------------------------------------ the mask command


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_mask_command_single_file(tmp_path, capsys):
    src = write_image(tmp_path / "in" / "face.png", fake_face(3))
    out = tmp_path / "masked.png"
    assert main(["mask", src, "--output", str(out), "--seed", "4", "--kind", "n95"]) == 0
    img = _read(out)
    assert img.shape == (48, 48)
    assert not np.array_equal(img, fake_face(3))
    assert np.array_equal(img[EYES, 12:36], fake_face(3)[EYES, 12:36])  # PNG: lossless, eyes untouched
    assert "masked 1 images, skipped 0 unreadable, 0 without a face" in capsys.readouterr().out
    # an existing folder as OUT: written into it, same name
    folder = tmp_path / "outdir"
    folder.mkdir()
    assert main(["mask", src, "--output", str(folder), "--seed", "4", "--kind", "n95"]) == 0
    assert np.array_equal(_read(folder / "face.png"), img)


def test_mask_command_mirrors_tree_and_is_deterministic(tmp_path, capsys):
    src = make_fer_folder(tmp_path / "fer", per_class_train=1, per_class_test=1, labels=["happy", "sad", "fear"])
    write_image(tmp_path / "fer" / "test" / "sad" / "colour.jpg", fake_face(5, colour=True))
    (tmp_path / "fer" / "test" / "sad" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "fer" / "README.txt").write_text("ignored")
    out1, out2, out3 = tmp_path / "m1", tmp_path / "m2", tmp_path / "m3"
    assert main(["mask", src, "--output", str(out1), "--seed", "0", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "masked 7 images, skipped 1 unreadable, 0 without a face" in captured.out
    assert "broken.png" in captured.err

    def tree(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)

    expected = [p for p in tree(src) if p.endswith((".png", ".jpg")) and "broken" not in p]
    assert tree(str(out1)) == expected
    colour = _read(out1 / "test" / "sad" / "colour.jpg")
    assert colour.shape == (48, 48, 3)
    first = os.path.join("train", "happy", "Training_0.png")
    assert _read(out1 / first).shape == (48, 48)
    # the masked set reads back as the same dataset
    from fer_mask_ros.learning.datasets import load_dataset

    data = load_dataset(str(out1))
    assert len(data) == 7 and data.class_counts()["sad"] == 3

    assert main(["mask", src, "--output", str(out2), "--seed", "0", "--no-progress"]) == 0
    assert main(["mask", src, "--output", str(out3), "--seed", "1", "--no-progress"]) == 0
    for rel in expected:
        if rel.endswith(".png"):
            assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    assert any((out1 / rel).read_bytes() != (out3 / rel).read_bytes() for rel in expected)
    # per-file seeding: --limit does not change the files it keeps
    out4 = tmp_path / "m4"
    assert main(["mask", src, "--output", str(out4), "--seed", "0", "--limit", "2", "--no-progress"]) == 0
    assert len(tree(str(out4))) == 2
    for rel in tree(str(out4)):
        assert (out4 / rel).read_bytes() == (out1 / rel).read_bytes()


def test_mask_command_missing_input(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert main(["mask", missing, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no such file or folder: {missing}"]
    assert not (tmp_path / "out").exists()


def test_mask_command_refuses_to_overwrite_input(tmp_path, capsys):
    src = make_fer_folder(tmp_path / "fer", per_class_train=1, per_class_test=0, labels=["happy"])
    assert main(["mask", src, "--output", src]) == 2
    assert "differ" in capsys.readouterr().err


def test_mask_command_photo_without_face(tmp_path, capsys):
    # a large image goes through the detector: flat grey has no face -> counted, not written
    src = write_image(tmp_path / "wall.png", np.full((200, 300, 3), 120, np.uint8))
    out = tmp_path / "o.png"
    assert main(["mask", src, "--output", str(out)]) == 1
    assert "masked 0 images, skipped 0 unreadable, 1 without a face" in capsys.readouterr().out
    assert not out.exists()
    # --aligned forces geometric placement
    assert main(["mask", src, "--output", str(out), "--aligned"]) == 0
    assert _read(out).shape == (200, 300, 3)


def test_mask_command_detect_uses_landmarks(tmp_path, capsys):
    """A real face (first frame of the bundled demo clip) -> the mask lands on its nose and mouth."""
    from fer_mask_ros.perception.detection import FaceDetector

    clip = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "fer_mask_ros", "data", "demo_clip.avi")
    cap = cv2.VideoCapture(clip)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        pytest.skip("cannot decode the demo clip here")
    faces = FaceDetector().detect(frame)
    assert faces, "the demo clip's first frame should show a face"
    lm = faces[0].landmarks
    src = write_image(tmp_path / "frame.png", frame)
    out = tmp_path / "masked.png"
    assert main(["mask", src, "--output", str(out), "--detect", "--kind", "surgical"]) == 0
    diff = np.abs(_read(out).astype(int) - frame.astype(int)).sum(axis=2)
    for x, y in lm[3:]:  # mouth corners covered
        assert diff[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].mean() > 10
    for x, y in lm[:2]:  # eyes untouched
        assert diff[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].max() == 0


def test_printed_fabrics_change_the_texture_in_all_styles():
    from fer_mask_ros.learning.masking import _print

    plain = np.full((40, 60, 3), 128.0, np.float32)
    styles = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        style = int(np.random.default_rng(seed).integers(3))  # _print's first draw picks the style
        out = _print(plain, rng, scale=30.0)
        assert out.shape == plain.shape and np.isfinite(out).all()
        assert (np.abs(out - plain).max(axis=2) > 1).mean() > 0.02  # a visible share of the mask is printed
        styles.add(style)
    assert styles == {0, 1, 2}
