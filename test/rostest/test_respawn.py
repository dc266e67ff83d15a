#!/usr/bin/env python3
"""respawn.test: kill -9 of any live node of demo.launch (nao_camera, face_detector, emotion_classifier,
emotion_speech) and the graph comes back: roslaunch respawns the node (nao.launch: respawn_delay 2 s), its
/diagnostics status says `starts` 2 and WARN "restarted ...", and emotions flow again (emotion_speech: it receives
them again). Deadlines are generous and event-based (a loaded 2-core machine); the measured times are logged."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import unittest
import xmlrpc.client

import rosgraph
import rospy
import rostest
from diagnostic_msgs.msg import DiagnosticArray

from fer_mask_ros.msg import EmotionStamped

PKG = "fer_mask_ros"
NS = "/fer_mask"
DEADLINE_S = 90.0  # per node: respawn (2 s) + start-up (model loading) + the first emotions, on a busy machine


class Diag:
    """Latest values per node name from /diagnostics."""

    def __init__(self):
        self.latest = {}
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber("/diagnostics", DiagnosticArray, self._cb, queue_size=100)

    def _cb(self, msg):
        with self.lock:
            for st in msg.status:
                values = {kv.key: kv.value for kv in st.values}
                self.latest[st.name] = (st.level, st.message, values)

    def get(self, name):
        with self.lock:
            return self.latest.get(name)


class Counter:
    def __init__(self, topic, msg_type):
        self.count = 0
        self.times = []
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber(topic, msg_type, self._cb, queue_size=200)

    def _cb(self, _msg):
        with self.lock:
            self.count += 1
            self.times.append(time.monotonic())

    def since(self, t0: float) -> int:
        with self.lock:
            return sum(1 for t in self.times if t >= t0)

    def first_after(self, t0: float):
        with self.lock:
            return next((t for t in self.times if t >= t0), None)


def wait_for(pred, timeout: float, step: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not rospy.is_shutdown():
        got = pred()
        if got:
            return got
        time.sleep(step)
    return pred()


def node_pid(name: str):
    try:
        api = rosgraph.Master("/test_respawn").lookupNode(name)
        return int(xmlrpc.client.ServerProxy(api).getPid("/test_respawn")[2])
    except Exception:  # not registered (yet), or its old URI no longer answers
        return None


class RespawnTest(unittest.TestCase):
    def test_every_live_node_comes_back_after_kill_9(self):
        diag = Diag()
        emotions = Counter(NS + "/emotions", EmotionStamped)
        t_start = time.monotonic()
        self.assertTrue(wait_for(lambda: emotions.count >= 10, 120.0), "no emotions within 120 s of the start")
        rospy.loginfo(f"respawn: emotions flow {time.monotonic() - t_start:.1f} s after the test started")
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() - t0 >= 5.0, 10.0)
        base_rate = emotions.since(t0) / (time.monotonic() - t0)
        results = [f"emotions before: {base_rate:.1f}/s"]
        for node in ("face_detector", "emotion_classifier", "nao_camera", "emotion_speech"):
            results.append(self.kill_and_wait(node, diag, emotions, base_rate))
        rospy.loginfo("respawn: " + "; ".join(results))
        print("respawn: " + "; ".join(results), file=sys.stderr)

    def kill_and_wait(self, node: str, diag: Diag, emotions: Counter, base_rate: float) -> str:
        """SIGKILL `node`; assert that it comes back (another pid, diagnostics starts 2 and WARN "restarted") and
        that emotions flow again; return what was measured."""
        name = f"{NS}/{node}"
        pid = wait_for(lambda: node_pid(name), 30.0)
        self.assertIsNotNone(pid, f"{name}: no pid")
        values = (diag.get(name) or (0, "", {}))[2]
        speech_before = int(values.get("emotions_received", 0))
        t_kill = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def values_now():
            return (diag.get(name) or (0, "", {}))[2]

        restarted = wait_for(lambda: node_pid(name) not in (None, pid) and int(values_now().get("starts", 0)) >= 2,
                             DEADLINE_S)
        self.assertTrue(restarted, f"{name} did not come back within {DEADLINE_S:g} s: {diag.get(name)}")
        level, message, values = diag.get(name)
        t_back = time.monotonic()
        if float(values.get("uptime_s", 99)) < 25:
            self.assertEqual(level, 1, f"{name}: a restarted node is WARN for 30 s: {message}")
            self.assertIn("restarted", message)
        if node == "emotion_speech":
            flowing = wait_for(lambda: int(values_now().get("emotions_received", 0)) > 5, DEADLINE_S)
            self.assertTrue(flowing, f"{name}: no emotions received after the restart: {diag.get(name)}")
        else:
            self.assertTrue(wait_for(lambda: emotions.since(t_back) >= 5, DEADLINE_S),
                            f"emotions did not flow again within {DEADLINE_S:g} s after {name} came back")
        # measured, not asserted (the machine may be busy): the rate 10 - 15 s after the kill against the rate
        # before the first kill (target: >= 80 %)
        wait_for(lambda: time.monotonic() >= t_kill + 15.0, 20.0)
        rate = emotions.since(t_kill + 10.0) / max(1e-3, time.monotonic() - (t_kill + 10.0))
        first = emotions.first_after(t_kill + 2.0)
        return (f"{node}: back (starts 2) {t_back - t_kill:.1f} s after kill -9, first emotion after "
                f"{(first - t_kill) if first else float('nan'):.1f} s, 10-15 s after: {rate:.1f}/s "
                f"({100 * rate / max(1e-3, base_rate):.0f} %)"
                + (f", speech had received {speech_before}" if node == "emotion_speech" else ""))


if __name__ == "__main__":
    rospy.init_node("test_respawn")
    rostest.rosrun(PKG, "respawn", RespawnTest, sys.argv)
