"""Issue 32 defect 9: every command refuses a bad model or checkpoint with one `error:` line and exit 2, never with
a traceback nor torch's advice to set weights_only=False; an .onnx file is not read as a .pt."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main

torch = pytest.importorskip("torch")


class RunsCode:
    """Unpickling this would create a file: a weights-only load must refuse it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def one_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "weights_only" not in err and "Re-running" not in err, err
    return lines[0]


def test_train_resume_refuses_a_checkpoint_with_pickled_code(tmp_path, capsys, fer_folder):
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "ran"
    torch.save({"model": RunsCode(str(marker))}, str(out / "checkpoint.pt"))
    line = one_error(capsys, ["train", fer_folder, "--resume", "--output", str(out), "--epochs", "1", "--workers", "1",
                                "--no-progress"])
    assert "checkpoint.pt" in line and "pickled code" in line, line
    assert not marker.exists()


@pytest.mark.parametrize("content,why", [
    (b"not a checkpoint\n" * 10, "not a PyTorch file"),
    (None, "is not a checkpoint written by train"),
])
def test_train_resume_refuses_a_damaged_or_foreign_checkpoint(tmp_path, capsys, content, why, fer_folder):
    out = tmp_path / "run"
    out.mkdir()
    if content is None:
        torch.save({"state_dict": {}}, str(out / "checkpoint.pt"))
    else:
        (out / "checkpoint.pt").write_bytes(content)
    line = one_error(capsys, ["train", fer_folder, "--resume", "--output", str(out), "--epochs", "1", "--workers", "1",
                                "--no-progress"])
    assert why in line, line


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.full((96, 96, 3), 128, np.uint8))
    return str(path)


def test_classify_model_garbage_onnx_names_the_real_problem(tmp_path, capsys, photo):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00garbage, not a protobuf\xff" * 40)
    line = one_error(capsys, ["classify", photo, "--model", str(garbage), "--no-progress"])
    assert "garbage.onnx" in line and "ONNX" in line and "PyTorch" not in line, line


def test_classify_model_good_onnx_points_to_its_pt(tmp_path, capsys, photo):
    from fer_mask_ros.config import MODELS_DIR

    shipped = os.path.join(str(MODELS_DIR), "fer_mask_net.onnx")
    if not os.path.isfile(shipped):
        pytest.skip("no shipped ONNX copy")
    line = one_error(capsys, ["classify", photo, "--model", shipped, "--no-progress"])
    assert "fer_mask_net.pt" in line and "ONNX" in line, line


def test_classify_model_with_pickled_code_is_one_line(tmp_path, capsys, photo):
    marker = tmp_path / "ran"
    model = tmp_path / "evil.pt"
    torch.save({"format": RunsCode(str(marker))}, str(model))
    line = one_error(capsys, ["classify", photo, "--model", str(model), "--no-progress"])
    assert "pickled code" in line and not marker.exists(), line
