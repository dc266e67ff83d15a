"""Builds the ROS 2 interface package fer_mask_ros_interfaces from the same msg/ and srv/ files as ROS 1.

    python -m fer_mask_ros.ros2.interfaces --prefix .venv-ros2 [--hri-msgs ../shared/ros4hri/hri_msgs-ros2]

The ROS 2 Jazzy wheels from PyPI install ROS's lib/, share/ and include/ into the venv, so the venv is the ament
prefix: a generated package (in a temporary folder, never committed) is built with plain cmake + make and installed
into it. The ROS 1 files are rewritten on the way (a bare `Header` becomes `std_msgs/Header`, `time` /
`duration` become builtin_interfaces'); there is no second copy. hri_msgs (REP-155, optional) is built the same
way from its unchanged ROS 2 source when the venv has none. Standard library only: no ROS is imported here.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Dict, List

PACKAGE = "fer_mask_ros_interfaces"
REPO_ROOT = Path(__file__).resolve().parents[2]
_ROS1_BUILTINS = {"Header": "std_msgs/Header", "time": "builtin_interfaces/Time",
                  "duration": "builtin_interfaces/Duration"}
_FIELD = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_/]*)(\[[0-9<=]*\])?(\s+.*)$")


def ros2_definition(text: str) -> str:
    """A ROS 1 .msg/.srv text as ROS 2's rosidl_adapter takes it (only the ROS 1 builtin names change)."""
    out = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m and not line.lstrip().startswith("#") and m.group(2) in _ROS1_BUILTINS:
            line = m.group(1) + _ROS1_BUILTINS[m.group(2)] + (m.group(3) or "") + m.group(4)
        out.append(line)
    return "\n".join(out) + "\n"


def _dependencies(files: List[Path]) -> List[str]:
    deps = set()
    for path in files:
        for name in re.findall(r"^\s*([a-z][a-z0-9_]*)/[A-Z]", ros2_definition(path.read_text()), re.M):
            deps.add(name)
    return sorted(deps)


def generate_package(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Writes the interface package (package.xml, CMakeLists.txt, msg/, srv/) under dest; returns its folder."""
    pkg = dest / PACKAGE
    files: Dict[str, List[Path]] = {kind: sorted((root / kind).glob(f"*.{kind}")) for kind in ("msg", "srv")}
    for kind, paths in files.items():
        (pkg / kind).mkdir(parents=True, exist_ok=True)
        for path in paths:
            (pkg / kind / path.name).write_text(ros2_definition(path.read_text()))
    deps = _dependencies(files["msg"] + files["srv"])
    depends = "\n".join(f"  <depend>{d}</depend>" for d in deps)
    (pkg / "package.xml").write_text(f"""<?xml version="1.0"?>
<package format="3">
  <name>{PACKAGE}</name>
  <version>1.0.0</version>
  <description>fer_mask_ros messages and services for ROS 2, generated from fer_mask_ros/msg and srv</description>
  <maintainer email="fer_mask_ros@example.com">fer_mask_ros</maintainer>
  <license>MIT</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
{depends}
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
""")
    listed = "\n".join(f'  "{kind}/{p.name}"' for kind, paths in files.items() for p in paths)
    finds = "\n".join(f"find_package({d} REQUIRED)" for d in deps)
    (pkg / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.8)
project({PACKAGE})
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
{finds}
rosidl_generate_interfaces(${{PROJECT_NAME}}
{listed}
  DEPENDENCIES {' '.join(deps)}
)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
""")
    return pkg


def fix_python_includes(prefix: Path) -> int:
    """The wheels' share/*/cmake/*Export.cmake name the wheel builder's Python and numpy include folders; point
    them at this machine's (needs libpython3-dev). Returns how many files changed."""
    import numpy  # noqa: PLC0415 - the venv's numpy

    local = {"python": sysconfig.get_paths()["include"], "numpy": numpy.get_include()}
    changed = 0
    for path in glob.glob(str(prefix / "share" / "*" / "cmake" / "*Export.cmake")):
        text = Path(path).read_text()
        new = re.sub(r"/[^;\" ]*/site-packages/numpy/(_core|core)/include", local["numpy"], text)
        new = re.sub(r"/opt/python/[^;\" /]+/include/python3\.[0-9]+", local["python"], new)
        if new != text:
            Path(path).write_text(new)
            changed += 1
    return changed


def build(source: Path, prefix: Path, work: Path, log: Path) -> None:
    """cmake + make install of one ament package into prefix; the log keeps the output (tail shown on failure)."""
    env = dict(os.environ, AMENT_PREFIX_PATH=str(prefix), CMAKE_PREFIX_PATH=str(prefix))
    build_dir = work / f"build-{source.name}"
    build_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    steps = [["cmake", str(source), f"-DCMAKE_INSTALL_PREFIX={prefix}", "-DBUILD_TESTING=OFF",
              f"-DPython3_EXECUTABLE={python}", f"-DPYTHON_EXECUTABLE={python}", "-DCMAKE_BUILD_TYPE=Release"],
             ["make", f"-j{max(1, min(4, os.cpu_count() or 1))}", "install"]]
    with open(log, "a") as out:
        for step in steps:
            out.write("$ " + " ".join(step) + "\n")
            out.flush()
            if subprocess.call(step, cwd=build_dir, env=env, stdout=out, stderr=subprocess.STDOUT) != 0:
                tail = log.read_text().splitlines()[-30:]
                raise SystemExit("\n".join(tail) + f"\nerror: building {source.name} failed (log: {log})")


def _importable(module: str, prefix: Path) -> bool:
    code = f"import {module}"
    return subprocess.call([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, AMENT_PREFIX_PATH=str(prefix))) == 0


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="the ROS 2 venv (the ament prefix)")
    parser.add_argument("--hri-msgs", default="", help="hri_msgs ROS 2 source; built when the prefix has none")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    prefix = Path(args.prefix).resolve()
    stamp = prefix / f".{PACKAGE}.stamp"
    sources = "".join(p.name + p.read_text() for k in ("msg", "srv") for p in sorted((REPO_ROOT / k).glob(f"*.{k}")))
    changed = fix_python_includes(prefix)
    if changed:
        print(f"setup-ros2: {changed} cmake export files now name this machine's Python and numpy includes")
    work = Path(tempfile.mkdtemp(prefix="fer_mask_ros2_"))
    log = prefix / "interfaces-build.log"
    try:
        up_to_date = stamp.is_file() and stamp.read_text() == sources and _importable(f"{PACKAGE}.msg", prefix)
        if args.force or not up_to_date:
            print(f"setup-ros2: building {PACKAGE} from msg/ and srv/")
            build(generate_package(work), prefix, work, log)
            stamp.write_text(sources)
        hri = Path(args.hri_msgs) if args.hri_msgs else None
        if _importable("hri_msgs.msg", prefix):
            pass
        elif hri is not None and (hri / "package.xml").is_file() and "<name>hri_msgs</name>" in (
                hri / "package.xml").read_text():
            print(f"setup-ros2: building hri_msgs from {hri} (about a minute)")
            shutil.copytree(hri, work / "hri_msgs")
            build(work / "hri_msgs", prefix, work, log)
        else:
            print(f"setup-ros2: hri_msgs not found (HRI_MSGS2_SRC={hri}): the ROS 2 REP-155 bridge will be off")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
