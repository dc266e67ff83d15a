"""One answer everywhere with the per-face schedule on (issue #31): `analyze`, `FacePipeline.process` and the
live graph's split (face_detector's `detect`, emotion_classifier's `classify` in another pipeline) give the same
per-frame rows, fresh flags included."""
from __future__ import annotations

import csv
import os

import pytest
from conftest import write_video

from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video
from fer_mask_ros.labels import EMOTIONS

CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros", "data", "demo_clip.avi")
FPS = 30.0
RATE = "4"  # Hz per face: on a 30 fps stream most rows carry the evidence

pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


@pytest.fixture(scope="module")
def frames():
    """Frames 180-203 of the bundled clip (two faces), played as a 30 fps stream."""
    return read_video(CLIP, max_frames=204)[180:]


def _pipelines(model, split: bool):
    from fer_mask_ros.perception.classifier import EmotionClassifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.perception.schedule import ClassifySchedule, parse_rates

    def schedule():
        return ClassifySchedule(parse_rates(RATE, ("fer_mask_net",)))

    classifier = EmotionClassifier(model, num_threads=1)
    if not split:
        one = FacePipeline(make_detector(num_threads=1), classifier, schedule=schedule())
        return one, one
    return FacePipeline(detector=make_detector(num_threads=1)), FacePipeline(classifier=classifier,
                                                                             schedule=schedule())


def _rows(model, frames, split):
    detect, classify = _pipelines(model, split)
    rows = []
    for i, frame in enumerate(frames):
        faces = detect.detect(frame, i / FPS)
        for r in classify.classify(frame, faces, i / FPS, smooth=True):
            rows.append((i, r.track_id, r.fresh, r.prediction.emotion, list(r.prediction.probabilities)))
    return rows


def test_analyze_the_pipeline_and_the_split_graph_agree_with_the_schedule_on(frames, tiny_model_path, tmp_path):
    video = write_video(tmp_path / "stream.avi", frames, fps=FPS)
    assert main(["analyze", "--no-progress", video, "--output", str(tmp_path / "out"), "--model", tiny_model_path,
                 "--classify-hz", RATE]) == 0
    with open(tmp_path / "out" / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    decoded = read_video(video)
    expected = _rows(tiny_model_path, decoded, split=False)
    assert expected == _rows(tiny_model_path, decoded, split=True)  # the live graph's two nodes
    assert len(rows) == len(expected) and len({r[1] for r in expected}) == 2
    for row, (i, fid, fresh, emotion, probs) in zip(rows, expected):
        assert (int(row["frame"]), int(row["face_id"]), row["fresh"], row["emotion"]) == (
            i, fid, "1" if fresh else "0", emotion)
        assert [float(row[f"p_{e}"]) for e in EMOTIONS] == pytest.approx(probs, abs=1e-4)
    # each face's first row is fresh (its first emotion in its first frame), and most later rows are not
    first = {}
    for _, fid, fresh, _, _ in expected:
        first.setdefault(fid, fresh)
    assert all(first.values())
    share = sum(r[2] for r in expected) / len(expected)
    assert 0.1 < share < 0.4, share
    # 0 = every frame: every row fresh
    assert main(["analyze", "--no-progress", video, "--output", str(tmp_path / "every"), "--model", tiny_model_path,
                 "--classify-hz", "0"]) == 0
    with open(tmp_path / "every" / "frames.csv", newline="") as handle:
        assert {r["fresh"] for r in csv.DictReader(handle)} == {"1"}
