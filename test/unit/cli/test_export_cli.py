from __future__ import annotations

import os

import pytest
from conftest import make_fer_folder

from fer_mask_ros.cli import main


def test_export_writes_fp32_and_int8_copies(tiny_model_copy, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from fer_mask_ros.perception.classifier import EmotionClassifier, int8_path_for, onnx_path_for

    data = make_fer_folder(str(tmp_path / "fer"), per_class_train=6)
    assert main(["export", tiny_model_copy]) == 0
    assert os.path.isfile(onnx_path_for(tiny_model_copy)) and not os.path.exists(int8_path_for(tiny_model_copy))
    assert EmotionClassifier(tiny_model_copy).backend == "onnxruntime"
    assert main(["export", tiny_model_copy, "--calibration", data, "--calibration-size", "40"]) == 0
    assert f"wrote {int8_path_for(tiny_model_copy)}" in capsys.readouterr().out
    assert EmotionClassifier(tiny_model_copy).backend == "int8"


def test_export_errors_are_one_line(tiny_model_copy, tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["export", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.pt" in err and "\n" not in err
    assert main(["export", tiny_model_copy, "--calibration", str(tmp_path / "nodata")]) == 2
    assert "nodata" in capsys.readouterr().err
    assert main(["export", tiny_model_copy, "--calibration-size", "3"]) == 2
