"""Inference on the minimal install (`pip install .` without the [train] and [plots] extras): classify, detect,
analyze, live and the public API run in a process where neither torch nor matplotlib can be imported (a sys.meta_path
blocker); train says what to install, and analyze still draws its timeline (with OpenCV)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.avi")

NO_TORCH = textwrap.dedent("""
    import importlib.abc, runpy, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "matplotlib"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None
    sys.meta_path.insert(0, NoTorch())
    if sys.argv[1] == "-c":
        exec(sys.argv[2])
    else:
        sys.argv = ["fer_mask_ros"] + sys.argv[1:]
        try:
            runpy.run_module("fer_mask_ros", run_name="__main__", alter_sys=True)
        finally:
            assert "torch" not in sys.modules and "matplotlib" not in sys.modules
""")


def run_without_torch(args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", NO_TORCH] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import cv2

    from fer_mask_ros.imaging import read_video

    path = tmp_path_factory.mktemp("photos") / "face.png"
    cv2.imwrite(str(path), read_video(CLIP, max_frames=1)[0])
    return str(path)


def test_blocker_blocks(tmp_path):
    for module in ("torch", "matplotlib"):
        proc = run_without_torch(["-c", f"import {module}"], tmp_path)
        assert proc.returncode != 0 and f"No module named '{module}' (blocked by the test)" in proc.stderr


@pytest.mark.parametrize("command", ["classify", "detect"])
def test_photo_commands_without_torch(command, photo, tmp_path):
    proc = run_without_torch([command, photo, "--no-progress"] if command == "classify" else [command, photo],
                             tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 2 and rows[1].startswith(photo), proc.stdout


def test_analyze_and_live_without_torch(tmp_path):
    proc = run_without_torch(["analyze", CLIP, "--output", str(tmp_path / "a"), "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(tmp_path / "a" / "frames.csv") > 1000
    import cv2

    timeline = cv2.imread(str(tmp_path / "a" / "timeline.png"))  # drawn with OpenCV: matplotlib is blocked
    assert timeline is not None and timeline.shape[1] == 900, proc.stderr
    assert len(np.unique(timeline.reshape(-1, 3), axis=0)) > 20  # coloured rows, not a blank canvas
    proc = run_without_torch(["live", "--video", CLIP, "--output", str(tmp_path / "l"), "--no-frames",
                              "--max-frames", "20"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_api_without_torch(tmp_path, photo):
    code = (f"import fer_mask_ros; faces = fer_mask_ros.detect_emotions({photo!r}); "
            "assert len(faces) == 1, faces; print(faces[0]['emotion'])")
    proc = run_without_torch(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_train_without_torch_names_the_extra(tmp_path):
    proc = run_without_torch(["train", str(tmp_path), "--output", str(tmp_path / "o")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "[train]" in proc.stderr, proc.stderr
