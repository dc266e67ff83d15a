"""The classifier zoo: each member's preprocessing on synthetic faces, the fusion's maths, member selection."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_mask_ros.errors import ModelError
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.detection import Detection
from fer_mask_ros.perception.fusion import FUSION_FORMAT, Fusion
from fer_mask_ros.perception.real_face_teacher import ARCFACE_TEMPLATE, align_face
from fer_mask_ros.perception.zoo import CLASSIFIER_NAMES, MemberOutput, Zoo, make_member, make_zoo
from fer_mask_ros.perception.zoo.faceapi import FACEAPI_ORDER, padded_square
from fer_mask_ros.perception.zoo.fer_mask_net import FerMaskNetMember

pytest.importorskip("onnxruntime")


def _dot_image(point, h=240, w=320):
    img = np.zeros((h, w, 3), np.uint8)
    cv2.circle(img, (int(round(point[0])), int(round(point[1]))), 2, (255, 255, 255), -1)
    return img


def _centroid(img):
    weight = img[:, :, 0].astype(float)
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def test_mobilefacenet_alignment_puts_the_landmarks_on_the_arcface_template():
    rng = np.random.default_rng(3)
    # a template face scaled by 1.3, rotated 12 degrees and moved: the warp must undo all three
    angle = np.deg2rad(12)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (ARCFACE_TEMPLATE - 56) @ rot.T * 1.3 + np.array([150, 120]) + rng.normal(0, 0.01, (5, 2))
    for point, target in zip(landmarks, ARCFACE_TEMPLATE):
        face = align_face(_dot_image(point), landmarks)
        assert face.shape == (112, 112, 3)
        assert np.linalg.norm(_centroid(face) - target) < 1.0


def test_faceapi_pads_the_box_to_a_centred_square():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:60, 50:130] = (0, 0, 255)  # a red 80 x 40 "face" (BGR)
    face = padded_square(img, (50, 20, 80, 40))
    assert face.shape == (112, 112, 3)
    assert (face[56, 56] == (255, 0, 0)).all()  # RGB now
    assert face[5, 56].max() == 0 and face[106, 56].max() == 0  # zero bands above and below, as face-api.js pads
    assert face[56, 2, 0] == 255 and face[56, 109, 0] == 255  # the wide side fills the square
    assert padded_square(img, (500, 500, 10, 10)).max() == 0  # a box with no pixels: an empty face, no crash


def test_faceapi_output_is_reordered_to_ours():
    member = make_member("faceapi", threads=1)
    z = np.arange(7, dtype=np.float32)

    class Session:
        def run(self, _outputs, _feed):
            return [np.tile(z / z.sum(), (1, 1))]

    member.session = Session()
    out = member.predict_inputs(np.zeros((1, 112, 112, 3), np.uint8))
    probs = np.exp(out.log_probs[0])
    for ours, name in enumerate(EMOTIONS):
        assert probs[ours] == pytest.approx(z[FACEAPI_ORDER.index(name)] / z.sum(), abs=1e-6)


def test_fer_mask_net_member_reads_the_aligned_crop(tiny_model_path):
    from fer_mask_ros.perception.alignment import aligned_crop
    from fer_mask_ros.perception.classifier import load_classifier

    member = FerMaskNetMember(load_classifier(tiny_model_path, threads=1, backend="torch"))
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    det = Detection((40, 30, 60, 60), 0.9, np.array([[55, 50], [85, 50], [70, 65], [58, 78], [82, 78]], float))
    np.testing.assert_array_equal(member.crops(img, [det])[0], aligned_crop(img, det, size=48))
    out = member.predict_faces(img, [det], flip=False)
    assert out.log_probs.shape == (1, 7) and out.mask_prob.shape == (1,)
    assert np.exp(out.log_probs).sum() == pytest.approx(1.0, abs=1e-6)


def test_every_shipped_member_gives_log_probabilities_for_every_face():
    img = np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)
    dets = [Detection((30, 30, 80, 90), 0.9, np.array([[50, 60], [90, 60], [70, 80], [55, 100], [85, 100]], float)),
            Detection((120, 100, 60, 60), 0.8, None)]
    for name in ("faceapi", "mobilefacenet"):
        out = make_member(name, threads=1).predict_faces(img, dets)
        assert out.log_probs.shape == (2, 7)
        if name == "mobilefacenet":
            assert np.isnan(out.log_probs[1]).all()  # no landmarks: the member cannot align, the fusion leaves it out
            rows = out.log_probs[:1]
        else:
            rows = out.log_probs
        np.testing.assert_allclose(np.exp(rows).sum(1), 1.0, atol=1e-5)


def test_fusion_single_is_the_member_itself():
    lp = np.log(np.array([[0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]]))
    np.testing.assert_allclose(Fusion.single("a").combine({"a": lp}, np.array([0.0])), np.exp(lp))


def test_fusion_is_log_linear_per_condition_with_its_temperature():
    f = Fusion({"unmasked": {"a": 1.0, "b": 0.5}, "masked": {"a": 1.0, "b": 0.0}},
               {"unmasked": 2.0, "masked": 1.0})
    a = np.log(np.array([[0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]] * 2))
    b = np.log(np.array([[0.05, 0.7, 0.05, 0.05, 0.05, 0.05, 0.05]] * 2))
    got = f.combine({"a": a, "b": b}, np.array([0.1, 0.9]))
    z = (a[0] + 0.5 * b[0]) / 2.0
    np.testing.assert_allclose(got[0], np.exp(z - z.max()) / np.exp(z - z.max()).sum())
    np.testing.assert_allclose(got[1], np.exp(a[1]))  # masked: b weighs nothing
    assert f.members == ("a", "b")


def test_fusion_rescales_when_a_member_is_missing_or_nan():
    f = Fusion({c: {"a": 0.6, "b": 0.6} for c in ("unmasked", "masked")}, {"unmasked": 1.2, "masked": 1.2})
    a = np.log(np.full((1, 7), 1 / 7.0) + np.eye(7)[[3]] * 0.3)
    a -= np.log(np.exp(a).sum())
    alone = f.combine({"a": a}, np.array([0.0]))
    with_nan = f.combine({"a": a, "b": np.full((1, 7), np.nan)}, np.array([0.0]))
    np.testing.assert_allclose(alone, np.exp(a))  # 1.2 / 1.2: the member's own answer, not softened
    np.testing.assert_allclose(with_nan, alone)
    with pytest.raises(ValueError):
        f.combine({"b": np.full((1, 7), np.nan)}, np.array([0.0]))


@pytest.mark.parametrize("bad", [
    {"format": "other"},
    {"format": FUSION_FORMAT, "weights": {"unmasked": {"a": 1}}, "temperatures": {"unmasked": 1, "masked": 1}},
    {"format": FUSION_FORMAT, "weights": {"unmasked": {"a": -1}, "masked": {"a": 1}},
     "temperatures": {"unmasked": 1, "masked": 1}},
    {"format": FUSION_FORMAT, "weights": {"unmasked": {"a": 1}, "masked": {"a": 1}},
     "temperatures": {"unmasked": float("nan"), "masked": 1}},
])
def test_a_bad_fusion_file_is_one_clear_error(tmp_path, bad):
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ModelError) as err:
        Fusion.load(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_fusion_round_trips_through_its_file(tmp_path):
    f = Fusion({"unmasked": {"a": 0.7, "b": 0.3}, "masked": {"a": 0.9, "b": 0.1}}, {"unmasked": 1.1, "masked": 1.4},
               provenance={"fitted_on": "test"})
    path = tmp_path / "f.json"
    path.write_text(json.dumps(f.to_json()))
    g = Fusion.load(str(path))
    assert g.weights == f.weights and g.temperatures == f.temperatures and g.provenance["fitted_on"] == "test"


def test_unknown_classifier_name_is_one_clear_error():
    with pytest.raises(ModelError, match="unknown classifier 'nope'; choose one of fusion, "):
        make_zoo("nope")
    assert "fusion" in CLASSIFIER_NAMES and "fer_mask_net" in CLASSIFIER_NAMES


def test_zoo_fuses_members_and_takes_the_mask_flag_from_the_mask_head(tiny_model_path):
    zoo = make_zoo("faceapi", threads=1, model=tiny_model_path)
    assert zoo.mask_member == "fer_mask_net" and zoo.run_order() == ("fer_mask_net", "faceapi")
    out = {"fer_mask_net": MemberOutput(np.log(np.full((1, 7), 1 / 7)), np.array([0.8])),
           "faceapi": MemberOutput(np.log(np.eye(7)[[2]] * 0.9 + 0.1 / 7))}
    probs, mask = zoo.fuse(out)
    assert mask[0] == pytest.approx(0.8) and probs[0].argmax() == 2
    with pytest.raises(ValueError):
        zoo.fuse({"faceapi": out["faceapi"]})
    with pytest.raises(ModelError):
        Zoo({"faceapi": zoo.members["faceapi"]}, Fusion.single("faceapi"))
