"""The dependency rules of docs/ARCHITECTURE.md, checked on the source with `ast` (no module is imported).

1. Only fer_mask_ros/ros/ may import ROS: rospy, rosbag, genpy, roslib, rosgraph, rostest, cv_bridge,
   message_filters, any *_msgs package, the generated fer_mask_ros.msg / fer_mask_ros.srv, or fer_mask_ros.ros;
   at any level (function-level imports count).
2. Only fer_mask_ros/cli/ (and fer_mask_ros/__main__.py) imports fer_mask_ros.cli: the library never imports the CLI.
3. No import cycles between the package's modules (function-level imports count).
The ROS side may import the core, never the reverse (rule 1).
4. ROS 2 (rclpy, rcl_interfaces, builtin_interfaces, any *_interfaces package, launch, launch_ros, ament_index_python)
   only in fer_mask_ros/ros2/, which may also use the *_msgs packages; fer_mask_ros/ros/ and fer_mask_ros/ros2/
   never import each other. The CLI reaches fer_mask_ros.ros2 by name (importlib), as it does fer_mask_ros.ros.
"""
from __future__ import annotations

import ast
import os
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "fer_mask_ros"
ROS_TOP_LEVEL = {"rospy", "rosbag", "genpy", "roslib", "rosgraph", "rostest", "rosnode", "rosservice", "rostopic",
                 "roslaunch", "rosmsg", "cv_bridge", "message_filters", "tf", "tf2_ros", "actionlib"}
ROS_OWN = ("fer_mask_ros.msg", "fer_mask_ros.srv", "fer_mask_ros.ros")
ROS2_TOP_LEVEL = {"rclpy", "rcl_interfaces", "builtin_interfaces", "launch", "launch_ros", "ament_index_python",
                  "rosidl_runtime_py"}
ROS2_OWN = ("fer_mask_ros.ros2",)
#: The live path (camera to speech, and the offline analysis that gives the same answers) never imports learning/.
LIVE_PATH = ("fer_mask_ros.perception", "fer_mask_ros.interaction", "fer_mask_ros.robot", "fer_mask_ros.ros",
             "fer_mask_ros.ros2", "fer_mask_ros.analysis")
CLI_ENTRY = {"fer_mask_ros.__main__"}  # `python -m fer_mask_ros`: the CLI's entry point

Import = Tuple[str, int, str]  # (imported module, line, file)


def module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def package_files(root: str = REPO) -> Dict[str, str]:
    """module name -> file, for every .py file of the package."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, PACKAGE)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")) and d != "data")
        for f in sorted(filenames):
            if f.endswith(".py"):
                out[module_name(os.path.join(dirpath, f))] = os.path.join(dirpath, f)
    return out


def imports_of(path: str, module: str) -> Iterator[Import]:
    """Every import in a file, module- and function-level, with relative imports resolved.
    `from a import b` yields a.b as well as a, since b may be a module."""
    is_package = path.endswith("__init__.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, path
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            yield base, node.lineno, path
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno, path


def is_ros(name: str) -> bool:
    top = name.split(".")[0]
    return (top in ROS_TOP_LEVEL or top.endswith("_msgs")
            or any(name == r or name.startswith(r + ".") for r in ROS_OWN))


def is_ros2(name: str) -> bool:
    top = name.split(".")[0]
    return (top in ROS2_TOP_LEVEL or top.endswith("_interfaces")
            or any(name == r or name.startswith(r + ".") for r in ROS2_OWN))


def is_ros1_only(name: str) -> bool:
    """ROS 1 names that are not shared with ROS 2 (the *_msgs packages exist in both)."""
    return is_ros(name) and not name.split(".")[0].endswith("_msgs")


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def rule_violations(files: Dict[str, str]) -> List[str]:
    problems = []
    for module, path in files.items():
        for name, line, _ in imports_of(path, module):
            where = f"{os.path.relpath(path, REPO)}:{line}"
            in_ros1, in_ros2 = under(module, "fer_mask_ros.ros"), under(module, "fer_mask_ros.ros2")
            if in_ros2:
                if is_ros1_only(name):
                    problems.append(f"{where}: {module} imports {name} (fer_mask_ros/ros2/ never uses ROS 1)")
            elif not in_ros1 and is_ros(name):
                problems.append(f"{where}: {module} imports {name} (ROS is only allowed in fer_mask_ros/ros/)")
            if not in_ros2 and is_ros2(name):
                problems.append(f"{where}: {module} imports {name} (ROS 2 is only allowed in fer_mask_ros/ros2/)")
            if any(under(module, p) for p in LIVE_PATH) and under(name, "fer_mask_ros.learning"):
                problems.append(f"{where}: {module} imports {name} (the live path never imports learning/)")
            if module not in CLI_ENTRY and not under(module, "fer_mask_ros.cli") and under(name, "fer_mask_ros.cli"):
                problems.append(f"{where}: {module} imports {name} (only fer_mask_ros/cli/ imports the CLI)")
    return sorted(set(problems))


def import_graph(files: Dict[str, str]) -> Dict[str, Dict[str, int]]:
    """module -> {imported package module: line}. Importing a.b.c also imports packages a.b and a."""
    graph: Dict[str, Dict[str, int]] = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        for name, line, _ in imports_of(path, module):
            target: Optional[str] = name
            while target and target not in files:
                target = target.rpartition(".")[0]
            if not target or target == module:
                continue
            # a package's own __init__ is imported before any of its modules: not an edge of the module itself
            if under(module, target) and files[target].endswith("__init__.py"):
                continue
            edges.setdefault(target, line)
    return graph


def find_cycle(graph: Dict[str, Dict[str, int]]) -> Optional[List[str]]:
    """One import cycle as [a, b, ..., a], or None (iterative DFS, colours)."""
    colour: Dict[str, int] = {}
    for start in sorted(graph):
        if colour.get(start):
            continue
        stack: List[Tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if colour.get(child) == 1:
                return path[path.index(child):] + [child]
            if not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, {})))))
    return None


def describe_cycle(cycle: List[str], graph: Dict[str, Dict[str, int]], files: Dict[str, str]) -> str:
    steps = [f"{os.path.relpath(files[a], REPO)}:{graph[a][b]} {a} -> {b}" for a, b in zip(cycle, cycle[1:])]
    return "import cycle:\n  " + "\n  ".join(steps)


@pytest.fixture(scope="module")
def files() -> Dict[str, str]:
    return package_files()


def test_rules_hold(files):
    assert len(files) > 40
    problems = rule_violations(files)
    assert not problems, "dependency rules broken:\n" + "\n".join(problems)


def test_no_import_cycles(files):
    graph = import_graph(files)
    cycle = find_cycle(graph)
    assert cycle is None, describe_cycle(cycle, graph, files)


def test_rules_catch_violations(tmp_path):
    """The checks fail when they should: ROS in the core, the CLI from the library, a cycle."""
    pkg = tmp_path / PACKAGE
    for sub in ("", "perception", "cli", "ros", "ros2"):
        (pkg / sub).mkdir(exist_ok=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "perception" / "a.py").write_text("def f():\n    import rospy\n    from ..cli import main\n")
    (pkg / "perception" / "b.py").write_text("from fer_mask_ros.msg import Face\nfrom . import c\n")
    (pkg / "perception" / "c.py").write_text("def g():\n    from fer_mask_ros.perception import b\n")
    (pkg / "ros" / "node.py").write_text("import rospy\nfrom sensor_msgs.msg import Image\n"
                                         "from ..perception import c\n")
    (pkg / "cli" / "main.py").write_text("from fer_mask_ros.ros import node\n")
    (pkg / "ros2" / "node2.py").write_text("import rclpy\nfrom sensor_msgs.msg import Image\n"
                                           "from fer_mask_ros_interfaces.msg import Face\n"
                                           "from ..perception import c\nimport rospy\nfrom ..ros import node\n")
    (pkg / "ros" / "bridge.py").write_text("def f():\n    from fer_mask_ros.ros2 import node2\n    import rclpy\n")
    (pkg / "perception" / "d.py").write_text("from rcl_interfaces.msg import ParameterDescriptor\n")
    (pkg / "perception" / "e.py").write_text("def f():\n    from fer_mask_ros.learning.network import Net\n")
    global REPO
    saved, REPO = REPO, str(tmp_path)
    try:
        files = package_files(str(tmp_path))
        problems = rule_violations(files)
        cycle = find_cycle(import_graph(files))
    finally:
        REPO = saved
    text = "\n".join(problems)
    assert "fer_mask_ros/perception/a.py:2: fer_mask_ros.perception.a imports rospy" in text
    assert "fer_mask_ros/perception/a.py:3" in text and "only fer_mask_ros/cli/ imports the CLI" in text
    assert "fer_mask_ros/perception/b.py:1" in text and "fer_mask_ros.msg" in text
    assert "fer_mask_ros/cli/main.py:1" in text and "imports fer_mask_ros.ros" in text
    assert not any("ros/node.py" in p for p in problems)
    ros2 = [p for p in problems if "ros2/node2.py" in p]  # rclpy, sensor_msgs, interfaces, the core: allowed
    assert [p.split(":")[1] for p in ros2] == ["5", "6", "6"], ros2  # rospy; fer_mask_ros.ros (+ .ros.node)
    assert "fer_mask_ros/ros/bridge.py:2" in text and "fer_mask_ros/ros/bridge.py:3" in text
    assert "fer_mask_ros/perception/d.py:1" in text and "ROS 2 is only allowed in fer_mask_ros/ros2/" in text
    assert "fer_mask_ros/perception/e.py:2" in text and "the live path never imports learning/" in text
    assert cycle is not None and set(cycle) == {"fer_mask_ros.perception.b", "fer_mask_ros.perception.c"}


def test_nodes_and_tools_use_the_package_not_its_old_names():
    """The thin nodes and the tools import fer_mask_ros modules that exist."""
    files = package_files()
    scripts = [os.path.join(REPO, "nodes", f) for f in sorted(os.listdir(os.path.join(REPO, "nodes")))]
    scripts += [os.path.join(REPO, "tools", f) for f in sorted(os.listdir(os.path.join(REPO, "tools")))
                if f.endswith(".py")]
    missing = []
    for path in scripts:
        for name, line, _ in imports_of(path, "script"):
            if under(name, PACKAGE) and not any(name.startswith(r) for r in ("fer_mask_ros.msg", "fer_mask_ros.srv")):
                parent = name.rpartition(".")[0]
                if name not in files and parent not in files:
                    missing.append(f"{os.path.relpath(path, REPO)}:{line}: {name}")
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)
