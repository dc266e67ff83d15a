"""The demo clip builder (fer_mask_ros.simulation.clip) and the bundled clip it made."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_mask_ros.imaging import read_video
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.simulation import clip


@pytest.fixture()
def fake_fer(tmp_path):
    """A tiny FER2013-like test folder: 3 random 48x48 greys per emotion."""
    rng = np.random.default_rng(0)
    for emotion in EMOTIONS:
        folder = tmp_path / "fer" / emotion
        folder.mkdir(parents=True)
        for i in range(3):
            img = cv2.GaussianBlur(rng.integers(0, 255, (48, 48), dtype=np.uint8), (5, 5), 0)
            cv2.imwrite(str(folder / f"PrivateTest_{emotion}{i}.jpg"), img)
    return tmp_path / "fer"


SEGMENTS = (
    clip.SegmentSpec(1.0, [clip.FaceSpec("happy", 80)]),
    clip.SegmentSpec(0.5, [clip.FaceSpec("sad", 60, (0.25, 0.5), (0.3, 0.5)), clip.FaceSpec("angry", 60, (0.75, 0.5))]),
)


def test_build_clip_labels_and_video(fake_fer, tmp_path):
    out = tmp_path / "clip.avi"
    labels = clip.build_clip(fake_fer, out, seed=3, segments=SEGMENTS)
    assert json.loads(out.with_suffix(".json").read_text()) == labels
    assert labels["frames"] == 15 and labels["duration_s"] == 1.5
    frames = read_video(out)
    assert len(frames) == 15 and frames[0].shape == (240, 320, 3)
    seg0, seg1 = labels["segments"]
    assert (seg0["start_frame"], seg0["end_frame"], seg1["start_frame"], seg1["end_frame"]) == (0, 10, 10, 15)
    assert [f["emotion"] for f in seg1["faces"]] == ["sad", "angry"]
    for seg in labels["segments"]:
        for face in seg["faces"]:
            assert len(face["boxes"]) == seg["end_frame"] - seg["start_frame"]
            x, y, w, h = face["boxes"][0]
            assert w == h == face["height"]
    # the face moves along its path and the frame differs from the background where the face is
    boxes = seg0["faces"][0]["boxes"]
    assert boxes[0][0] < boxes[-1][0]
    x, y, w, h = boxes[0]
    assert frames[0][y:y + h, x:x + w].std() > 10


def test_build_clip_is_reproducible(fake_fer, tmp_path):
    a = clip.build_clip(fake_fer, tmp_path / "a.avi", seed=5, segments=SEGMENTS)
    b = clip.build_clip(fake_fer, tmp_path / "b.avi", seed=5, segments=SEGMENTS)
    c = clip.build_clip(fake_fer, tmp_path / "c.avi", seed=6, segments=SEGMENTS)
    assert (tmp_path / "a.avi").read_bytes() == (tmp_path / "b.avi").read_bytes()
    assert a["segments"] == b["segments"]
    assert (tmp_path / "a.avi").read_bytes() != (tmp_path / "c.avi").read_bytes()
    del c


def test_accept_can_refuse_faces(fake_fer, tmp_path):
    seen = []

    def accept(emotion, frames):
        seen.append(emotion)
        assert len(frames) == 3 and frames[0][0].shape == (240, 320, 3)
        return len(seen) % 2 == 0  # refuse every other candidate

    labels = clip.build_clip(fake_fer, tmp_path / "x.avi", seed=1, segments=SEGMENTS[:1], accept=accept)
    assert seen == ["happy", "happy"] and labels["segments"][0]["faces"][0]["emotion"] == "happy"
    with pytest.raises(RuntimeError, match="no happy face"):
        clip.build_clip(fake_fer, tmp_path / "y.avi", seed=1, segments=SEGMENTS[:1], accept=lambda e, f: False)


def test_truth_at_wraps_around(fake_fer, tmp_path):
    labels = clip.build_clip(fake_fer, tmp_path / "clip.avi", seed=3, segments=SEGMENTS)
    assert [f["emotion"] for f in clip.truth_at(labels, 0.05)] == ["happy"]
    assert [f["emotion"] for f in clip.truth_at(labels, 1.2)] == ["sad", "angry"]
    assert [f["emotion"] for f in clip.truth_at(labels, 1.55)] == ["happy"]  # looped
    assert clip.truth_at(labels, 1.55, loop=False) == []


def test_bundled_clip_matches_its_labels():
    video = clip.DEFAULT_VIDEO
    assert video.is_file(), "run `python -m fer_mask_ros make-clip`"
    assert video.stat().st_size <= clip.MAX_BYTES
    labels = clip.load_labels()
    frames = read_video(video)
    assert len(frames) == labels["frames"] and frames[0].shape == (labels["height"], labels["width"], 3)
    emotions = {f["emotion"] for s in labels["segments"] for f in s["faces"]}
    assert {"happy", "surprise", "angry", "neutral"} <= emotions
    assert labels["segments"][-1]["end_frame"] == labels["frames"]
