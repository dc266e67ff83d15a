"""`evaluate` across sources: photo mode through the real detector, missed faces counted, sources side by side."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.imaging import read_video
from fer_mask_ros.learning.evaluation import evaluate_predictions

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
CLIP = os.path.join(ROOT, "fer_mask_ros", "data", "demo_clip.avi")


def test_a_photo_without_a_face_counts_as_wrong():
    probs = np.array([[0.9, 0, 0, 0.1, 0, 0, 0], [np.nan] * 7, [0, 0, 0, 1.0, 0, 0, 0]])
    res = evaluate_predictions(np.array([0, 0, 3]), probs, mask_prob=np.array([0.9, np.nan, 0.2]), mask_true=True)
    assert res["no_face"] == 1
    assert res["accuracy"] == pytest.approx(2 / 3)
    assert res["per_class"]["angry"]["recall"] == pytest.approx(0.5)
    assert np.array(res["confusion"]).sum() == 2  # the miss is outside the confusion matrix
    assert res["mask_flag"]["accuracy"] == pytest.approx(1 / 3)  # flagged 1 of 3 masked photos
    assert res["four_class"]["no_face"] == 1


@pytest.fixture(scope="module")
def photo_source(tmp_path_factory):
    """A labelled photo folder made from the bundled clip: frames with one face, and one photo without."""
    root = tmp_path_factory.mktemp("photos")
    frames = read_video(CLIP, max_frames=31)
    for label, index in (("happy", 10), ("sad", 20), ("surprise", 30)):
        (root / label).mkdir()
        cv2.imwrite(str(root / label / f"Person_{index}_0001.png"), frames[index])
    cv2.imwrite(str(root / "sad" / "Nobody_0001.png"), np.full((120, 160, 3), 128, np.uint8))
    return root


@pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")
def test_photo_sources_side_by_side_with_fer(photo_source, tiny_model_path, fer_folder, tmp_path, capsys):
    from fer_mask_ros.cli import main

    out = tmp_path / "eval"
    rc = main(["evaluate", fer_folder, str(photo_source), "--photos", "--usage", "PrivateTest",
               "--conditions", "unmasked,masked,unseen", "--model", tiny_model_path, "--output", str(out),
               "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    fer, photos = metrics["sources"]["fer PrivateTest"], metrics["sources"][photo_source.name]
    assert fer["kind"] == "crops" and fer["n"] == 7
    assert photos["kind"] == "photos" and photos["n"] == 4
    for condition in ("unmasked", "masked", "unseen mask"):
        res = photos["conditions"][condition]
        assert res["n"] == 4 and res["no_face"] == 1  # the empty photo: counted, and wrong
        assert res["per_class"]["sad"]["support"] == 2
        assert (out / f"confusion_{photo_source.name}_{condition.replace(' ', '_')}.png").stat().st_size > 0
        assert (out / f"confusion_fer_PrivateTest_{condition.replace(' ', '_')}.png").stat().st_size > 0
    assert set(photos["conditions"]["unmasked"]) >= {"balanced_accuracy", "four_class", "three_class", "per_class"}
    table = capsys.readouterr().out
    assert f"| {photo_source.name} | unseen mask | fer_mask_ros | 4 | 1 |" in table
    assert "| fer PrivateTest | masked | fer_mask_ros | 7 | 0 |" in table


def test_holdout_keeps_only_the_part_training_never_sees(photo_source, tiny_model_path, tmp_path):
    from fer_mask_ros.cli import main
    from fer_mask_ros.learning.photo_sources import is_holdout

    out = tmp_path / "eval"
    assert main(["evaluate", str(photo_source), "--photos", "--holdout", "--no-masked", "--model",
                 tiny_model_path, "--output", str(out), "--no-progress"]) == 0
    expected = sum(is_holdout(p) for p in photo_source.rglob("*.png"))
    assert json.loads((out / "metrics.json").read_text())["n"] == expected


def test_unknown_condition_is_one_line(tiny_model_path, fer_folder, capsys):
    from fer_mask_ros.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", fer_folder, "--conditions", "masked,scarf", "--model", tiny_model_path])
    assert "unknown condition 'scarf'" in capsys.readouterr().err


def test_evaluate_reports_ece_risk_coverage_and_spoken_words(tiny_model_path, fer_folder, tmp_path, capsys):
    from fer_mask_ros.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", fer_folder, "--usage", "PrivateTest", "--model", tiny_model_path, "--output", str(out),
                 "--no-progress"]) == 0
    res = json.loads((out / "metrics.json").read_text())["conditions"]["masked"]
    assert 0.0 <= res["ece"] <= 1.0
    rows = res["risk_coverage"]
    assert rows[0]["min_confidence"] == 0.0 and rows[0]["coverage"] == pytest.approx(1.0)
    assert all(a["coverage"] >= b["coverage"] for a, b in zip(rows, rows[1:]))  # stricter: fewer faces spoken
    assert set(res["spoken"]) >= {"coverage", "accuracy", "min_confidence", "min_confidence_masked"}
    table = capsys.readouterr().out
    assert "| ECE | spoken | spoken right |" in table and "Risk-coverage" in table


def test_calibrate_fits_a_temperature_per_mask_flag_and_writes_it(tiny_model_path, tmp_path, monkeypatch, capsys):
    from fer_mask_ros.cli import main
    from fer_mask_ros.cli.commands import calibrate
    from fer_mask_ros.perception.classifier import EmotionClassifier

    rng = np.random.default_rng(0)
    n = 600
    labels = rng.integers(0, 7, n)
    right = rng.random(n) < 0.5
    pred = np.where(right, labels, (labels + 1) % 7)
    probs = np.full((n, 7), 0.02 / 6)
    probs[np.arange(n), pred] = 0.98  # over-sure: half wrong at 0.98
    probs[0] = np.nan  # a photo without a face
    masked = np.arange(n) % 2 == 1

    def fake_predictions(classifier, sources, seed, no_progress, fer=None, detector=None):
        return {"labels": labels, "probs": probs, "mask_prob": np.where(masked, 0.9, 0.1),
                "condition": np.where(masked, "masked", "unmasked")}

    monkeypatch.setattr(calibrate, "_predictions", fake_predictions)
    (tmp_path / "photos").mkdir()
    out = tmp_path / "calibrated.pt"
    report = tmp_path / "report.json"
    assert main(["calibrate", tiny_model_path, str(tmp_path / "photos"), "--output", str(out), "--report",
                 str(report), "--no-progress"]) == 0
    temperatures = EmotionClassifier(str(out), backend="torch").temperatures
    assert all(t > 2 for t in temperatures)
    fitted = json.loads(report.read_text())
    assert fitted["report"]["masked"]["ece_after"] < fitted["report"]["masked"]["ece_before"]
    assert "export" in capsys.readouterr().out
    shifted = tmp_path / "shifted.pt"
    assert main(["calibrate", tiny_model_path, str(tmp_path / "photos"), "--output", str(shifted), "--source-shift",
                 "1.5,2", "--no-progress"]) == 0
    doubled = EmotionClassifier(str(shifted), backend="torch").temperatures
    assert doubled == pytest.approx((temperatures[0] * 1.5, temperatures[1] * 2), rel=1e-3)
    assert main(["calibrate", tiny_model_path, str(tmp_path / "photos"), "--source-shift", "9"]) != 0
    assert "--source-shift" in capsys.readouterr().err
    assert main(["calibrate", tiny_model_path, str(tmp_path / "missing")]) != 0
    assert "photo source not found" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")
def test_evaluate_scores_the_real_face_teacher_alone_on_the_same_faces(photo_source, fer_folder, tiny_model_path,
                                                                       tiny_teacher_onnx, tmp_path, capsys):
    from fer_mask_ros.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", fer_folder, str(photo_source), "--photos", "--usage", "PrivateTest", "--model",
                 tiny_model_path, "--teacher", tiny_teacher_onnx, "--output", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    photos = metrics["sources"][photo_source.name]
    for condition in ("unmasked", "masked"):
        ours, teacher = photos["conditions"][condition], photos["teacher"][condition]
        assert teacher["n"] == ours["n"] == 4 and teacher["no_face"] == ours["no_face"] == 1  # the same faces
        assert metrics["sources"]["fer PrivateTest"]["teacher"][condition]["n"] == 7
    assert f"| {photo_source.name} | masked | RAF-DB teacher | 4 | 1 |" in capsys.readouterr().out
    assert main(["evaluate", fer_folder, "--teacher", str(tmp_path / "none.onnx"), "--model", tiny_model_path]) != 0
