from __future__ import annotations

import csv
import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main
from fer_mask_ros.errors import DetectorError
from fer_mask_ros.imaging import to_bgr
from fer_mask_ros.perception.detection import DEFAULT_MODEL_PATH, Detection, FaceDetector, decode_centerface, iou, nms

HEADER = "path,face,x,y,w,h,score,lex,ley,rex,rey,nx,ny,lmx,lmy,rmx,rmy"


def draw_face(size: int = 36, frame=(240, 320), centre=None, background=(90, 110, 100)) -> np.ndarray:
    """A procedural cartoon face the CenterFace model finds (score ~0.75 at 30-36 px, full resolution)."""
    img = np.full((frame[0], frame[1], 3), background, np.uint8)
    cx, cy = centre if centre is not None else (frame[1] // 2, frame[0] // 2)
    s = size / 2
    cv2.ellipse(img, (cx, cy), (int(s * 0.78), int(s)), 0, 0, 360, (150, 175, 215), -1)
    cv2.ellipse(img, (cx, int(cy - s * 0.75)), (int(s * 0.85), int(s * 0.45)), 0, 180, 360, (30, 30, 40), -1)
    for dx in (-1, 1):
        ex, ey = int(cx + dx * s * 0.35), int(cy - s * 0.15)
        cv2.ellipse(img, (ex, ey), (int(s * 0.16), int(s * 0.08)), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(img, (ex, ey), int(s * 0.07), (40, 30, 30), -1)
        cv2.line(img, (int(ex - s * 0.18), int(ey - s * 0.18)), (int(ex + s * 0.18), int(ey - s * 0.2)),
                 (40, 40, 50), max(1, int(s * 0.05)))
    cv2.line(img, (cx, int(cy - s * 0.05)), (cx - int(s * 0.07), int(cy + s * 0.22)), (110, 130, 170), 2)
    cv2.ellipse(img, (cx, int(cy + s * 0.5)), (int(s * 0.25), int(s * 0.08)), 0, 0, 360, (80, 80, 170), -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


# ----------------------------------------------------------------------------- decoding


def test_decode_single_peak_box_and_landmarks():
    h, w = 16, 20
    heat = np.zeros((1, 1, h, w), np.float32)
    heat[0, 0, 5, 7] = 0.9
    heat[0, 0, 5, 8] = 0.6  # neighbour of the peak: not a local maximum, must not decode
    heat[0, 0, 12, 2] = 0.3  # below threshold
    scale = np.zeros((1, 2, h, w), np.float32)
    scale[0, 0] = np.log(10.0)  # height 40 px at stride 4
    scale[0, 1] = np.log(8.0)  # width 32 px
    offset = np.zeros((1, 2, h, w), np.float32)
    offset[0, 0, 5, 7] = 0.25  # y
    offset[0, 1, 5, 7] = -0.5  # x
    lms = np.zeros((1, 10, h, w), np.float32)
    # point j: channel 2j = y fraction of box height, 2j+1 = x fraction of box width
    fr = [(0.3, 0.25), (0.3, 0.75), (0.55, 0.5), (0.8, 0.3), (0.8, 0.7)]
    for j, (fy, fx) in enumerate(fr):
        lms[0, 2 * j, 5, 7] = fy
        lms[0, 2 * j + 1, 5, 7] = fx
    boxes, scores, points = decode_centerface(heat, scale, offset, lms, threshold=0.5)
    assert boxes.shape == (1, 4) and scores.shape == (1,) and points.shape == (1, 5, 2)
    cx, cy = (7 - 0.5 + 0.5) * 4, (5 + 0.25 + 0.5) * 4
    np.testing.assert_allclose(boxes[0], [cx - 16, cy - 20, cx + 16, cy + 20], atol=1e-4)
    assert scores[0] == pytest.approx(0.9)
    for j, (fy, fx) in enumerate(fr):
        np.testing.assert_allclose(points[0, j], [cx - 16 + fx * 32, cy - 20 + fy * 40], atol=1e-4)


def test_decode_nothing_above_threshold():
    h, w = 8, 8
    boxes, scores, points = decode_centerface(
        np.full((1, 1, h, w), 0.1, np.float32), np.zeros((1, 2, h, w)), np.zeros((1, 2, h, w)),
        np.zeros((1, 10, h, w)), threshold=0.5)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and points.shape == (0, 5, 2)


def test_nms_suppresses_overlaps_and_orders_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.1], np.float32)
    assert nms(boxes, scores, 0.3) == [1, 2]
    assert nms(boxes, scores, 0.99) == [1, 2, 0, 3]
    assert nms(np.zeros((0, 4)), np.zeros((0,))) == []
    with pytest.raises(ValueError):
        nms(boxes, scores[:2])


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


# ----------------------------------------------------------------------------- model loading


def test_missing_model_names_path(tmp_path):
    path = str(tmp_path / "nope.onnx")
    with pytest.raises(DetectorError, match="nope.onnx"):
        FaceDetector(model_path=path)


def test_corrupt_model_names_path(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not an onnx model" * 10)
    with pytest.raises(DetectorError, match="broken.onnx"):
        FaceDetector(model_path=str(path))


def test_default_model_is_shipped():
    assert os.path.isfile(DEFAULT_MODEL_PATH)


# ----------------------------------------------------------------------------- detection


def test_finds_procedural_face_with_sane_landmarks(detector):
    img = draw_face(36, centre=(150, 130))
    dets = detector.detect(img)
    assert len(dets) == 1
    det = dets[0]
    assert isinstance(det, Detection)
    x, y, w, h = det.box
    assert x < 150 < x + w and y < 130 < y + h
    assert 20 < h < 50
    assert det.score >= detector.score_threshold
    lm = det.landmarks
    assert lm.shape == (5, 2)
    assert lm[0, 0] < lm[1, 0]  # image-left eye first
    assert lm[3, 0] < lm[4, 0]  # image-left mouth corner first
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])  # eyes above nose above mouth


def test_same_face_in_grey_and_bgra(detector):
    img = draw_face(36)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    ref = detector.detect(img)
    assert len(ref) == 1
    for variant in (grey, grey[:, :, None], bgra):
        dets = detector.detect(variant)
        assert len(dets) == 1
        assert iou(dets[0].box, ref[0].box) > 0.7


def test_no_faces_in_plain_and_noise_frames(detector):
    rng = np.random.default_rng(1)
    frames = [np.full((240, 320, 3), 128, np.uint8), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
    for frame in frames:
        assert detector.detect(frame) == []


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10), (1, 1, 3), (1, 1), (2, 300, 3), (300, 1)])
def test_degenerate_images_give_empty_list(detector, shape):
    assert detector.detect(np.zeros(shape, np.uint8)) == []


def test_huge_image_is_downscaled_and_finds_big_face(detector):
    img = draw_face(900, frame=(3000, 4000))
    dets = detector.detect(img)
    assert isinstance(dets, list)
    assert detector.input_scale(3000, 4000) * 4000 <= detector.max_input_side + 1
    for det in dets:
        x, y, w, h = det.box
        assert 0 <= x and 0 <= y and x + w <= 4000 + 1e-3 and y + h <= 3000 + 1e-3


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 2), np.uint8), np.zeros((2, 10, 10, 3), np.uint8),
            np.zeros(10, np.uint8), [[1, 2], [3, 4]], None])
def test_non_images_raise_clear_value_error(detector, bad):
    with pytest.raises(ValueError, match="image"):
        detector.detect(bad)


def test_to_bgr_shapes():
    assert to_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)


# ----------------------------------------------------------------------------- CLI


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_detect_cli_csv_contract(tmp_path, capsys):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "b_face.png"), draw_face(36))
    cv2.imwrite(str(folder / "sub" / "c_face.jpg"), draw_face(32, centre=(100, 120)))
    cv2.imwrite(str(folder / "a_empty.png"), np.full((120, 160, 3), 90, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "faces.csv"
    annotated = tmp_path / "ann"
    rc = main(["detect", "--output", str(out), "--annotate", str(annotated), str(folder)])
    assert rc == 0
    rows = _read_csv(out)
    assert ",".join(rows[0]) == HEADER
    body = rows[1:]
    assert all(len(r) == 17 for r in body)
    paths = [r[0] for r in body]
    assert paths == sorted(paths)
    assert [os.path.basename(p) for p in paths] == ["a_empty.png", "b_face.png", "c_face.jpg"]
    assert body[0][1:] == [""] * 16  # read, no face: one row with the path only (issue 32)
    for r in body[1:]:
        assert r[1] == "0"
        x, y, w, h, score = (float(v) for v in r[2:7])
        assert w > 15 and h > 20 and 0 < score <= 1
        lex, rex = float(r[7]), float(r[9])
        assert x <= lex < rex <= x + w
    err = capsys.readouterr().err
    assert "broken.jpg" in err
    assert "1 unreadable" in err and "3 image(s) read (1 without a face)" in err
    assert (annotated / "b_face.png").is_file() and (annotated / "sub" / "c_face.jpg").is_file()


def test_detect_cli_threshold_one_gives_a_row_without_a_face(tmp_path):
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), draw_face(36))
    out = tmp_path / "faces.csv"
    assert main(["detect", "--output", str(out), "--threshold", "1.0", str(img)]) == 0
    assert [",".join(r) for r in _read_csv(out)] == [HEADER, str(img) + "," * 16]


def test_detect_cli_missing_path(tmp_path, capsys):
    rc = main(["detect", "--output", str(tmp_path / "x.csv"), str(tmp_path / "does_not_exist.png")])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does_not_exist.png" in err[0]


def test_detect_cli_nothing_readable(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    rc = main(["detect", "--output", str(tmp_path / "x.csv"), str(bad)])
    assert rc != 0
    assert "bad.png" in capsys.readouterr().err


# ----------------------------------------------------------------------------- re-finding a tracked face


def _clip_frame(index: int = 30) -> np.ndarray:
    """A frame of the bundled demo clip: real (FER) faces, which CenterFace scores like camera faces."""
    from fer_mask_ros.imaging import read_video
    from fer_mask_ros.simulation.frame_source import find_demo_clip

    return read_video(find_demo_clip(), max_frames=1, start=index)[0]


def test_detect_near_refinds_faces_in_frame_coordinates(detector):
    frame = _clip_frame()
    refs = detector.detect(frame)
    assert refs
    boxes = [(d.box[0] + 3, d.box[1] - 2, d.box[2], d.box[3]) for d in refs]  # slightly wrong predictions
    near = detector.detect_near(frame, boxes)
    assert len(near) == len(refs)
    for ref, found in zip(refs, near):
        assert found is not None
        assert iou(found.box, ref.box) > 0.6
        assert np.abs(found.landmarks - ref.landmarks).max() < 0.25 * ref.box[3]


def test_detect_near_gives_none_where_no_face(detector):
    frame = np.full((240, 320, 3), 120, np.uint8)
    found = detector.detect_near(frame, [(220, 150, 40, 40), (-500, -500, 40, 40), (310, 230, 40, 40), (0, 0, 0, 0)])
    assert found == [None, None, None, None]
    assert detector.detect_near(np.zeros((1, 1, 3), np.uint8), [(0, 0, 10, 10)]) == [None]


def test_detect_near_at_border_stays_inside_image(detector):
    frame = _clip_frame()
    ref = detector.detect(frame)[0]
    x, y, w, h = (int(v) for v in ref.box)
    shifted = np.ascontiguousarray(frame[:, x + w // 3:])  # the face is now cut by the left border
    assert detector.detect(shifted)  # a full scan still finds the cut face ...
    near = detector.detect_near(shifted, [(0.0, float(y), w - w / 3.0, float(h))])[0]
    assert near is not None  # ... and so does its window, which sticks out of the image
    nx, ny, nw, nh = near.box
    assert nx >= 0 and ny >= 0 and nx + nw <= shifted.shape[1] + 1e-3 and ny + nh <= shifted.shape[0] + 1e-3


def test_region_cost_is_a_fraction_of_a_full_scan(detector):
    assert detector.region_pixels() * 4 < detector.network_pixels(240, 320)


# ----------------------------------------------------------------------------- YuNet and the detector choice


def _yunet_outputs(height: int, width: int):
    """All-zero YuNet outputs (score 0 everywhere) for an input of this size, by name."""
    from fer_mask_ros.perception.yunet import STRIDES

    out = {}
    for s in STRIDES:
        n = (height // s) * (width // s)
        out.update({f"cls_{s}": np.zeros((1, n, 1), np.float32), f"obj_{s}": np.zeros((1, n, 1), np.float32),
                    f"bbox_{s}": np.zeros((1, n, 4), np.float32), f"kps_{s}": np.zeros((1, n, 10), np.float32)})
    return out


def test_decode_yunet_known_box_and_landmarks():
    from fer_mask_ros.perception.yunet import decode_yunet

    height, width = 64, 96  # stride 16: 4 rows x 6 columns
    out = _yunet_outputs(height, width)
    row, col, s = 2, 3, 16
    cell = row * (width // s) + col
    out["cls_16"][0, cell, 0], out["obj_16"][0, cell, 0] = 0.81, 1.0  # score sqrt(0.81) = 0.9
    out["bbox_16"][0, cell] = (0.25, -0.5, np.log(2.0), np.log(3.0))  # centre (3.25, 1.5) cells; 32 x 48 px
    points = np.array([(-0.5, -0.75), (0.5, -0.75), (0.0, 0.0), (-0.25, 1.0), (0.25, 1.0)], np.float32)
    out["kps_16"][0, cell] = points.reshape(-1)
    out["cls_8"][0, 5, 0], out["obj_8"][0, 5, 0] = 0.09, 0.25  # score 0.15: under the threshold
    boxes, scores, landmarks = decode_yunet(out, height, width, threshold=0.5)
    assert boxes.shape == (1, 4) and scores.shape == (1,) and landmarks.shape == (1, 5, 2)
    assert scores[0] == pytest.approx(0.9, abs=1e-5)
    cx, cy = (col + 0.25) * s, (row - 0.5) * s
    np.testing.assert_allclose(boxes[0], [cx - 16, cy - 24, cx + 16, cy + 24], atol=1e-3)
    expected = (points + np.array([col, row], np.float32)) * s
    np.testing.assert_allclose(landmarks[0], expected, atol=1e-3)
    assert decode_yunet(out, height, width, threshold=0.1)[0].shape == (2, 4)  # the stride-8 cell too
    assert decode_yunet(out, height, width, threshold=0.95)[0].shape == (0, 4)


def test_decode_yunet_rejects_outputs_of_another_size():
    from fer_mask_ros.perception.yunet import decode_yunet

    with pytest.raises(ValueError, match="stride 8"):
        decode_yunet(_yunet_outputs(64, 96), 96, 96, threshold=0.5)


@pytest.fixture(scope="module")
def yunet():
    from fer_mask_ros.perception.detection import make_detector

    return make_detector("yunet", num_threads=1)


def test_yunet_model_is_shipped_with_symbolic_input_dims(yunet):
    from fer_mask_ros.perception.detection import YuNetDetector

    assert isinstance(yunet, YuNetDetector) and yunet.model_path.endswith(os.path.join("models", "yunet.onnx"))
    dims = yunet._session.get_inputs()[0].shape
    assert not isinstance(dims[2], int) and not isinstance(dims[3], int)
    for shape in ((240, 320), (97, 131), (480, 640)):  # any size: padded to multiples of 32
        assert yunet.detect(np.full(shape + (3,), 120, np.uint8)) == []


@pytest.mark.parametrize("name", ["centerface", "yunet"])
def test_both_detectors_give_the_same_detection_type_through_the_pipeline(name):
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline, TrackedFace

    pipeline = FacePipeline(detector=make_detector(name, num_threads=1))
    frame = _clip_frame()
    faces = pipeline.detect(frame, 0.0)
    assert faces, name
    for face in faces:
        assert type(face) is TrackedFace and type(face.detection) is Detection
        x, y, w, h = face.detection.box
        assert 0 <= x and 0 <= y and x + w <= frame.shape[1] + 1e-3 and y + h <= frame.shape[0] + 1e-3
        lm = face.detection.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye / mouth corner first
        assert lm[2, 1] > lm[:2, 1].max() and lm[3:, 1].min() > lm[2, 1]  # eyes, nose, mouth downwards
    ids = [f.track_id for f in pipeline.detect(frame, 0.05)]  # a window re-find keeps the ids
    assert sorted(ids) == sorted(f.track_id for f in faces)


def test_yunet_finds_a_face_that_fills_the_photo_in_photo_mode(yunet):
    from fer_mask_ros.perception.photo import detect_photo_faces

    frame = _clip_frame()
    x, y, w, h = (int(v) for v in yunet.detect(frame)[0].box)
    close_up = cv2.resize(frame[y:y + h, x:x + w], (600, 600), interpolation=cv2.INTER_CUBIC)
    found = detect_photo_faces(yunet, close_up)
    assert found and found[0].box[2] > 300  # the face, not a detail of it


def test_make_detector_names_and_errors(tmp_path):
    from fer_mask_ros.perception.detection import (
        DETECTORS,
        YuNetDetector,
        default_detector_name,
        detector_from_settings,
        make_detector,
    )

    assert sorted(DETECTORS) == ["centerface", "yunet"]
    assert default_detector_name() in DETECTORS
    assert type(make_detector(None)) is DETECTORS[default_detector_name()]
    with pytest.raises(DetectorError, match="unknown detector 'retina': choose one of centerface, yunet"):
        make_detector("retina")
    with pytest.raises(DetectorError, match="not a YuNet model"):
        make_detector("yunet", model_path=DEFAULT_MODEL_PATH)
    # the face_detector node's parameters (nodes/face_detector passes param("detector") etc.)
    det = detector_from_settings({"detector": "yunet", "detector_model": "", "score_threshold": 0.7, "min_face": 80})
    assert isinstance(det, YuNetDetector) and det.score_threshold == 0.7 and det.min_face == 80
    assert type(detector_from_settings({"detector": ""})) is DETECTORS[default_detector_name()]
    with pytest.raises(DetectorError, match="unknown detector"):
        detector_from_settings({"detector": 3})
    with pytest.raises(DetectorError, match="bad detector setting"):
        detector_from_settings({"detector": "yunet", "min_face": "big"})


def test_face_detector_node_passes_its_detector_param():
    import ast

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    for node in ("face_detector", "emotion_classifier"):
        with open(os.path.join(root, "nodes", node), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        reads = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "param"
                 and c.args and getattr(c.args[0], "value", None) == "detector"]
        built = [c for c in ast.walk(tree) if isinstance(c, ast.Call)
                 and getattr(c.func, "id", "") == "detector_from_settings"]
        assert reads and built, node


def test_detect_cli_detector_choice(tmp_path, capsys):
    frame = _clip_frame()
    path = str(tmp_path / "frame.png")
    cv2.imwrite(path, frame)
    for name in ("yunet", "centerface"):
        out = str(tmp_path / f"{name}.csv")
        assert main(["detect", "--detector", name, "--no-progress", "--output", out, path]) == 0
        header, *rows = _read_csv(out)
        assert header == HEADER.split(",")
        assert rows and all(r[7] for r in rows)  # faces, with landmarks
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["detect", "--detector", "retina", path])
    assert exc.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [errors[0]] and "invalid choice: 'retina'" in errors[0] and "yunet" in errors[0]


@pytest.mark.parametrize("command", [["classify"], ["analyze", "--output", "out"], ["bench", "--analyze"]])
def test_other_commands_take_the_detector_choice(command, capsys):
    import argparse
    import importlib

    from fer_mask_ros.cli import _module_name

    parser = argparse.ArgumentParser()
    importlib.import_module(_module_name(command[0])).add_arguments(parser)
    args = parser.parse_args(command[1:] + ["x", "--detector", "yunet"] if command[0] != "bench"
                             else command[1:] + ["--detector", "yunet"])
    assert args.detector == "yunet"
    if command[0] == "bench":  # a bare --detector times every detector
        assert parser.parse_args(["--detector"]).detector is True
    with pytest.raises(SystemExit):
        parser.parse_args(command[1:] + ["--detector", "retina"])
    assert "invalid choice: 'retina'" in capsys.readouterr().err
