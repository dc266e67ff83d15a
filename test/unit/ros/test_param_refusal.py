"""The real nodes refuse bad parameters at start-up (issue 27): one FATAL line naming the parameter and its
allowed range (config/<node>.yaml), exit status != 0, no traceback. A private roscore on a free port; each
case starts one node process. Model files: missing, a folder, a text file, a truncated .pt, an ONNX copy whose
stamp does not match its .pt."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from fer_mask_ros.ports import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
pytest.importorskip("rospy")
if shutil.which("roscore") is None:
    pytest.skip("no roscore", allow_module_level=True)


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("ros_home")
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import rosgraph

        deadline = time.time() + 30
        while not rosgraph.is_master_online(env["ROS_MASTER_URI"]):
            assert time.time() < deadline, "roscore did not start"
            time.sleep(0.2)
        yield env
    finally:
        core.terminate()
        core.wait(20)


def refused(env, node, **params):
    """Start nodes/NODE with private params; its single FATAL line (asserts exit != 0, no traceback)."""
    name = f"refused_{node}_{int(time.time() * 1000) % 100000}"
    args = [f"_{k}:={v}" for k, v in params.items()]
    p = subprocess.run([sys.executable, os.path.join(REPO, "nodes", node), f"__name:={name}", *args], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    fatal = [line for line in p.stdout.splitlines() if "FATAL" in line]
    assert p.returncode != 0, p.stdout
    assert len(fatal) == 1, p.stdout
    assert "Traceback" not in p.stdout, p.stdout
    return fatal[0]


@pytest.mark.parametrize("params,expect", [
    ({"fps": -5}, "~fps = -5 is out of range; allowed: a whole number in [1, 30]"),
    ({"fps": 0}, "~fps = 0 is out of range"),
    ({"fps": "abc"}, "~fps = 'abc' is not a number"),
    ({"resolution": 7}, "~resolution = 7 is not one of the choices; allowed: one of {0, 1, 2}"),
    ({"camera": 5}, "~camera = 5"),
    ({"diag/stale_warn_s": -1}, "~diag/stale_warn_s = -1"),
])
def test_nao_camera_refuses(master, params, expect):
    assert expect in refused(master, "nao_camera", **params)


def test_face_detector_refuses_a_bad_threshold_and_queue(master):
    assert "~num_threads = -2" in refused(master, "face_detector", num_threads=-2)
    assert "~score_threshold = 1.5" in refused(master, "face_detector", score_threshold=1.5)


def test_emotion_speech_refuses_bad_times(master):
    assert "~period_s = 0" in refused(master, "emotion_speech", backend="log", period_s=0)
    assert "~window_s = -3" in refused(master, "emotion_speech", backend="log", window_s=-3)


def test_emotion_classifier_refuses_bad_model_files(master, tmp_path, tiny_model_path):
    shipped = os.path.join(REPO, "models", "fer_mask_net.pt")
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "text.pt").write_text("not a model\n")
    with open(shipped, "rb") as handle:
        (tmp_path / "truncated.pt").write_bytes(handle.read()[:4096])
    shutil.copy(tiny_model_path, str(tmp_path / "other.pt"))  # its ONNX copy below is the shipped model's
    shutil.copy(os.path.join(REPO, "models", "fer_mask_net.onnx"), str(tmp_path / "other.onnx"))
    assert "~model = '/nonexistent/m.pt' is no such file" in refused(master, "emotion_classifier",
                                                                     model="/nonexistent/m.pt")
    assert "is a folder, not a file" in refused(master, "emotion_classifier", model=str(tmp_path / "folder.pt"))
    assert "cannot load" in refused(master, "emotion_classifier", model=str(tmp_path / "text.pt"))
    assert "cannot load" in refused(master, "emotion_classifier", model=str(tmp_path / "truncated.pt"))
    line = refused(master, "emotion_classifier", model=str(tmp_path / "other.pt"), backend="onnxruntime")
    assert "was not exported from" in line, line
    assert "~backend" in refused(master, "emotion_classifier", backend="tensorflow")


def test_emotion_speech_refuses_bad_policy_keys(master):
    """Issue 32 defect 4: `_policy:='{cooldown_s: -5}'` and `.nan` ran with the cooldown switched off."""
    assert "~policy/cooldown_s = -5 is out of range" in refused(master, "emotion_speech", backend="log",
                                                                policy="{cooldown_s: -5}")
    line = refused(master, "emotion_speech", backend="log", policy="{cooldown_s: .nan}")
    assert "~policy" in line and "NaN" in line, line
    assert "~policy/min_confidence = 7" in refused(master, "emotion_speech", backend="log",
                                                   policy="{min_confidence: 7}")


def test_emotion_speech_refuses_sentences_that_are_not_plain_words(master, tmp_path):
    """Issue 32 defects 2 and 5: NAOqi \\tag\\ controls and ^ annotations reached ALTextToSpeech verbatim; a 60 MB
    sentences file took 1.7 GB and never got ready."""
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("languages:\n  en:\n    happy: '\\rspd=400\\ \\vol=100\\ You look happy! ^run(x)'\n")
    line = refused(master, "emotion_speech", backend="log", sentences=str(tagged))
    assert str(tagged) in line and "rspd=400" in line and "backslash" in line, line
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"languages:\n  en:\n    happy: Hi\n" + b"#" * 3_000_000 + b"\n")
    line = refused(master, "emotion_speech", backend="log", sentences=str(huge))
    assert str(huge) in line and "too large" in line, line
