"""`python -m fer_mask_ros ros2 demo`: the demo graph on ROS 2 (rclpy, Jazzy) on a simulated NAO.

Needs the ROS 2 venv that `make setup-ros2` builds (.venv-ros2: the ROS 2 Jazzy wheels from PyPI and the
fer_mask_ros_interfaces package built from msg/ and srv/): `.venv-ros2/bin/python -m fer_mask_ros ros2 demo`.
Without rclpy it says so in one line (exit 2). The ROS 2 code lives in fer_mask_ros/ros2/, reached here by name.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from fer_mask_ros.errors import CommandError

SETUP_HINT = "run `make setup-ros2`, then `.venv-ros2/bin/python -m fer_mask_ros ros2 demo`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    demo = sub.add_parser("demo", help="the demo graph on a simulated NAO playing the bundled clip; prints what NAO "
                                       "says and the per-face table of `make demo`")
    demo.add_argument("--duration", type=float, default=30.0, help="seconds to run (default 30; 0 = until Ctrl-C)")
    demo.add_argument("--fps", type=float, default=10.0, help="frames per second of the simulated camera (default 10)")
    demo.add_argument("--port", type=int, default=0, help="qi port of the simulated NAO (default 0: any free port)")
    demo.add_argument("--ns", default="fer_mask", help="namespace of the graph (default fer_mask)")
    demo.add_argument("--source", default="clip", help="video or image folder the camera shows (default: the clip)")
    demo.add_argument("--speech-backend", default="qi", help="qi (default), topic, espeak or log")
    demo.add_argument("--language", default="en", help="en (default) or it")
    demo.add_argument("--model", default="", help="expression model (empty: the shipped one)")
    demo.add_argument("--rep155", action="store_true", help="also publish ROS4HRI (REP-155) faces (hri_bridge)")


def require_ros2() -> None:
    """One clear error when rclpy or the interface package cannot be imported."""
    if importlib.util.find_spec("rclpy") is None:
        raise CommandError(f"ros2 needs ROS 2's rclpy, which this Python cannot import: {SETUP_HINT}")
    if importlib.util.find_spec("fer_mask_ros_interfaces") is None:
        raise CommandError("ros2 needs the fer_mask_ros_interfaces package (built from msg/ and srv/), which this "
                           f"Python cannot import: {SETUP_HINT}")


def run(args: argparse.Namespace) -> int:
    if args.action != "demo":
        raise CommandError("choose an action: `python -m fer_mask_ros ros2 demo`")
    if args.duration < 0 or args.fps <= 0 or not 0 <= args.port <= 65535:
        raise CommandError("--duration must be >= 0, --fps > 0 and --port in [0, 65535]")
    require_ros2()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # nothing listens beyond loopback unasked
    demo = importlib.import_module("fer_mask_ros.ros2.demo")
    runtime = importlib.import_module("fer_mask_ros.ros2.runtime")
    try:
        status = demo.run(duration=args.duration, fps=args.fps, port=args.port, ns=args.ns, source=args.source,
                          speech_backend=args.speech_backend, language=args.language, model=args.model,
                          rep155=args.rep155)
    except runtime.NodeStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    # leave without native teardown: libqi's can abort at exit once its sessions are closed (exit status 134)
    runtime.exit_now(status)
    return status
