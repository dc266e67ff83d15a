"""The public API (fer_mask_ros.__all__) and the core without ROS: the CLI in a process where ROS cannot be imported."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.avi")

# Run the CLI with every ROS module made unimportable (a sys.meta_path blocker), from the source tree.
NO_ROS = textwrap.dedent("""
    import importlib.abc, runpy, sys
    ROS = ("rospy", "rosbag", "genpy", "roslib", "rosgraph", "rospkg", "cv_bridge", "message_filters",
           "fer_mask_ros.msg", "fer_mask_ros.srv", "std_msgs", "sensor_msgs", "diagnostic_msgs")
    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0].endswith("_msgs") or any(name == r or name.startswith(r + ".") for r in ROS):
                raise ImportError(f"No module named {name!r} (ROS blocked by the test)")
            return None
    sys.meta_path.insert(0, NoRos())
    sys.argv = ["fer_mask_ros"] + sys.argv[1:]
    try:
        runpy.run_module("fer_mask_ros", run_name="__main__", alter_sys=True)
    finally:
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("rospy", "rosbag", "genpy"))
        assert not loaded, loaded
""")


def first_frame() -> np.ndarray:
    from fer_mask_ros.imaging import read_video

    return read_video(CLIP, max_frames=1)[0]


def run_without_ros(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ROS_PACKAGE_PATH")}
    env["PYTHONPATH"] = REPO
    return subprocess.run([sys.executable, "-c", NO_ROS] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_public_names_are_lazy_and_listed():
    out = subprocess.run([sys.executable, "-c", "import sys, fer_mask_ros; print('torch' in sys.modules, "
                          "sorted(fer_mask_ros.__all__))"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("False "), out.stderr
    import fer_mask_ros

    for name in fer_mask_ros.__all__:
        assert getattr(fer_mask_ros, name) is not None
    with pytest.raises(AttributeError):
        fer_mask_ros.no_such_name  # noqa: B018


def test_detect_emotions_on_an_image_and_a_file(tmp_path):
    import cv2

    import fer_mask_ros

    frame = first_frame()
    faces = fer_mask_ros.detect_emotions(frame)
    assert len(faces) == 1
    face = faces[0]
    assert set(face) == {"box", "score", "emotion", "confidence", "emotions", "masked", "mask_probability"}
    assert list(face["emotions"]) == list(fer_mask_ros.EMOTIONS)
    assert face["emotion"] == max(face["emotions"], key=face["emotions"].get)
    x, y, w, h = face["box"]
    assert 0 <= x < frame.shape[1] and 0 <= y < frame.shape[0] and w > 20 and h > 20
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), frame)
    assert fer_mask_ros.detect_emotions(str(path))[0]["emotion"] == face["emotion"]
    assert fer_mask_ros.detect_emotions(np.zeros((120, 160, 3), np.uint8)) == []


def test_cli_classifies_a_photo_without_ros(tmp_path):
    import cv2

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), first_frame())
    out = run_without_ros(["classify", str(photo), "--no-progress", "--output", str(tmp_path / "faces.csv")],
                          cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = (tmp_path / "faces.csv").read_text().splitlines()
    assert rows[0].startswith("path,face,x,y,w,h") and len(rows) == 2


def test_bag_without_ros_is_one_clear_line(tmp_path):
    bag = tmp_path / "session.bag"
    bag.write_bytes(b"#ROSBAG V2.0\n")
    out = run_without_ros(["analyze", str(bag), "--output", str(tmp_path / "out"), "--no-progress"], cwd=str(tmp_path))
    assert out.returncode != 0
    assert "reading .bag files needs ROS 1" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
