from __future__ import annotations

import csv
import io
import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main
from fer_mask_ros.labels import EMOTIONS

HEADER = ("path,emotion,confidence,masked,mask_probability,"
          "p_angry,p_disgust,p_fear,p_happy,p_neutral,p_sad,p_surprise")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    torch.manual_seed(0)
    model = MaskedFERNet(widths=(4, 8))
    with torch.no_grad():  # make the mask head straddle 0.5 so both flag values can occur
        model.mask_head.weight.normal_(0, 5.0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(model, str(path), {"note": "random test model"})
    return str(path)


@pytest.fixture()
def crops(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "crops"
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "b.png": rng.integers(0, 256, (48, 48), dtype=np.uint8),
        "a.jpg": rng.integers(0, 256, (60, 80, 3), dtype=np.uint8),  # colour, non-square
        "sub/c.bmp": rng.integers(0, 256, (30, 30), dtype=np.uint8),
        "sub/deeper/d.PNG": rng.integers(0, 256, (100, 100, 3), dtype=np.uint8),
    }
    for name, img in files.items():
        assert cv2.imwrite(str(root / name), img)
    (root / "notes.txt").write_text("not an image")
    return root


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_contract(tiny_model, crops, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    rc = main(["classify", "--crops", "--model", tiny_model, "--output", str(out), "--batch-size", "3", str(crops)])
    assert rc == 0
    text = out.read_text()
    assert text.splitlines()[0] == HEADER
    rows = read_csv(text)
    expected = sorted(os.path.join(str(crops), p) for p in ("a.jpg", "b.png", "sub/c.bmp", "sub/deeper/d.PNG"))
    assert [r["path"] for r in rows] == expected  # recursive, sorted, .txt ignored, one row per image
    for r in rows:
        p = np.array([float(r[f"p_{e}"]) for e in EMOTIONS])
        assert abs(p.sum() - 1.0) < 1e-3
        assert r["emotion"] == EMOTIONS[int(np.argmax(p))]
        assert float(r["confidence"]) == pytest.approx(p.max(), abs=1e-4)
        assert r["masked"] in ("0", "1")
        assert (r["masked"] == "1") == (float(r["mask_probability"]) >= 0.5)
        assert len(r["confidence"].split(".")[1]) == 4
    assert "classified 4 images, skipped 0 unreadable" in capsys.readouterr().err


def test_rows_match_classifier_predict(tiny_model, crops, capsys):
    from fer_mask_ros.imaging import read_image
    from fer_mask_ros.perception.classifier import EmotionClassifier

    rc = main(["classify", "--crops", "--model", tiny_model, "--output", "-", str(crops / "a.jpg")])
    assert rc == 0
    row = read_csv(capsys.readouterr().out)[0]
    pred = EmotionClassifier(tiny_model).predict([read_image(str(crops / "a.jpg"))])[0]
    assert row["emotion"] == pred.emotion
    assert float(row["mask_probability"]) == pytest.approx(pred.mask_probability, abs=1e-4)
    assert (row["masked"] == "1") == pred.masked


def test_unreadable_image_warned_and_counted(tiny_model, crops, capsys):
    bad = crops / "sub" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    rc = main(["classify", "--crops", "--model", tiny_model, "--no-progress", "--output", "-", str(crops)])
    assert rc == 0
    captured = capsys.readouterr()
    rows = read_csv(captured.out)
    assert len(rows) == 4 and str(bad) not in [r["path"] for r in rows]
    assert f"warning: skipping unreadable image {bad}" in captured.err
    assert "classified 4 images, skipped 1 unreadable" in captured.err


def test_missing_path_is_one_line_error(tiny_model, crops, tmp_path, capsys):
    missing = tmp_path / "nope"
    rc = main(["classify", "--crops", "--model", tiny_model, str(crops), str(missing)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: no such file or folder: {missing}"


def test_missing_model_is_clear(crops, tmp_path, capsys):
    rc = main(["classify", "--crops", "--model", str(tmp_path / "missing.pt"), str(crops)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.pt" in err and "\n" not in err


def test_list_image_files_order_and_dedupe(crops):
    from fer_mask_ros.imaging import list_image_files

    explicit = str(crops / "notes.txt")  # named explicitly: kept whatever the extension
    files = list_image_files([str(crops / "sub"), str(crops / "b.png"), str(crops), explicit])
    assert files[:2] == [str(crops / "sub" / "c.bmp"), str(crops / "sub" / "deeper" / "d.PNG")]
    assert files[2] == str(crops / "b.png")
    assert files[3:] == [str(crops / "a.jpg"), explicit]
