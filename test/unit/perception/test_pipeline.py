from __future__ import annotations

import numpy as np
import pytest
from conftest import fake_face

from fer_mask_ros.imaging import encoding_to_bgr
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.detection import Detection
from fer_mask_ros.perception.pipeline import FaceEmotion, FacePipeline, TrackedFace

H, W = 6, 8


def _fill(value, channels=None, dtype=np.uint8):
    shape = (H, W) if channels is None else (H, W, channels)
    out = np.zeros(shape, dtype)
    out[...] = value
    return out


def _check(bgr, colour):
    assert bgr.shape == (H, W, 3) and bgr.dtype == np.uint8
    assert np.all(bgr == np.array(colour, np.uint8)), (bgr[0, 0], colour)


def test_rgb8_red_is_bgr_red():
    _check(encoding_to_bgr(_fill((255, 0, 0), 3), "rgb8"), (0, 0, 255))


def test_bgr8_passthrough():
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    out = encoding_to_bgr(img, "bgr8")
    assert np.array_equal(out, img)
    _check(encoding_to_bgr(_fill((1, 2, 3), 3), "8UC3"), (1, 2, 3))


def test_mono8():
    _check(encoding_to_bgr(_fill(77), "mono8"), (77, 77, 77))
    _check(encoding_to_bgr(_fill(77, 1), "mono8"), (77, 77, 77))  # (H, W, 1) as some bridges give it


def test_bgra8_and_rgba8():
    _check(encoding_to_bgr(_fill((10, 20, 30, 40), 4), "bgra8"), (10, 20, 30))
    _check(encoding_to_bgr(_fill((10, 20, 30, 40), 4), "rgba8"), (30, 20, 10))


def test_mono16():
    _check(encoding_to_bgr(_fill(0xAB12, dtype=np.uint16), "mono16"), (0xAB, 0xAB, 0xAB))


def test_32fc1_scaled_and_nan():
    img = np.zeros((H, W), np.float32)
    img[:, :4] = 2.0
    img[:, 4:] = 6.0
    img[0, 0] = np.nan
    img[0, 1] = np.inf
    out = encoding_to_bgr(img, "32FC1")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert np.all(out[1:, :4] == 0) and np.all(out[:, 4:] == 255)
    assert np.all(out[0, 0] == 0) and np.all(out[0, 1] == 0)  # non-finite -> black
    assert np.all(encoding_to_bgr(np.full((H, W), np.nan, np.float32), "32FC1") == 0)


def _uyvy(y, u, v):
    packed = np.zeros((H, W // 2, 4), np.uint8)
    packed[..., 0], packed[..., 1], packed[..., 2], packed[..., 3] = u, y, v, y
    return packed.reshape(H, W * 2)


def test_yuv422_is_uyvy():
    grey = encoding_to_bgr(_uyvy(200, 128, 128), "yuv422")
    assert grey.shape == (H, W, 3)
    # neutral chroma -> grey (would be strongly tinted if the bytes were read as YUYV)
    assert int(grey.max()) - int(grey.min()) <= 2 and grey.min() > 180
    red = encoding_to_bgr(_uyvy(81, 90, 240).reshape(H, W, 2), "yuv422")  # (H, W, 2) form, BT.601 red
    b, g, r = (int(c) for c in red[2, 2])
    assert r > 200 and g < 40 and b < 40


def test_bayer_rggb8_red():
    mosaic = np.zeros((8, 8), np.uint8)
    mosaic[0::2, 0::2] = 255  # R sites of an RGGB pattern
    out = encoding_to_bgr(mosaic, "bayer_rggb8")
    assert out.shape == (8, 8, 3)
    assert tuple(int(c) for c in out[4, 4]) == (0, 0, 255)


def test_unsupported_and_bad_shapes():
    with pytest.raises(ValueError, match="rgb16"):
        encoding_to_bgr(_fill(0, 3, np.uint16), "rgb16")
    with pytest.raises(ValueError, match="rgb8"):
        encoding_to_bgr(_fill(0), "rgb8")  # one channel labelled rgb8
    with pytest.raises(ValueError):
        encoding_to_bgr(np.zeros((0, 0, 3), np.uint8), "bgr8")
    with pytest.raises(ValueError):
        encoding_to_bgr(np.zeros((H, 6), np.uint8), "yuv422")  # 6 bytes: not whole pixel pairs


# ------------------------------------------------------------------ FacePipeline.classify


def _scene(labels, seed=0):
    """A 240x320 BGR frame with a fake face per label, and matching detections with landmarks."""
    import cv2

    frame = np.full((240, 320, 3), 90, np.uint8)
    dets = []
    for i, label in enumerate(labels):
        x0, y0, side = 20 + 150 * i, 40, 120
        frame[y0:y0 + side, x0:x0 + side] = cv2.resize(fake_face(label, seed=seed, colour=True), (side, side))
        s = side / 48.0
        lm = np.array([[16, 17], [32, 17], [24, 26], [17, 36], [31, 36]], np.float32) * s + [x0, y0]
        dets.append(Detection(box=(x0 + 6 * s, y0 + 4 * s, 36 * s, 42 * s), score=0.9, landmarks=lm))
    return frame, dets


@pytest.fixture(scope="module")
def classifier(tiny_model_path):
    from fer_mask_ros.perception.classifier import EmotionClassifier

    return EmotionClassifier(tiny_model_path, backend="torch")


def test_classify_one_result_per_face_and_smoothing(classifier):
    pipe = FacePipeline(classifier=classifier, half_life_s=0.1, smoothing_timeout_s=2.0)
    frame1, dets1 = _scene([3, 5], seed=0)
    faces1 = [TrackedFace(7, dets1[0]), TrackedFace(9, dets1[1])]
    crops = pipe.crops(frame1, faces1)
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8

    first = pipe.classify(frame1, faces1, stamp=0.0)
    assert [r.track_id for r in first] == [7, 9]
    for r, d in zip(first, dets1):
        assert isinstance(r, FaceEmotion) and r.detection is d
        assert r.raw.probabilities.shape == (len(EMOTIONS),)
        assert abs(r.raw.probabilities.sum() - 1) < 1e-6 and 0 <= r.raw.mask_probability <= 1
        # the first frame of a track: smoothed == raw
        assert np.allclose(r.prediction.probabilities, r.raw.probabilities, atol=1e-6)
    assert not np.allclose(first[0].raw.probabilities, first[1].raw.probabilities)

    # next frame: the faces swap places, so each track sees different crops
    frame2, dets2 = _scene([5, 3], seed=1)
    faces2 = [TrackedFace(7, dets2[0]), TrackedFace(9, dets2[1])]
    second = pipe.classify(frame2, faces2, stamp=0.1)
    for old, new in zip(first, second):
        p_old, p_raw, p_smooth = old.raw.probabilities, new.raw.probabilities, new.prediction.probabilities
        assert not np.allclose(p_raw, p_old, atol=1e-6)
        # the evidence: the mean of the log-probabilities, the older answer (0.1 s = one half-life) at half weight
        expected = np.exp((np.log(p_raw) + 0.5 * np.log(p_old)) / 1.5)
        assert np.allclose(p_smooth, expected / expected.sum(), atol=1e-5)
        assert np.abs(p_smooth - p_raw).sum() < np.abs(p_old - p_raw).sum()
        assert abs(p_smooth.sum() - 1) < 1e-5
        assert new.prediction.emotion == EMOTIONS[int(np.argmax(p_smooth))]
        m_expected = (new.raw.mask_probability + 0.5 * old.raw.mask_probability) / 1.5
        assert new.prediction.mask_probability == pytest.approx(m_expected, abs=1e-5)

    # a stream takes one pass per face
    one_pass, _ = classifier.predict_batch(crops, flip=False)
    assert np.allclose([r.raw.probabilities for r in first], one_pass, atol=1e-6)
    # smooth=False (a still): the prediction is this frame alone, each face averaged with its mirror image
    third = pipe.classify(frame1, faces1, stamp=0.2, smooth=False)
    with_mirror, _ = classifier.predict_batch(crops, flip=True)
    assert not np.allclose(with_mirror, one_pass, rtol=0, atol=1e-6)
    for r, expected in zip(third, with_mirror):
        assert np.allclose(r.prediction.probabilities, r.raw.probabilities)
        assert np.allclose(r.raw.probabilities, expected, atol=1e-6)

    assert pipe.classify(frame1, [], stamp=0.3) == []


def test_pipeline_needs_its_parts(classifier):
    frame, dets = _scene([0])
    with pytest.raises(RuntimeError, match="classifier"):
        FacePipeline().classify(frame, [TrackedFace(1, dets[0])], 0.0)
    with pytest.raises(RuntimeError, match="detector"):
        FacePipeline(classifier=classifier).detect(frame, 0.0)


class StubDetector:
    """Returns the scene's detections, shifted a little each frame."""

    def __init__(self, dets):
        self.dets = dets
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        shift = 2.0 * self.calls
        return [Detection(box=(d.box[0] + shift, d.box[1], d.box[2], d.box[3]), score=d.score,
                          landmarks=d.landmarks + [shift, 0]) for d in self.dets]


def test_process_keeps_track_ids(classifier):
    frame, dets = _scene([3, 5])
    pipe = FacePipeline(detector=StubDetector(dets), classifier=classifier)
    a = pipe.process(frame, 0.0)
    b = pipe.process(frame, 0.1)
    assert len(a) == len(b) == 2
    assert [r.track_id for r in a] == [r.track_id for r in b]
    assert len({r.track_id for r in a}) == 2
    pipe.reset()
    assert len(pipe.evidence) == 0


# ------------------------------------------------------------------ full scans vs re-finding tracked faces


class ScanStub:
    """Counts full scans and windowed re-finds; faces can come and go."""

    def __init__(self, dets, refind=True):
        self.dets, self.refind = list(dets), refind
        self.full = self.near = 0

    def detect(self, image):
        self.full += 1
        return list(self.dets)

    def detect_near(self, image, boxes):
        self.near += 1
        out = []
        for box in boxes:
            match = [d for d in self.dets if abs(d.center[0] - (box[0] + box[2] / 2)) < box[2] / 2]
            out.append(match[0] if (match and self.refind) else None)
        return out

    @staticmethod
    def region_pixels():
        return 128 * 128

    @staticmethod
    def network_pixels(height, width):
        return 256 * 320


def test_full_scan_every_interval_refind_in_between():
    frame, dets = _scene([3])
    stub = ScanStub(dets)
    pipe = FacePipeline(detector=stub, full_scan_interval=0.1)
    ids = [f.track_id for i in range(9) for f in pipe.detect(frame, i / 30.0)]
    assert ids == [ids[0]] * 9
    assert (stub.full, stub.near) == (3, 6)  # frames 0, 3, 6 are full scans
    assert (pipe.full_scans, pipe.region_scans) == (3, 6)


def test_new_face_is_found_at_the_next_full_scan():
    frame, dets = _scene([3, 5])
    stub = ScanStub(dets[:1])
    pipe = FacePipeline(detector=stub, full_scan_interval=0.1)
    pipe.detect(frame, 0.0)
    stub.dets = list(dets)  # a second person walks in
    assert len(pipe.detect(frame, 1 / 30.0)) == 1
    assert len(pipe.detect(frame, 2 / 30.0)) == 1
    assert len(pipe.detect(frame, 3 / 30.0)) == 2


def test_lost_face_backwards_stamp_and_crowds_trigger_full_scans():
    frame, dets = _scene([3])
    stub = ScanStub(dets, refind=False)
    pipe = FacePipeline(detector=stub, full_scan_interval=0.1)
    pipe.detect(frame, 0.0)
    assert len(pipe.detect(frame, 0.033)) == 1  # not re-found in its window: full scan on the same frame
    assert (stub.full, stub.near) == (2, 1)

    stub = ScanStub(dets)
    pipe = FacePipeline(detector=stub, full_scan_interval=0.1)
    pipe.detect(frame, 5.0)
    pipe.detect(frame, 1.0)  # a looping bag
    assert (stub.full, stub.near) == (2, 0)

    crowd = [Detection(box=(10 + 30 * i, 10, 25, 25), score=0.9) for i in range(6)]
    stub = ScanStub(crowd)
    pipe = FacePipeline(detector=stub, full_scan_interval=0.1)
    for i in range(3):
        assert len(pipe.detect(frame, i / 30.0)) == 6
    assert (stub.full, stub.near) == (3, 0)  # 6 windows would cost more than the budget


def test_zero_interval_scans_every_frame_and_negative_is_refused():
    frame, dets = _scene([3])
    stub = ScanStub(dets)
    pipe = FacePipeline(detector=stub, full_scan_interval=0.0)
    for i in range(4):
        pipe.detect(frame, i / 30.0)
    assert (stub.full, stub.near) == (4, 0)
    with pytest.raises(ValueError, match="full_scan_interval"):
        FacePipeline(detector=stub, full_scan_interval=-1)


def test_detector_without_windows_always_scans_fully(classifier):
    frame, dets = _scene([3])
    stub = StubDetector(dets)
    pipe = FacePipeline(detector=stub, classifier=classifier)
    for i in range(4):
        pipe.process(frame, i / 30.0)
    assert stub.calls == 4


def test_bad_image_after_tracking_is_the_detectors_clear_error():

    from fer_mask_ros.imaging import read_video
    from fer_mask_ros.perception.detection import FaceDetector
    from fer_mask_ros.simulation.frame_source import find_demo_clip

    frame = read_video(find_demo_clip(), max_frames=1)[0]
    pipe = FacePipeline(detector=FaceDetector(), full_scan_interval=0.1)
    assert pipe.detect(frame, 0.0)  # faces are tracked: the next frame may take the window path
    with pytest.raises(ValueError, match="image"):
        pipe.detect(None, 0.01)
    assert pipe.detect(np.zeros((0, 0, 3), np.uint8), 0.02) == []


def test_a_stream_classifies_due_faces_only_and_carries_the_evidence(classifier):
    """Issue #31: with a 10 Hz schedule on a 30 fps stream each face is classified every third frame (both new
    faces in their first frame), never both in one frame after that; the other rows carry the face's evidence,
    and raw is the newest answer."""
    from fer_mask_ros.perception.schedule import ClassifySchedule

    pipe = FacePipeline(classifier=classifier, schedule=ClassifySchedule({"fer_mask_net": 10.0}))
    frame, dets = _scene([3, 5])
    faces = [TrackedFace(7, dets[0]), TrackedFace(9, dets[1])]
    calls = []
    member = pipe.zoo.members["fer_mask_net"]
    predict = member.predict_faces
    member.predict_faces = lambda image, detections, flip=None: calls.append(len(detections)) or predict(
        image, detections, flip)
    last = {}
    for i in range(30):
        results = pipe.classify(frame, faces, i / 30.0)
        assert [r.track_id for r in results] == [7, 9]
        if i == 0:
            assert all(r.fresh for r in results)  # a new face: its first emotion in its first frame
        else:
            assert sum(r.fresh for r in results) <= 1
        for r in results:
            if not r.fresh:  # nothing new: the evidence (and the newest answer) carried
                assert np.allclose(r.prediction.probabilities, last[r.track_id][0])
                assert np.allclose(r.raw.probabilities, last[r.track_id][1])
            last[r.track_id] = (r.prediction.probabilities, r.raw.probabilities)
    assert calls[0] == 2 and sum(calls) == pytest.approx(2 * 10, abs=2)  # 10 Hz per face for one second
    assert pipe.schedule.fresh_share == pytest.approx(1 / 3, abs=0.05)
