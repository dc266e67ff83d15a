"""`classify PHOTO...` (photo mode, no --crops) and the shared still-image function."""
from __future__ import annotations

import csv
import io
import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.detection import Detection
from fer_mask_ros.perception.photo import PHOTO_CSV_HEADER, classify_image, detect_photo_faces

CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros", "data", "demo_clip.avi")
pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Frame 10 (one face) and frame 190 (two faces) of the bundled clip, plus a photo without a face."""
    root = tmp_path_factory.mktemp("photos")
    frames = read_video(CLIP, max_frames=191)
    cv2.imwrite(str(root / "one.png"), frames[10])
    cv2.imwrite(str(root / "two.jpg"), frames[190])
    cv2.imwrite(str(root / "empty.png"), np.full((120, 160, 3), 128, np.uint8))
    return root


def pipeline_for(model):
    from fer_mask_ros.perception.photo import build_pipeline

    return build_pipeline(model, 1)  # the CLI's default: config/emotion_classifier.yaml's still_classifier


def test_photo_csv_and_annotated_images(photos, tiny_model_path, tmp_path, capsys):
    out, ann = tmp_path / "faces.csv", tmp_path / "ann"
    rc = main(["classify", "--model", tiny_model_path, "--no-progress", "--output", str(out),
               "--annotate-dir", str(ann), str(photos)])
    assert rc == 0
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(PHOTO_CSV_HEADER)
    rows = list(csv.DictReader(io.StringIO(text)))
    by_photo = {}
    for r in rows:
        by_photo.setdefault(os.path.basename(r["path"]), []).append(r)
    assert "empty.png" not in by_photo
    assert len(by_photo["one.png"]) == 1 and len(by_photo["two.jpg"]) == 2
    assert [r["face"] for r in by_photo["two.jpg"]] == ["1", "2"]
    scores = [float(r["score"]) for r in by_photo["two.jpg"]]
    assert scores == sorted(scores, reverse=True)
    for r in rows:
        probs = [float(r[f"p_{e}"]) for e in EMOTIONS]
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert r["emotion"] == EMOTIONS[int(np.argmax(probs))]
        assert float(r["w"]) > 20 and float(r["h"]) > 20 and r["masked"] in ("0", "1")
    assert sorted(os.listdir(ann)) == ["empty.jpg", "one.jpg", "two.jpg"]
    original = cv2.imread(str(photos / "one.png"))
    annotated = cv2.imread(str(ann / "one.jpg"))
    assert annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original.astype(int)).mean() > 1.0  # something was drawn
    assert "3 photos, 3 faces (1 photos without a face)" in capsys.readouterr().err


def test_rows_equal_the_shared_function(photos, tiny_model_path, capsys):
    """The CLI rows are classify_image's answers: the function the ClassifyImage service uses."""
    assert main(["classify", "--model", tiny_model_path, "--no-progress", str(photos / "two.jpg")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    pipeline = pipeline_for(tiny_model_path)
    results = classify_image(pipeline, cv2.imread(str(photos / "two.jpg")))
    assert len(rows) == len(results) == 2
    for row, r in zip(rows, results):
        assert int(row["face"]) == r.track_id and row["emotion"] == r.prediction.emotion
        assert [float(row[f"p_{e}"]) for e in EMOTIONS] == pytest.approx(list(r.prediction.probabilities), abs=1e-4)
        assert float(row["x"]) == pytest.approx(r.detection.box[0], abs=0.06)


def test_classify_image_is_stateless_and_unsmoothed(photos, tiny_model_path):
    pipeline = pipeline_for(tiny_model_path)
    image = cv2.imread(str(photos / "one.png"))
    first = classify_image(pipeline, image)
    pipeline.process(cv2.imread(str(photos / "two.jpg")), 1.0)  # a live pass in between
    again = classify_image(pipeline, image, stamp=1.05)
    assert [r.track_id for r in first] == [r.track_id for r in again] == [1]
    np.testing.assert_allclose(again[0].prediction.probabilities, first[0].prediction.probabilities, atol=1e-6)
    np.testing.assert_allclose(first[0].prediction.probabilities, first[0].raw.probabilities)


def test_missing_photo_is_one_error_line(photos, tiny_model_path, tmp_path, capsys):
    assert main(["classify", "--model", tiny_model_path, str(photos / "one.png"), str(tmp_path / "gone.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gone.png" in err[0]


class PaddingOnlyDetector:
    """Finds a face only when the image has a border around the face (as CenterFace on close-ups)."""

    def __init__(self):
        self.calls = []

    def detect(self, image):
        self.calls.append(image.shape)
        if len(self.calls) == 1:
            return []
        h, w = image.shape[:2]
        return [Detection((w * 0.25, h * 0.25, w * 0.5, h * 0.5), 0.9, np.array([[w * 0.4, h * 0.4]] * 5))]


def test_a_face_that_fills_the_photo_is_found_on_a_padded_canvas():
    detector = PaddingOnlyDetector()
    found = detect_photo_faces(detector, np.zeros((100, 80, 3), np.uint8), pad=0.5, small_side=0)[0]
    assert detector.calls == [(100, 80, 3), (200, 160, 3)]
    # the padded canvas' box (40, 50, 80, 100) maps back to the photo's own pixels
    assert found.box == pytest.approx((0.0, 0.0, 80.0, 100.0))
    assert found.landmarks[0] == pytest.approx((24.0, 30.0))


class LargeImageOnlyDetector:
    """Finds a face only in images at least 300 px high (as CenterFace and a 12 px face in a thumbnail)."""

    def __init__(self):
        self.calls = []

    def detect(self, image):
        self.calls.append(image.shape)
        h, w = image.shape[:2]
        if h < 300:
            return []
        return [Detection((w * 0.5, h * 0.25, w * 0.1, h * 0.2), 0.8, np.array([[w * 0.5, h * 0.3]] * 5))]


def test_a_small_face_in_a_thumbnail_is_found_on_the_enlarged_photo():
    detector = LargeImageOnlyDetector()
    found = detect_photo_faces(detector, np.zeros((100, 80, 3), np.uint8))
    assert detector.calls == [(100, 80, 3), (200, 160, 3), (400, 320, 3)]
    assert found[0].box == pytest.approx((40.0, 25.0, 8.0, 20.0))  # in the thumbnail's own pixels
    assert found[0].landmarks[0] == pytest.approx((40.0, 30.0))
    # a photo that is not small is not enlarged: no face is the answer
    detector = LargeImageOnlyDetector()
    assert detect_photo_faces(detector, np.zeros((250, 500, 3), np.uint8), pad=0) == []
    assert detector.calls == [(250, 500, 3)]
