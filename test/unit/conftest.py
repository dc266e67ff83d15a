"""Shared fixtures: a tiny saved model, a tiny FER-style image-folder dataset, fake faces.

Everything is made here, in tmp paths; no test reads ../shared or /work/data.
"""
from __future__ import annotations

import importlib.abc
import os
import sys

import cv2
import numpy as np
import pytest

from fer_mask_ros.labels import EMOTIONS

try:  # a venv without torch (make test-py38, `pip install .` without [train]): inference tests only
    import torch  # noqa: F401
except ImportError:
    HAVE_TORCH = False

    class _SkipTorch(importlib.abc.MetaPathFinder):
        """`import torch` in a test file (a test module, test or fixture) skips what needs it; the library's own
        imports of torch still fail as they would for a user (its no-torch fallbacks stay tested)."""

        TESTS = os.path.dirname(os.path.abspath(__file__)) + os.sep

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] not in ("torch", "torchvision"):
                return None
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
                frame = frame.f_back  # the import machinery
            if frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(self.TESTS):
                raise pytest.skip.Exception(f"needs {name} (pip install .[train])", allow_module_level=True)
            return None

    sys.meta_path.insert(0, _SkipTorch())
else:
    HAVE_TORCH = True

#: a test of a command that imports torch before it checks its arguments (train)
requires_torch = pytest.mark.skipif(not HAVE_TORCH, reason="needs torch (pip install .[train])")


def pytest_report_header(config):
    if not HAVE_TORCH:
        return "torch is not installed: tests that import it (training, model files) are skipped"
    return None


def fake_face(label: int = 0, size: int = 48, seed: int = 0, colour: bool = False) -> np.ndarray:
    """A cartoon face on an aligned, FER-style crop (eyes near 0.35 H, mouth near 0.75 H).

    The mouth shape depends on `label` (an index into EMOTIONS), so a net can learn the
    classes: smile for happy, frown for sad, open O for surprise, etc.
    """
    rng = np.random.default_rng([seed, label])
    s = size / 48.0
    img = np.full((size, size), int(rng.integers(40, 90)), np.uint8)
    cx = size // 2 + int(rng.integers(-1, 2))
    cv2.ellipse(img, (cx, int(26 * s)), (int(17 * s), int(23 * s)), 0, 0, 360, int(rng.integers(150, 210)), -1)
    eye_y = int(17 * s)
    for dx in (-8, 8):
        cv2.circle(img, (cx + int(dx * s), eye_y), max(1, int(2.5 * s)), 20, -1)
    name = EMOTIONS[label]
    my = int(36 * s)
    w = int(7 * s)
    if name == "happy":
        cv2.ellipse(img, (cx, my - int(3 * s)), (w, int(5 * s)), 0, 0, 180, 30, max(1, int(2 * s)))
    elif name == "sad":
        cv2.ellipse(img, (cx, my + int(3 * s)), (w, int(5 * s)), 0, 180, 360, 30, max(1, int(2 * s)))
    elif name == "surprise":
        cv2.ellipse(img, (cx, my), (int(4 * s), int(6 * s)), 0, 0, 360, 20, -1)
    elif name == "angry":
        cv2.line(img, (cx - w, my), (cx + w, my), 30, max(1, int(2 * s)))
        for dx, sign in ((-8, 1), (8, -1)):
            cv2.line(img, (cx + int((dx - 4) * s), eye_y - int((4 + 2 * sign) * s)),
                     (cx + int((dx + 4) * s), eye_y - int((4 - 2 * sign) * s)), 20, max(1, int(2 * s)))
    elif name == "fear":
        cv2.rectangle(img, (cx - w, my - int(2 * s)), (cx + w, my + int(2 * s)), 25, -1)
    elif name == "disgust":
        cv2.line(img, (cx - w, my + int(3 * s)), (cx + w, my - int(3 * s)), 30, max(1, int(2 * s)))
    else:  # neutral
        cv2.line(img, (cx - w // 2, my), (cx + w // 2, my), 60, 1)
    noise = rng.normal(0, 4, img.shape)
    img = np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    if colour:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        img[:, :, 2] = np.clip(img[:, :, 2].astype(int) + 20, 0, 255).astype(np.uint8)
    return img


def write_image(path, image: np.ndarray) -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, image), path
    return path


def make_fer_folder(root, per_class_train: int = 4, per_class_test: int = 2, labels=None) -> str:
    """FER2013 image-folder layout: root/train/<label>/Training_N.png, root/test/<label>/PublicTest_N.png
    and PrivateTest_N.png (alternating)."""
    root = str(root)
    labels = list(labels) if labels is not None else list(EMOTIONS)
    n = 0
    for label in labels:
        li = EMOTIONS.index(label)
        for _ in range(per_class_train):
            write_image(os.path.join(root, "train", label, f"Training_{n}.png"), fake_face(li, seed=n))
            n += 1
        for i in range(per_class_test):
            usage = "PublicTest" if i % 2 == 0 else "PrivateTest"
            write_image(os.path.join(root, "test", label, f"{usage}_{n}.png"), fake_face(li, seed=n))
            n += 1
    return root


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    """A random MaskedFERNet((4, 8)) saved with classifier.save_model (session-wide, read-only)."""
    import torch

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    torch.manual_seed(0)
    model = MaskedFERNet((4, 8))
    model.eval()
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.pt"
    save_model(model, str(path), {"note": "random test model"})
    return str(path)


@pytest.fixture(scope="session")
def tiny_teacher_onnx(tmp_path_factory) -> str:
    """A stand-in for the real-face teacher: 1x3x112x112 `data` -> 7 logits `label` (channel means, their
    negatives and 0), so a test can tell what the session was fed."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")

    class Tiny(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(2, 3))
            return torch.cat([m, -m, m[:, :1] * 0], 1)

    path = str(tmp_path_factory.mktemp("teacher") / "teacher.onnx")
    torch.onnx.export(Tiny(), torch.zeros(1, 3, 112, 112), path, input_names=["data"], output_names=["label"],
                      opset_version=17, dynamo=False)
    return path


@pytest.fixture()
def tiny_model_copy(tiny_model_path, tmp_path) -> str:
    """A private copy of the tiny model (for tests that write an ONNX file beside it)."""
    import shutil

    dest = tmp_path / "model" / "tiny.pt"
    dest.parent.mkdir()
    shutil.copy(tiny_model_path, dest)
    return str(dest)


@pytest.fixture()
def fer_folder(tmp_path) -> str:
    """A tiny FER2013-style image-folder dataset (7 classes, 4 Training + 2 test images each)."""
    return make_fer_folder(tmp_path / "fer")


@pytest.fixture()
def make_face():
    """The fake-face generator: face(label=0, size=48, seed=0, colour=False) -> uint8 image."""
    return fake_face


def write_video(path, frames, fps: float = 10.0) -> str:
    """An MJPG video of BGR frames (the analysis tests' input)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return str(path)
