"""Issue 32 defect 3: the all-local demo is not on the network. The make targets that start ROS export
ROS_IP=127.0.0.1 unless the caller set ROS_IP or ROS_HOSTNAME; with it, demo.launch's master, roslaunch and every
node's XML-RPC and TCPROS ports (and the fake NAO's qi port) listen on loopback only. The demo graph is checked
through /proc (every listening TCP socket of the roslaunch process tree)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from proc_tree import comm, listening_sockets, process_tree

from fer_mask_ros.ports import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
WS_SETUP = os.path.join(REPO, ".ws", "devel", "setup.bash")


def make_env(**overrides) -> dict:
    """The environment `$(ROS_ENV)` in the Makefile gives a command (ROS_IP / ROS_HOSTNAME as the caller set)."""
    probe = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fer_probe_{os.getpid()}.mk")
    with open(probe, "w") as handle:
        handle.write("_print_ros_env:\n\t@$(ROS_ENV) && env -0\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_IP", "ROS_HOSTNAME", "MAKEFLAGS", "MAKELEVEL")}
    env.update(overrides)
    try:
        out = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO, "-f", "Makefile", "-f", probe,
                              "_print_ros_env"], env=env, capture_output=True, timeout=120, check=True).stdout
    finally:
        os.unlink(probe)
    return dict(item.split("=", 1) for item in out.decode("utf-8", "replace").split("\0") if "=" in item)


needs_ws = pytest.mark.skipif(not os.path.isfile(WS_SETUP) or shutil.which("make") is None,
                              reason="no catkin workspace (.ws): make setup")


@needs_ws
def test_make_targets_are_loopback_only_unless_the_user_says_otherwise():
    assert make_env()["ROS_IP"] == "127.0.0.1"
    assert make_env(ROS_IP="10.1.2.3")["ROS_IP"] == "10.1.2.3"
    chosen = make_env(ROS_HOSTNAME="nao-host.local")
    assert chosen["ROS_HOSTNAME"] == "nao-host.local" and "ROS_IP" not in chosen


@needs_ws
def test_the_demo_graph_listens_on_loopback_only(tmp_path):
    pytest.importorskip("rospy")
    env = make_env()
    port = free_port()
    env.update(ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOME=str(tmp_path))
    launch = subprocess.Popen(["roslaunch", "--no-summary", "-p", str(port), "fer_mask_ros", "demo.launch",
                               f"port:={free_port()}", "output:=log", "ns:=loopback_check"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # every node up: its emotions come (the whole graph has registered and connected)
        deadline = time.monotonic() + 150
        got = None
        while time.monotonic() < deadline and launch.poll() is None:
            try:
                p = subprocess.run(["rostopic", "echo", "-n", "1", "/loopback_check/emotion_array/header/seq"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
            if p.returncode == 0 and p.stdout.strip():
                got = p.stdout
                break
            time.sleep(1.0)
        assert got, "the demo graph gave no emotion_array within 150 s"
        pids = process_tree(launch.pid)
        sockets = listening_sockets(pids)
        assert len(pids) >= 6 and len(sockets) >= 10, (pids, sockets)  # master, roslaunch, rosout, 5 nodes
        exposed = sorted((a, p, pid) for a, p, pid in sockets if a not in ("127.0.0.1", "::1"))
        # the one exception: rosout (roscpp, started by roslaunch with the master) binds its XML-RPC server on every
        # interface whatever ROS_IP says (XmlRpc++ binds INADDR_ANY); docs/ROBUSTNESS.md, "Network exposure"
        import rosgraph

        rosout_port = int(rosgraph.Master("/loopback_test", master_uri=env["ROS_MASTER_URI"])
                          .lookupNode("/rosout").rstrip("/").rsplit(":", 1)[1])
        unexpected = [(a, p, pid) for a, p, pid in exposed if not (p == rosout_port and comm(pid) == "rosout")]
        assert not unexpected, f"listening beyond loopback: {unexpected} (all: {sorted(sockets)})"
        assert len(exposed) <= 1, exposed
        print(f"demo graph: {len(sockets)} listening sockets in {len(pids)} processes, {len(exposed)} not on "
              f"loopback: {exposed}", file=sys.stderr)
    finally:
        os.killpg(launch.pid, 2)
        try:
            launch.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, 9)
            launch.wait(10)
