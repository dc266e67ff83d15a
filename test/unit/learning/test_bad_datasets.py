"""Bad datasets for `train`, `evaluate` and `mask` (issue 27): an empty class folder, a folder that is not a
label, files that are not images, an unreadable .png, files outside the label folders, a 16-bit PNG, a CMYK
JPEG, an EXIF-rotated JPEG, grey, RGBA and duplicate names (the same bytes under two labels). Each is used as
it looks or left out with one counted warning; the commands run in a child and never print a traceback."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import fake_face, make_fer_folder, requires_torch

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.datasets import load_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def exif_rotated_jpeg(upright: np.ndarray) -> bytes:
    """A JPEG of `upright` turned 90 degrees counter-clockwise whose EXIF orientation (6) turns it back."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(np.rot90(upright, 1)), [cv2.IMWRITE_JPEG_QUALITY, 100])
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def cmyk_jpeg(grey: np.ndarray) -> bytes:
    Image = pytest.importorskip("PIL.Image")  # a test dependency (python3-pil); OpenCV cannot write CMYK  # noqa: N806

    out = io.BytesIO()
    Image.fromarray(grey).convert("RGB").convert("CMYK").save(out, "JPEG", quality=100)
    return out.getvalue()


@pytest.fixture(scope="module")
def bad_dataset(tmp_path_factory):
    """FER layout (train/, test/) without fear images, plus every hostile entry under train/."""
    root = tmp_path_factory.mktemp("bad_dataset") / "data"
    make_fer_folder(root, per_class_train=3, per_class_test=2, labels=[e for e in EMOTIONS if e != "fear"])
    train = root / "train"
    (train / "fear").mkdir()  # an empty class folder
    (train / "bored").mkdir()  # not an emotion
    cv2.imwrite(str(train / "bored" / "Training_x.png"), fake_face(1, seed=50))
    (train / "happy" / "notes.txt").write_text("not an image\n")
    (train / "happy" / "Thumbs.db").write_bytes(b"\x00" * 64)
    (train / "sad" / "Training_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (train / "readme.md").write_text("outside the label folders\n")
    face = fake_face(0, seed=60)
    cv2.imwrite(str(train / "angry" / "Training_16bit.png"), face.astype(np.uint16) * 257)
    (train / "happy" / "Training_cmyk.jpg").write_bytes(cmyk_jpeg(fake_face(3, seed=61)))
    (train / "surprise" / "Training_exif.jpg").write_bytes(exif_rotated_jpeg(fake_face(5, seed=62)))
    rgba = cv2.cvtColor(fake_face(6, seed=63), cv2.COLOR_GRAY2BGRA)
    cv2.imwrite(str(train / "neutral" / "Training_rgba.png"), rgba)
    dup = cv2.imencode(".png", fake_face(4, seed=64))[1].tobytes()
    (train / "sad" / "Training_dup.png").write_bytes(dup)
    (train / "disgust" / "Training_dup.png").write_bytes(dup)  # same name, same bytes, another label
    return root


def crop(data, name):
    return data.images[[os.path.basename(s) for s in data.sources].index(name)].astype(int)


def test_the_loader_uses_what_it_can_and_counts_the_rest(bad_dataset):
    data = load_dataset(str(bad_dataset))
    names = [os.path.basename(s) for s in data.sources]
    assert "Training_broken.png" not in names and "Training_x.png" not in names
    assert data.skipped == [str(bad_dataset / "train" / "sad" / "Training_broken.png")]
    text = "\n".join(data.warnings)
    for line in ("unreadable images skipped: 1", "folders that are not emotion labels", "bored",
                 "label folders without images: 1", "fear", "files that are not images (by their extension) "
                 "ignored: 2", "files outside a label folder ignored: 1", "readme.md",
                 "byte-identical images under different labels (kept; check them): 1"):
        assert line in text, (line, data.warnings)
    assert len(data.warnings) == 6, data.warnings
    assert data.class_counts()["fear"] == 0
    # each odd image as it looks: the same crop as the plain grey face
    plain = lambda label, seed: cv2.resize(fake_face(label, seed=seed), (48, 48)).astype(int)  # noqa: E731
    assert np.array_equal(crop(data, "Training_16bit.png"), plain(0, 60))
    assert np.abs(crop(data, "Training_rgba.png") - plain(6, 63)).max() <= 1
    assert np.abs(crop(data, "Training_cmyk.jpg") - plain(3, 61)).mean() < 4
    exif = crop(data, "Training_exif.jpg")
    assert np.abs(exif - plain(5, 62)).mean() < 4  # upright, not turned
    assert np.abs(exif - np.rot90(plain(5, 62), 1)).mean() > 10
    labels = {EMOTIONS[lab] for s, lab in zip(data.sources, data.labels) if s.endswith("Training_dup.png")}
    assert labels == {"sad", "disgust"}


def test_strict_mode_and_no_label_folder_at_all_are_one_line_errors(bad_dataset, tmp_path):
    from fer_mask_ros.errors import DatasetError

    with pytest.raises(DatasetError, match="Training_broken.png"):
        load_dataset(str(bad_dataset), skip_unreadable=False)
    (tmp_path / "misc").mkdir()
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match="no emotion label folders .*found: misc, stuff"):
        load_dataset(str(tmp_path))


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "fer_mask_ros", *[str(a) for a in args]], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, p.stderr


def test_evaluate_on_a_bad_dataset(bad_dataset, tiny_model_path, tmp_path):
    rc, err = cli("evaluate", bad_dataset, "--model", tiny_model_path, "--output", tmp_path / "eval", "--no-progress")
    assert rc == 0, err
    assert "unreadable images skipped: 1" in err and "bored" in err, err
    assert (tmp_path / "eval" / "metrics.json").is_file()


@requires_torch  # train imports torch before it reads the dataset (make test-py38 has none)
def test_train_on_a_bad_dataset(bad_dataset, tmp_path):
    rc, err = cli("train", bad_dataset, "--output", tmp_path / "run", "--epochs", "1", "--widths", "4,8",
                  "--batch-size", "16", "--workers", "0", "--mask-variants", "1", "--no-progress")
    assert "unreadable images skipped: 1" in err, err
    assert rc == 0, err
    assert (tmp_path / "run" / "best.pt").is_file()


def test_mask_on_a_bad_dataset(bad_dataset, tmp_path):
    out = tmp_path / "masked"
    rc, err = cli("mask", bad_dataset / "train", "--output", out, "--aligned", "--no-progress")
    assert rc == 0, err
    assert err.count("skipping") == 1 and "Training_broken.png" in err, err
    assert "3 file(s) that are not images" in err, err
    exif = cv2.imread(str(out / "surprise" / "Training_exif.jpg"), cv2.IMREAD_GRAYSCALE).astype(int)
    upright = fake_face(5, seed=62).astype(int)
    assert np.abs(exif[:18] - upright[:18]).mean() < np.abs(exif[:18] - np.rot90(upright, 1)[:18]).mean()
    rgba = cv2.imread(str(out / "neutral" / "Training_rgba.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (48, 48, 4)
    for name in ("angry/Training_16bit.png", "happy/Training_cmyk.jpg", "sad/Training_dup.png",
                 "disgust/Training_dup.png", "bored/Training_x.png"):
        assert (out / name).is_file(), name
    assert not (out / "sad" / "Training_broken.png").exists()
