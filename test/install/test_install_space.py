#!/usr/bin/env python3
"""The catkin install space works on its own (`make install-test`, part of `make test`).

Builds the package with `catkin_make install` in a separate workspace (default .ws/install_ws, its src/
a symlink to this repository) from a clean environment, then, in a clean environment that sources only
install/setup.bash (no venv on PATH: the installed nodes start with the build's -DPYTHON_EXECUTABLE), runs
demo.launch (fake NAO on the bundled clip) on a private master and checks: the installed nodes' interpreter, the
launch file, models, config and clip all come from the install space, NAO speaks, and the console ends
cleanly (exit 0, no REQUIRED-process banner, no traceback, no qi info lines).

    python test/install/test_install_space.py [--ws DIR] [--duration 20]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from fer_mask_ros.ports import free_port  # noqa: E402

CONSOLE_FAILURES = ("REQUIRED process", "has died", "Traceback", "FATAL", "not found")  # any of them fails the test


def clean_env(**extra: str) -> dict:
    """Only what a new shell on this machine has: no ROS variables of the devel space, and no venv on PATH
    (the README's one Python step is the build's -DPYTHON_EXECUTABLE, which the installed nodes then run with)."""
    env = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TERM", "USER") if k in os.environ}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def bash(script: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ws", default=os.path.join(REPO, ".ws", "install_ws"))
    ap.add_argument("--duration", type=float, default=20.0)
    args = ap.parse_args()
    ws = os.path.abspath(args.ws)
    install = os.path.join(ws, "install")
    os.makedirs(os.path.join(ws, "src"), exist_ok=True)
    link = os.path.join(ws, "src", "fer_mask_ros")
    if os.path.realpath(link) != REPO:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(REPO, link)
    problems = []

    t0 = time.time()
    python = os.path.join(REPO, ".venv", "bin", "python3")
    build = bash(f"cd {ws} && catkin_make -DPYTHON_EXECUTABLE={python} -DCMAKE_BUILD_TYPE=Release "
                 "-DCATKIN_ENABLE_TESTING=OFF install", clean_env(), timeout=900)
    if build.returncode != 0:
        print(build.stdout[-4000:])
        print(f"install-test: catkin_make install failed in {ws}")
        return 1
    print(f"install-test: catkin_make install into {install}: {time.time() - t0:.0f} s")
    with open(os.path.join(install, "lib", "fer_mask_ros", "fake_nao"), encoding="utf-8") as handle:
        shebang = handle.readline().strip()
    if shebang != "#!" + python:  # cmake/installed_shebangs.cmake
        problems.append(f"the installed nodes start with {shebang!r}, not the build's interpreter #!{python}")

    # where the installed package finds its files
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fer_install_") as ros_home:
        env = clean_env(ROS_HOME=ros_home, ROS_MASTER_URI=f"http://localhost:{port}")
        source = f"source {install}/setup.bash && cd {ros_home}"
        where = bash(source + " && rospack find fer_mask_ros && python3 -c 'from fer_mask_ros import config as c; "
                     "print(c.MODELS_DIR); print(c.CONFIG_DIR); print(c.DATA_DIR); import fer_mask_ros; "
                     "print(fer_mask_ros.__file__)'", env, timeout=120)
        print(where.stdout.strip())
        share, dist = f"{install}/share/fer_mask_ros", f"{install}/lib/python3/dist-packages/fer_mask_ros"
        expected = [share, f"{share}/models", f"{share}/config", f"{dist}/data", f"{dist}/__init__.py"]
        if where.returncode != 0 or where.stdout.strip().splitlines()[-5:] != expected:
            problems.append(f"package files not found in the install space; expected {expected}")

        t0 = time.time()
        demo = bash(source + f" && roslaunch -p {port} fer_mask_ros demo.launch duration:={args.duration:g} "
                    f"port:={free_port()} output:=log", env, timeout=args.duration + 180)
        out = demo.stdout
        print(f"install-test: demo.launch from the install space: exit {demo.returncode}, {time.time() - t0:.0f} s")
        print("\n".join(ln for ln in out.splitlines() if "NAO says" in ln or "NAO said" in ln))
    if demo.returncode != 0:
        problems.append(f"demo.launch exited with {demo.returncode}")
    if f"{install}/share/fer_mask_ros/launch/demo.launch" not in out:
        problems.append("demo.launch was not the installed one")
    if f"{install}/lib/python3/dist-packages/fer_mask_ros/data/demo_clip" not in out:
        problems.append("the fake NAO did not play the installed clip")
    if "NAO says:" not in out:
        problems.append("NAO said nothing")
    for bad in CONSOLE_FAILURES:
        if bad in out:
            problems.append(f"console shows {bad!r}")
    qi_info = [ln for ln in out.splitlines() if ln.startswith("[I] ")]
    if qi_info:
        problems.append(f"qi info lines on the console: {qi_info[:3]}")
    if problems:
        print(out[-6000:])
        # the tail may have lost the first failure (a node that died at start): its lines, from the whole console
        flagged = [ln for ln in out.splitlines() if any(w in ln for w in CONSOLE_FAILURES + ("ERROR", "exit code"))]
        print("install-test FAILED:\n  " + "\n  ".join(problems))
        print("install-test: console lines that name a failure:\n  " + "\n  ".join(flagged[:40] or ["(none)"]))
        return 1
    print("install-test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
