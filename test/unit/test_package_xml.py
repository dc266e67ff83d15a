"""package.xml declares a rosdep key for every third-party module the package imports (ast, no import).

Modules that come from pip (requirements.txt) must be pinned there instead; the standard library and the
package itself need nothing. The code scanned: fer_mask_ros/, nodes/, scripts/ (exec_depend), test/ (test_depend),
except the ROS 2 front end (fer_mask_ros/ros2/, test/ros2/): package.xml is the ROS 1 package's, and the ROS 2
front end's dependencies come from `make setup-ros2` (PyPI wheels and the interfaces it builds).
"""
from __future__ import annotations

import ast
import os
import sys
import xml.etree.ElementTree as ET
from typing import Dict, Set

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# module -> rosdep key
ROSDEP = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm", "pytest": "python3-pytest", "catkin_pkg": "python3-catkin-pkg",
    "rospy": "rospy", "rosbag": "rosbag", "rosgraph": "rosgraph", "roslaunch": "roslaunch", "rostest": "rostest",
    "rosnode": "rosnode", "genpy": "genpy", "message_filters": "message_filters", "catkin": "catkin",
    "std_msgs": "std_msgs", "sensor_msgs": "sensor_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "rosgraph_msgs": "rosgraph_msgs", "hri_msgs": "hri_msgs", "PIL": "python3-pil",
    "tf2_msgs": "tf2_msgs", "geometry_msgs": "geometry_msgs", "tf2_ros": "tf2_ros", "pyhri": "pyhri",
    "dynamic_reconfigure": "dynamic_reconfigure",
}
# module -> requirements.txt name: no Debian/rosdep package that fits (versions, Python 3.8 on Noetic)
PIP = {"torch": "torch", "onnxruntime": "onnxruntime", "onnx": "onnx", "qi": "qi"}
# not dependencies: setup.py's own tooling, the `fer` peer that bench-peer installs in its own venv
NOT_DEPENDENCIES = {"setuptools", "fer", "tensorflow"}
LOCAL = {"fer_mask_ros", "fer_rostest", "conftest"}
#: not the ROS 1 package's dependencies (make setup-ros2 installs them)
ROS2_FRONT_END = (os.path.join("fer_mask_ros", "ros2"), os.path.join("test", "ros2"))


def third_party_imports(*folders: str) -> Dict[str, Set[str]]:
    found: Dict[str, Set[str]] = {}
    for folder in folders:
        root = os.path.join(REPO, folder)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))
                           and os.path.relpath(os.path.join(dirpath, d), REPO) not in ROS2_FRONT_END]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not (name.endswith(".py") or folder in ("nodes", "scripts")):
                    continue
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                if not (name.endswith(".py") or text.startswith("#!/usr/bin/env python")):
                    continue
                for node in ast.walk(ast.parse(text, path)):
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                        names = [node.module]
                    else:
                        continue
                    for top in {n.split(".")[0] for n in names}:
                        sibling = os.path.exists(os.path.join(dirpath, top + ".py"))  # a test's helper module
                        if top not in sys.stdlib_module_names and top not in LOCAL and not sibling:
                            found.setdefault(top, set()).add(os.path.relpath(path, REPO))
    return found


def declared(*tags: str) -> Set[str]:
    root = ET.parse(os.path.join(REPO, "package.xml")).getroot()
    return {e.text.strip() for tag in tags for e in root.iter(tag) if e.text}


def pinned() -> Set[str]:
    """What requirements.txt (inference) and requirements-dev.txt (what make test adds) pin."""
    names = set()
    for name in ("requirements.txt", "requirements-dev.txt"):
        with open(os.path.join(REPO, name), encoding="utf-8") as handle:
            names |= {line.split("==")[0].split(">=")[0].strip() for line in handle
                      if line.strip() and line[0] not in "#-"}
    return names


def test_the_demo_set_has_no_training_dependencies():
    """make setup / make demo install requirements.txt alone: inference needs neither torch, onnx nor matplotlib."""
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as handle:
        demo = {line.split("==")[0].strip() for line in handle if line.strip() and line[0] != "#"}
    assert demo == {"numpy", "onnxruntime", "tqdm", "qi"}, demo
    assert {"torch", "onnx", "matplotlib", "pytest", "ruff"} <= pinned()


def check(modules: Dict[str, Set[str]], keys: Set[str]) -> list:
    problems = []
    for module, files in sorted(modules.items()):
        where = ", ".join(sorted(files)[:3])
        if module in NOT_DEPENDENCIES:
            continue
        if module in PIP:
            if PIP[module] not in pinned():
                problems.append(f"{module} ({where}) comes from pip but requirements.txt does not pin {PIP[module]}")
        elif module not in ROSDEP:
            problems.append(f"{module} ({where}): no rosdep key known; add it to ROSDEP/PIP here and to package.xml")
        elif ROSDEP[module] not in keys:
            problems.append(f"{module} ({where}) needs <exec_depend>{ROSDEP[module]}</exec_depend> in package.xml")
    return problems


#: sys.stdlib_module_names (which tells a third-party import from the standard library) is Python >= 3.10's
needs_stdlib_names = pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"),
                                        reason="Python < 3.10 does not list its standard library")


@needs_stdlib_names
def test_runtime_imports_are_exec_depends():
    keys = declared("exec_depend", "depend", "buildtool_depend")
    modules = third_party_imports("fer_mask_ros", "nodes", "scripts")
    assert {"numpy", "cv2", "rospy", "tqdm", "matplotlib"} <= set(modules)
    assert not check(modules, keys), "\n".join(check(modules, keys))


@needs_stdlib_names
def test_test_imports_are_declared():
    keys = declared("exec_depend", "depend", "buildtool_depend", "test_depend")
    problems = check(third_party_imports("test"), keys)
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_missing_key():
    assert check({"tqdm": {"x.py"}}, {"python3-numpy"}) == [
        "tqdm (x.py) needs <exec_depend>python3-tqdm</exec_depend> in package.xml"]
    assert check({"somelib": {"x.py"}}, set())
