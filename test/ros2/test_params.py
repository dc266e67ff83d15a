"""ROS 2 node parameters: declared from config/<node>.yaml (types, ranges, read-only), refused when out of range."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fer_mask_ros.config_schema import node_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(cls_path: str, **params):
    import importlib

    from rclpy.parameter import Parameter

    module, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return cls(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def test_descriptors_carry_the_yaml_ranges(ros):
    from rcl_interfaces.msg import ParameterType

    node = make("fer_mask_ros.ros2.face_detector.FaceDetectorNode")
    try:
        schema = node_schema("face_detector")
        declared = {n.replace(".", "/") for n in node._parameters if n != "use_sim_time"}
        assert set(schema) <= declared, set(schema) - declared
        d = node.describe_parameter("full_scan_interval")
        assert d.type == ParameterType.PARAMETER_DOUBLE and d.read_only
        assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, 60.0)
        d = node.describe_parameter("tracker.max_missed")
        assert d.type == ParameterType.PARAMETER_INTEGER
        assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (0, 10000)
        assert "one of {centerface, yunet}" in node.describe_parameter("detector").additional_constraints
        assert node.get_parameter("tracker.iou_threshold").value == schema["tracker/iou_threshold"].default
        # read at start-up, as in ROS 1: a change at run time is refused, not silently ignored
        from rclpy.parameter import Parameter

        result = node.set_parameters([Parameter("full_scan_interval", value=0.5)])[0]
        assert not result.successful
    finally:
        node.destroy_node()


@pytest.mark.parametrize("cls_path, params, words", [
    ("fer_mask_ros.ros2.face_detector.FaceDetectorNode", {"full_scan_interval": -1.0},
     ["full_scan_interval", "[0, 60]"]),
    ("fer_mask_ros.ros2.face_detector.FaceDetectorNode", {"detector": "haar"}, ["detector", "haar", "centerface"]),
    ("fer_mask_ros.ros2.face_detector.FaceDetectorNode", {"tracker.iou_threshold": 0.0},
     ["tracker.iou_threshold", "(0, 1]"]),
    ("fer_mask_ros.ros2.nao_camera.NaoCameraNode", {"fps": 31}, ["fps", "[1, 30]"]),
    ("fer_mask_ros.ros2.nao_camera.NaoCameraNode", {"fps": "fast"}, ["fps", "[1, 30]"]),
    ("fer_mask_ros.ros2.nao_camera.NaoCameraNode", {"nao_port": 70000}, ["nao_port", "[1, 65535]"]),
    ("fer_mask_ros.ros2.emotion_classifier.EmotionClassifierNode", {"sync_queue_size": 0},
     ["sync_queue_size", "[1, 1000]"]),
    ("fer_mask_ros.ros2.emotion_speech.EmotionSpeechNode", {"backend": "log", "period_s": 0.0},
     ["period_s", "(0, 60]"]),
    ("fer_mask_ros.ros2.emotion_speech.EmotionSpeechNode", {"backend": "log", "policy": "[1, 2]"},
     ["policy", "mapping"]),
    ("fer_mask_ros.ros2.emotion_speech.EmotionSpeechNode", {"backend": "pigeon"}, ["backend", "pigeon"]),
])
def test_out_of_range_is_refused(ros, cls_path, params, words):
    from fer_mask_ros.ros2.runtime import NodeStartError

    with pytest.raises(NodeStartError) as info:
        make(cls_path, **params)
    text = str(info.value)
    assert len(text.splitlines()) == 1, text
    for word in words:
        assert word in text, text


def test_a_node_process_refuses_with_one_fatal_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "fer_mask_ros.ros2.face_detector", "--ros-args",
                           "-p", "full_scan_interval:=-1.0"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    fatal = [line for line in (proc.stdout + proc.stderr).splitlines() if "FATAL" in line]
    assert len(fatal) == 1 and "full_scan_interval" in fatal[0] and "[0, 60]" in fatal[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_says_one_line_without_rclpy():
    code = ("import sys; sys.modules['rclpy'] = None; "
            "from fer_mask_ros.cli import main; sys.exit(main(['ros2', 'demo', '--duration', '1']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith("error: ros2 needs ROS 2's rclpy") and "make setup-ros2" in proc.stderr


def test_cli_demo_refuses_a_bad_parameter_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "fer_mask_ros", "ros2", "demo", "--speech-backend", "pigeon",
                           "--duration", "1"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "backend = 'pigeon'" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "terminate called" not in proc.stderr, proc.stderr


def test_cli_demo_prints_speech_and_the_per_face_table():
    proc = subprocess.run([sys.executable, "-m", "fer_mask_ros", "ros2", "demo", "--duration", "10"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "NAO says: " in proc.stdout, proc.stdout[-2000:]
    table = proc.stdout.split("the faces the graph saw (emotions topic):\n", 1)[1].splitlines()
    assert table[0].split() == ["face", "frames", "first", "s", "last", "s", "emotion", "share", "conf", "mask"]
    from fer_mask_ros.labels import EMOTIONS

    assert len(table) >= 2 and table[1].split()[4] in EMOTIONS, table
