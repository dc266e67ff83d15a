"""`analyze`: videos and rosbags through the one pipeline; outputs, subsampling, live reproduction, bad input."""
from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
import pytest
from conftest import write_video

from fer_mask_ros.analysis.clock import parse_iso
from fer_mask_ros.analysis.report import EVENTS_HEADER, FRAMES_HEADER
from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video
from fer_mask_ros.labels import EMOTIONS

CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros", "data", "demo_clip.avi")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FPS = 10.0
T0_SECS = 1_700_000_000

pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


@pytest.fixture(scope="module")
def clip_frames():
    """Frames 0-9 (one face) and 186-189 (two faces) of the bundled clip, BGR."""
    frames = read_video(CLIP, max_frames=190)
    assert len(frames) == 190
    return frames[:10] + frames[186:]


@pytest.fixture(scope="module")
def lively_model(tmp_path_factory):
    """A random tiny model with large head weights, so probabilities move from frame to frame
    (differences in smoothing or frame selection show in the numbers)."""
    import torch

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    torch.manual_seed(1)
    model = MaskedFERNet((4, 8))
    with torch.no_grad():
        model.emotion_head.weight.normal_(0, 40.0)
        model.mask_head.weight.normal_(0, 40.0)
    model.eval()
    path = tmp_path_factory.mktemp("lively") / "lively.pt"
    save_model(model, str(path))
    return str(path)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def pipeline_for(model):
    from fer_mask_ros.perception.classifier import EmotionClassifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline

    return FacePipeline(make_detector(num_threads=1), EmotionClassifier(model, num_threads=1))  # the CLI's default


def analyze(*args):
    return main(["analyze", "--no-progress", *[str(a) for a in args]])


# ----------------------------------------------------------------------------- videos


def test_video_outputs_and_same_numbers_as_pipeline(clip_frames, lively_model, tmp_path, capsys):
    tiny_model_path = lively_model
    video = write_video(tmp_path / "session.avi", clip_frames[:8])
    out = tmp_path / "out"
    assert analyze(video, "--output", out, "--model", tiny_model_path, "--render") == 0
    err = capsys.readouterr().err
    assert "frames/s" in err and "real time" in err
    for name in ("frames.csv", "events.csv", "timeline.png", "summary.json", "report.html"):
        assert (out / name).is_file(), name
    with open(out / "frames.csv") as handle:
        assert next(csv.reader(handle)) == FRAMES_HEADER
    with open(out / "events.csv") as handle:
        assert next(csv.reader(handle)) == EVENTS_HEADER
    rows = read_rows(out / "frames.csv")
    assert rows, "the clip's face was not found"
    # the same frames through FacePipeline.process with stamps frame/fps give the same numbers
    pipeline = pipeline_for(tiny_model_path)
    expected = []
    for i, frame in enumerate(read_video(video)):
        for r in pipeline.process(frame, i / FPS):
            expected.append((i, r.track_id, r.prediction))
    assert len(rows) == len(expected)
    for row, (i, fid, pred) in zip(rows, expected):
        assert int(row["frame"]) == i and float(row["time"]) == pytest.approx(i / FPS)
        assert int(row["face_id"]) == fid and row["emotion"] == pred.emotion
        probs = [float(row[f"p_{e}"]) for e in EMOTIONS]
        assert probs == pytest.approx(list(pred.probabilities), abs=1e-4)
        assert float(row["confidence"]) == pytest.approx(max(probs), abs=1e-4)
        assert row["masked"] in ("0", "1") and 0 <= float(row["mask_probability"]) <= 1
    summary = json.loads((out / "summary.json").read_text())
    for key in ("input", "frames", "duration", "fps_processed", "faces", "events", "emotion_shares", "model"):
        assert key in summary, key
    assert summary["frames"] == 8 and summary["duration"] == pytest.approx(0.8)
    # 8 frames: under the default --min-track-frames 10, the face is a short track (rows kept, no events)
    assert summary["faces"] + summary["short_tracks"]["tracks"] == len({r["face_id"] for r in rows})
    assert summary["model"] == os.path.abspath(tiny_model_path)
    for share in summary["emotion_shares"].values():
        assert sum(share.values()) == pytest.approx(1.0, abs=1e-3)
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "src='http" not in page and 'src="http' not in page
    rendered = [p for p in os.listdir(out) if p.startswith("annotated.")]
    assert len(rendered) == 1 and len(read_video(out / rendered[0])) == 8


@pytest.mark.parametrize("flags", [["--every", "3"], ["--max-fps", "3.4"]])
def test_subsampling(flags, clip_frames, tiny_model_path, tmp_path):
    video = write_video(tmp_path / "v.avi", clip_frames[:10])
    assert analyze(video, "--output", tmp_path / "o", "--model", tiny_model_path, *flags) == 0
    frames = sorted({int(r["frame"]) for r in read_rows(tmp_path / "o" / "frames.csv")})
    assert frames == [0, 3, 6, 9]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["frames_read"] == 10


# ----------------------------------------------------------------------------- rosbags


def _msg_text(name):
    with open(os.path.join(REPO, "msg", name.split("/")[1] + ".msg")) as handle:
        return handle.read()


def dynamic_classes():
    """fer_mask_ros message classes from the .msg files (genpy dynamic types: no generated code needed)."""
    import genpy.dynamic
    from sensor_msgs.msg import RegionOfInterest
    from std_msgs.msg import Header

    sep = "\n" + "=" * 80 + "\n"
    deps = (sep + "MSG: std_msgs/Header\n" + Header._full_text + sep + "MSG: sensor_msgs/RegionOfInterest\n"
            + RegionOfInterest._full_text)
    faces = genpy.dynamic.generate_dynamic(
        "fer_mask_ros/FaceArray", _msg_text("x/FaceArray") + sep + "MSG: fer_mask_ros/Face\n"
        + _msg_text("x/Face") + deps)
    emotions = genpy.dynamic.generate_dynamic(
        "fer_mask_ros/EmotionArray", _msg_text("x/EmotionArray") + sep + "MSG: fer_mask_ros/EmotionStamped\n"
        + _msg_text("x/EmotionStamped") + deps)
    return {**faces, **emotions}


def stamp(i):
    import genpy

    return genpy.Time(T0_SECS, int(i * 1e9 / FPS))


def image_msg(frame, i, encoding="rgb8"):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp(i), "CameraTop_optical_frame"
    data = frame[:, :, ::-1] if encoding == "rgb8" else frame
    msg.height, msg.width, msg.encoding, msg.is_bigendian = frame.shape[0], frame.shape[1], encoding, 0
    msg.step = frame.shape[1] * 3
    msg.data = np.ascontiguousarray(data).tobytes()
    return msg


def compressed_msg(frame, i):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    msg.header.stamp, msg.format = stamp(i), "jpeg"
    msg.data = cv2.imencode(".jpg", frame)[1].tobytes()
    return msg


def test_bag_image_and_compressed_topics(clip_frames, tiny_model_path, tmp_path):
    import genpy
    import rosbag

    frames = clip_frames[:6]
    path = tmp_path / "camera.bag"
    with rosbag.Bag(str(path), "w") as bag:
        for i, f in enumerate(frames):
            t = stamp(i) + genpy.Duration(0, 5_000_000)
            bag.write("/naoqi_driver/camera/front/image_raw", image_msg(f, i), t)
            bag.write("/cam/compressed", compressed_msg(f, i), t)
        broken = compressed_msg(frames[0], 6)
        broken.data = b"not a jpeg"
        bag.write("/cam/compressed", broken, stamp(6))
    assert analyze(path, "--output", tmp_path / "raw", "--model", tiny_model_path) == 0
    rows = read_rows(tmp_path / "raw" / "frames.csv")
    pipeline = pipeline_for(tiny_model_path)  # rgb8 is lossless: same numbers as the BGR frames
    expected = [(i, r) for i, f in enumerate(frames) for r in pipeline.process(f, T0_SECS + i / FPS)]
    assert [(int(r["frame"]), int(r["face_id"])) for r in rows] == [(i, r.track_id) for i, r in expected]
    for row, (i, r) in zip(rows, expected):
        assert float(row["time"]) == pytest.approx(i / FPS, abs=1e-6)
        assert [float(row[f"p_{e}"]) for e in EMOTIONS] == pytest.approx(list(r.prediction.probabilities), abs=1e-4)
        assert [float(row[f"raw_p_{e}"]) for e in EMOTIONS] == pytest.approx(list(r.raw.probabilities), abs=1e-4)
        assert parse_iso(row["utc"]) == pytest.approx(T0_SECS + i / FPS, abs=1e-3)  # the header stamp, absolute
    summary = json.loads((tmp_path / "raw" / "summary.json").read_text())
    assert summary["kind"] == "rosbag" and summary["start_stamp"] == pytest.approx(T0_SECS)
    assert summary["absolute_time"] == {"start_utc": "2023-11-14T22:13:20.000Z",
                                        "source": "rosbag: the first image's header stamp"}
    assert summary["faces_topic"] is None

    assert analyze(path, "--output", tmp_path / "jpg", "--model", tiny_model_path, "--topic", "/cam/compressed") == 0
    jrows = read_rows(tmp_path / "jpg" / "frames.csv")
    assert {int(r["frame"]) for r in jrows} == set(range(6))
    notes = json.loads((tmp_path / "jpg" / "summary.json").read_text())["notes"]
    assert any("skipped 1 undecodable" in n for n in notes)


def test_bag_with_recorded_faces_reproduces_the_live_graph(clip_frames, lively_model, tmp_path):
    """Simulate face_detector (drops frames 2, 5) and emotion_classifier (drops the pair of frame 7),
    record it as record.launch would, and check analyze gives the live answers frame for frame."""
    import genpy
    import rosbag

    from fer_mask_ros.perception.classifier import EmotionClassifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.ros.convert import image_to_bgr, stamp_to_sec, tracked_faces_from_msg

    cls = dynamic_classes()
    frames = clip_frames[:4] + clip_frames[10:14] + clip_frames[4:10]  # a jump: tracks change
    detector_node = FacePipeline(detector=make_detector(num_threads=1))  # the node's default
    classifier_node = FacePipeline(classifier=EmotionClassifier(lively_model, num_threads=1))
    live = {}
    path = tmp_path / "session.bag"
    with rosbag.Bag(str(path), "w") as bag:
        for i, frame in enumerate(frames):
            t = stamp(i) + genpy.Duration(0, 3_000_000)
            img = image_msg(frame, i)
            bag.write("/naoqi_driver/camera/front/image_raw", img, t)
            if i in (2, 5):
                continue
            faces = detector_node.detect(image_to_bgr(img), stamp_to_sec(img.header.stamp))
            fa = cls["fer_mask_ros/FaceArray"]()
            fa.header = cls["std_msgs/Header"](stamp=img.header.stamp, frame_id=img.header.frame_id)
            fa.image_width, fa.image_height = frame.shape[1], frame.shape[0]
            for f in faces:
                x, y, w, h = (int(round(v)) for v in f.detection.box)
                roi = cls["sensor_msgs/RegionOfInterest"](x_offset=x, y_offset=y, width=w, height=h)
                fa.faces.append(cls["fer_mask_ros/Face"](id=f.track_id + 1, roi=roi, score=f.detection.score,
                                                         has_landmarks=True,
                                                         landmarks=[float(v) for v in f.detection.landmarks.ravel()]))
            bag.write("/fer_mask/faces", fa, t + genpy.Duration(0, 1_000_000))
            if i == 7:
                continue  # the classifier node was busy: no EmotionArray for this pair
            ea = cls["fer_mask_ros/EmotionArray"](header=fa.header)
            results = classifier_node.classify(image_to_bgr(img), tracked_faces_from_msg(fa),
                                               stamp_to_sec(img.header.stamp), smooth=True) if fa.faces else []
            for r in results:
                live[(i, r.track_id)] = r.prediction
                p = r.prediction
                ea.emotions.append(cls["fer_mask_ros/EmotionStamped"](
                    header=fa.header, face_id=r.track_id, emotion=p.emotion, confidence=p.confidence,
                    labels=list(EMOTIONS), probabilities=[float(v) for v in p.probabilities], masked=p.masked,
                    mask_probability=p.mask_probability))
            bag.write("/fer_mask/emotion_array", ea, t + genpy.Duration(0, 2_000_000))
    assert len(live) >= 8

    assert analyze(path, "--output", tmp_path / "out", "--model", lively_model) == 0
    rows = read_rows(tmp_path / "out" / "frames.csv")
    assert sorted((int(r["frame"]), int(r["face_id"])) for r in rows) == sorted(live)
    for row in rows:
        pred = live[(int(row["frame"]), int(row["face_id"]))]
        assert row["emotion"] == pred.emotion
        assert [float(row[f"p_{e}"]) for e in EMOTIONS] == pytest.approx(list(pred.probabilities), abs=1e-4)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["faces_topic"] == "/fer_mask/faces"
    assert summary["live_agreement"]["faces_compared"] == len(live)
    assert summary["live_agreement"]["same_emotion"] == 1.0
    assert summary["live_agreement"]["max_probability_difference"] < 1e-5

    # without the recorded faces every frame is detected again, ids from the offline tracker
    assert analyze(path, "--output", tmp_path / "all", "--model", lively_model, "--faces-topic", "none") == 0
    assert {int(r["frame"]) for r in read_rows(tmp_path / "all" / "frames.csv")} == set(range(len(frames)))


# ----------------------------------------------------------------------------- bad input


def _one_error_line(capsys, name):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error:") and name in err[0], err[0]
    return err[0]


def test_missing_file(tiny_model_path, tmp_path, capsys):
    assert analyze(tmp_path / "nope.mp4", "--output", tmp_path / "o", "--model", tiny_model_path) == 2
    _one_error_line(capsys, "nope.mp4")


def test_unreadable_video(tiny_model_path, tmp_path, capsys):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"this is not a video at all" * 10)
    assert analyze(bad, "--output", tmp_path / "o", "--model", tiny_model_path) == 2
    _one_error_line(capsys, "broken.avi")
    assert not (tmp_path / "o" / "frames.csv").exists()


@pytest.mark.parametrize("kind", ["empty file", "no frames"])
def test_zero_length_video(kind, tiny_model_path, tmp_path, capsys):
    path = tmp_path / "zero.avi"
    if kind == "empty file":
        path.write_bytes(b"")
    else:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
        writer.release()
    assert analyze(path, "--output", tmp_path / "o", "--model", tiny_model_path) == 2
    _one_error_line(capsys, "zero.avi")


def test_bag_without_the_topic(clip_frames, tiny_model_path, tmp_path, capsys):
    import rosbag

    path = tmp_path / "other.bag"
    with rosbag.Bag(str(path), "w") as bag:
        bag.write("/some/camera", image_msg(clip_frames[0], 0), stamp(0))
    assert analyze(path, "--output", tmp_path / "o", "--model", tiny_model_path) == 2
    line = _one_error_line(capsys, "other.bag")
    assert "/naoqi_driver/camera/front/image_raw" in line and "/some/camera" in line


def test_batch_goes_on_after_a_bad_file(clip_frames, tiny_model_path, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "a.avi", clip_frames[:3])
    (folder / "b.mp4").write_bytes(b"garbage")
    write_video(folder / "c.avi", clip_frames[-3:])
    out = tmp_path / "out"
    assert analyze(folder, "--output", out, "--model", tiny_model_path) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "b.mp4" in errors[0]
    assert (out / "a" / "frames.csv").is_file() and (out / "c" / "summary.json").is_file()
    table = read_rows(out / "summary.csv")
    assert [(os.path.basename(r["input"]), r["status"]) for r in table] == [("a.avi", "ok"), ("b.mp4", "failed"),
                                                                              ("c.avi", "ok")]
    assert table[0]["frames"] == "3" and table[2]["faces"] != "" and "b.mp4" in table[1]["error"]
    assert "| input | status |" in captured.out and "a.avi" in captured.out


def test_play_without_display_is_a_clear_error(clip_frames, tiny_model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = write_video(tmp_path / "v.avi", clip_frames[:2])
    assert analyze(video, "--output", tmp_path / "o", "--model", tiny_model_path, "--play") == 2
    assert "DISPLAY" in _one_error_line(capsys, "--play")


def test_lively_model_moves(clip_frames, lively_model):
    """Guard for the reproduction tests: the model's answers must differ between frames."""
    pipeline = pipeline_for(lively_model)
    probs = [r.raw.probabilities for i, f in enumerate(clip_frames) for r in pipeline.process(f, i / FPS)]
    assert np.ptp(np.stack(probs), axis=0).max() > 0.01


def test_play_shows_frames_in_real_time(clip_frames, tiny_model_path, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # a window without an X server
    video = write_video(tmp_path / "v.avi", clip_frames[:4])
    start = time.monotonic()
    assert analyze(video, "--output", tmp_path / "o", "--model", tiny_model_path, "--play") == 0
    assert time.monotonic() - start >= 0.3  # 4 frames at 10 fps are paced to input time
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["frames"] == 4
