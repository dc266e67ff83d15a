"""config/*.yaml is the one source of the nodes' defaults: every param("x") a node reads without a default,
and every /diagnostics threshold, must be set by that node's yaml (checked on the source, no ROS needed)."""
from __future__ import annotations

import ast
import os

import pytest

from fer_mask_ros.config import node_default
from fer_mask_ros.ros.runtime import Thresholds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NODES = ("emotion_classifier", "emotion_speech", "face_detector", "nao_camera")


def calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
            yield node


@pytest.mark.parametrize("node", NODES)
def test_every_default_a_node_reads_is_in_its_yaml(node):
    with open(os.path.join(REPO, "nodes", node), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    assert [c.args[0].value for c in calls(tree, "use_config")] == [node]
    names = [c.args[0].value for c in calls(tree, "param") if len(c.args) == 1 and not c.keywords]
    assert names
    if any(True for _ in calls(tree, "Thresholds")):
        names += ["diag/" + key for key in Thresholds.KEYS]
    for name in names:
        node_default(node, name)  # KeyError naming the yaml if it does not set it


def test_missing_default_names_the_file():
    with pytest.raises(KeyError, match="config/face_detector.yaml sets no 'no_such_param'"):
        node_default("face_detector", "no_such_param")
    assert node_default("face_detector", "diag/stale_warn_s") == 2.0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_latest_worker_survives_a_failing_error_handler():
    """A worker whose on_error raises ends its thread; ensure_alive() starts a new one and counts it."""
    import time

    from fer_mask_ros.ros.runtime import LatestWorker

    done = []

    def handler(item):
        if item == "bad":
            raise ValueError("bad item")
        done.append(item)

    def on_error(exc):
        raise RuntimeError("the error handler fails too")

    w = LatestWorker(handler, on_error)
    w.put("bad")
    end = time.monotonic() + 30  # the event: the worker thread has ended (a loaded machine may take a while)
    while w._thread.is_alive() and time.monotonic() < end:
        time.sleep(0.01)
    assert not w.ensure_alive() and w.restarts == 1 and w.restarted_at is not None
    w.put("good")
    end = time.monotonic() + 30
    while not done and time.monotonic() < end:
        time.sleep(0.01)
    assert done == ["good"] and w.ensure_alive()
    w.stop()
