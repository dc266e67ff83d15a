"""Issue 32 defect 8: a restarted roscore lost the graph (rosnode list showed only /rosout, new subscribers got
nothing, no node warned). Every node watches its master (runtime.watch_master: pid and /run_id every 2 s); a new
master makes it log one WARN, put its launch's parameters back on the new master and exit, and roslaunch's respawn
starts it again against the new master.

The logic is unit-tested below; the last test runs demo.launch against a roscore of its own, kills the roscore
(SIGKILL, its whole process group), starts a new one on the same port and checks that a new subscriber receives
emotions again (~60 s)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from proc_tree import kill_9, process_tree

from fer_mask_ros.ports import free_port
from fer_mask_ros.ros.runtime import master_changed, master_identity, restore_params

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class FakeMaster:
    def __init__(self, pid=100, run_id="a", params=None, up=True):
        self.pid, self.run_id, self.params, self.up = pid, run_id, dict(params or {}), up

    def getPid(self):  # noqa: N802 - rosgraph.Master's name
        if not self.up:
            raise OSError("connection refused")
        return self.pid

    def getParam(self, name):  # noqa: N802
        if name not in self.params:
            raise KeyError(name)
        return self.params[name]

    def hasParam(self, name):  # noqa: N802
        return name in self.params

    def setParam(self, name, value):  # noqa: N802
        self.params[name] = value


def test_a_new_master_is_told_from_the_old_one():
    old = master_identity(FakeMaster(100, params={"/run_id": "r1"}))
    assert old == (100, "r1")
    assert master_identity(FakeMaster(up=False)) is None  # down: not a change, the node waits
    assert not master_changed(old, None)
    assert not master_changed(old, (100, "r1"))
    assert master_changed(old, (200, "r2"))
    assert master_changed(old, (100, "r2"))  # same pid, another run (a pid reused)
    assert not master_changed(None, (200, "r2"))


def test_the_launch_parameters_are_put_back_on_a_new_master_without_overwriting():
    new = FakeMaster(params={"/fer_mask/nao_port": 9999})
    kept = {"/fer_mask/face_detector": {"transport": "raw"}, "/fer_mask/nao_port": 19559, "/use_sim_time": False}
    assert restore_params(new, kept) == 2
    assert new.params["/fer_mask/face_detector"] == {"transport": "raw"}
    assert new.params["/fer_mask/nao_port"] == 9999  # set on the new master already: kept
    assert restore_params(FakeMaster(up=False), {}) == 0


def start_roscore(port: int, env: dict) -> subprocess.Popen:
    import rosgraph

    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not rosgraph.is_master_online(env["ROS_MASTER_URI"]):
        assert time.monotonic() < deadline and core.poll() is None, "roscore did not start"
        time.sleep(0.2)
    return core


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 60.0) -> None:
    try:
        os.killpg(proc.pid, sig)
        proc.wait(wait)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def one_message(env: dict, topic: str, timeout: float) -> bool:
    """True when a new subscriber (rostopic echo, a new process) receives a message on `topic` within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = subprocess.run(["rostopic", "echo", "-n", "1", topic + "/header/seq"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        if p.returncode == 0 and p.stdout.strip():
            return True
        time.sleep(1.0)
    return False


@pytest.mark.skipif(shutil.which("roscore") is None or shutil.which("roslaunch") is None, reason="no ROS")
def test_the_graph_comes_back_after_the_master_is_restarted(tmp_path):
    pytest.importorskip("rospy")
    port = free_port()
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOME=str(tmp_path),
               PYTHONDONTWRITEBYTECODE="1")
    if not (env.get("ROS_IP") or env.get("ROS_HOSTNAME")):
        env["ROS_IP"] = "127.0.0.1"
    core = start_roscore(port, env)
    log = open(tmp_path / "launch.log", "w")
    launch = subprocess.Popen(["roslaunch", "--no-summary", "fer_mask_ros", "demo.launch", f"port:={free_port()}",
                               "output:=screen", "ns:=master_restart"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    topic = "/master_restart/emotion_array"
    try:
        assert one_message(env, topic, 150), "the demo graph gave no emotion_array within 150 s"
        deadline = time.monotonic() + 120  # every node has started (emotion_speech is the last to be ready)
        while not all(f"{node}: ready" in (tmp_path / "launch.log").read_text()
                      for node in ("face_detector", "emotion_classifier", "emotion_speech")):
            assert time.monotonic() < deadline, (tmp_path / "launch.log").read_text()[-3000:]
            time.sleep(0.5)
        import rosgraph

        kill_9(process_tree(core.pid))  # kill -9 of roscore, its rosmaster and rosout
        core.wait(10)
        deadline = time.monotonic() + 30
        while rosgraph.is_master_online(env["ROS_MASTER_URI"]):
            assert time.monotonic() < deadline, "the master still answers after kill -9"
            time.sleep(0.2)
        time.sleep(3.0)  # the nodes see no master for a while (a restart by hand takes longer)
        core = start_roscore(port, env)
        t_new = time.monotonic()
        assert one_message(env, topic, 120), ("a new subscriber got nothing within 120 s of the new master: "
                                              + (tmp_path / "launch.log").read_text()[-3000:])
        took = time.monotonic() - t_new
        text = (tmp_path / "launch.log").read_text()
        warned = text.count("the ROS master was restarted")
        print(f"emotions again {took:.1f} s after the new master; {warned} WARN line(s)", file=sys.stderr)
        assert warned >= 5, text[-3000:]  # nao_camera, face_detector, emotion_classifier, emotion_speech, fake_nao
        for node in ("nao_camera", "face_detector", "emotion_classifier", "emotion_speech"):
            assert f"/master_restart/{node}: the ROS master was restarted" in text, node
    finally:
        left = process_tree(launch.pid) + process_tree(core.pid)  # rosmaster and rosout run in sessions of their own
        stop(launch)
        stop(core)
        kill_9(left)  # none may outlive the test (a leftover master and rosout were seen after a run)
        log.close()
