"""Interrupted batch work loses nothing (issue 27): `analyze --jobs 2` and `--shard K/N` SIGKILLed at 20 random
points (fixed seed; the parent alone, and the whole process group), each followed by `--resume`, give per-frame
files identical to one uninterrupted run, every input exactly once, no partial file taken for a finished one,
no worker left behind, and a summary that agrees with the per-frame files. A full disk (a small tmpfs as
--output; RLIMIT_FSIZE where mounting is not allowed) is a clear error, a non-zero exit and no CSV that looks
complete. Tiny inputs: 4 videos of 12 QVGA frames, a 4-channel random classifier."""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import write_video

from fer_mask_ros.imaging import read_video

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLIP = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.avi")
SEED = 27
KILLS_PER_SCENARIO = 5  # x 4 scenarios = 20 kill points
pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    clip = read_video(CLIP, max_frames=160)
    root = tmp_path_factory.mktemp("videos")
    for k in range(4):
        write_video(root / f"v{k}.avi", clip[40 * k + 20:40 * k + 32])
    return root


def command(videos, out, model, *extra):
    return [sys.executable, "-m", "fer_mask_ros", "analyze", str(videos), "--output", str(out), "--model", model,
            "--min-track-frames", "3", "--no-progress", *extra]


def run(cmd, **kwargs):
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, **kwargs)
    return p.returncode, p.stderr


def group_alive(pgid):
    """A process of group `pgid` that still runs. A zombie does not count: a pool worker orphaned by the SIGKILLed
    parent is reparented to PID 1, and where PID 1 does not reap (some containers) its zombie stays for good
    while kill(0) still finds it."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


#: how long the processes of a killed analyze may take to be gone: a pool worker that is still starting,
#: importing numpy and OpenCV on a loaded 2-core machine, notices its parent is gone only once it runs
GONE_DEADLINE_S = 180


def killed_run(cmd, delay, whole_group):
    """Start cmd in its own process group, SIGKILL it (or its whole group) after `delay` s; then wait for the
    event "no process of the group is left" (a pool worker must not outlive its parent), GONE_DEADLINE_S at most."""
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        p.wait(delay)
    except subprocess.TimeoutExpired:
        if whole_group:
            os.killpg(p.pid, signal.SIGKILL)
        else:
            p.kill()
    p.wait()  # reap the parent: an unreaped child is a zombie of this test's own making
    start = time.monotonic()
    while group_alive(p.pid) and time.monotonic() - start < GONE_DEADLINE_S:
        time.sleep(0.2)
    left = group_alive(p.pid)
    if left:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, (f"processes of the killed analyze (killed {delay:.1f} s after the start) still alive "
                      f"{GONE_DEADLINE_S} s later")


def per_input(out):
    """{input folder: (frames.csv, events.csv)}; every finished folder's summary.json agrees with its CSVs."""
    got = {}
    for name in sorted(os.listdir(out)):
        sub = os.path.join(out, name)
        if not os.path.isdir(sub):
            continue
        assert not [f for f in os.listdir(sub) if f.startswith(".partial-")], os.listdir(sub)
        with open(os.path.join(sub, "summary.json"), encoding="utf-8") as handle:
            summary = json.load(handle)
        texts = []
        for f in ("frames.csv", "events.csv"):
            with open(os.path.join(sub, f), encoding="utf-8") as handle:
                texts.append(handle.read())
            assert texts[-1].count("\n") - 1 == summary["csv_rows"][f], (name, f)
        got[name] = tuple(texts)
    return got


def summary_table(out):
    with open(os.path.join(out, "summary.csv"), newline="", encoding="utf-8") as handle:
        return [{k: v for k, v in r.items() if k not in ("fps_processed", "output")} for r in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def reference(videos, tiny_model_path, tmp_path_factory):
    """One uninterrupted --jobs 1 run, and how long a --jobs 2 run takes (the range of the kill points)."""
    out = tmp_path_factory.mktemp("reference")
    rc, err = run(command(videos, out / "j1", tiny_model_path, "--jobs", "1"))
    assert rc == 0, err
    t0 = time.monotonic()
    rc, err = run(command(videos, out / "j2", tiny_model_path, "--jobs", "2"))
    assert rc == 0, err
    files = per_input(out / "j1")
    assert len(files) == 4 and all(f.count("\n") > 2 for f, _ in files.values())
    assert per_input(out / "j2") == files
    return files, summary_table(out / "j1"), time.monotonic() - t0


@pytest.mark.parametrize("mode,whole_group", [("jobs", False), ("jobs", True), ("shard", False), ("shard", True)])
def test_sigkill_then_resume_is_identical_to_one_run(videos, tiny_model_path, reference, tmp_path, mode, whole_group):
    files, table, span = reference
    rng = random.Random(f"{SEED}-{mode}-{whole_group}")
    out = tmp_path / "out"
    for i in range(KILLS_PER_SCENARIO):
        extra = ["--jobs", "2"] if mode == "jobs" else ["--shard", f"{i % 2 + 1}/2", "--jobs", "1"]
        killed_run(command(videos, out, tiny_model_path, "--resume", *extra), rng.uniform(0.3, span), whole_group)
    if mode == "jobs":
        rc, err = run(command(videos, out, tiny_model_path, "--resume", "--jobs", "2"))
        assert rc == 0, err
    else:
        for k in (1, 2):
            rc, err = run(command(videos, out, tiny_model_path, "--resume", "--shard", f"{k}/2", "--jobs", "1"))
            assert rc == 0, err
        rc, err = run([sys.executable, "-m", "fer_mask_ros", "analyze", "--summarize", str(out)])
        assert rc == 0, err
    assert per_input(out) == files  # every input once, each byte for byte as the uninterrupted run
    assert summary_table(out) == table  # and the summary agrees


def test_a_csv_that_disagrees_with_its_summary_is_not_taken_as_finished(videos, tiny_model_path, reference, tmp_path):
    """A frames.csv cut short (or another run's) beside a summary.json: --resume analyses that input again."""
    files, _, _ = reference
    out = tmp_path / "out"
    rc, err = run(command(videos, out, tiny_model_path, "--jobs", "1"))
    assert rc == 0, err
    frames = out / "v1" / "frames.csv"
    frames.write_text("".join(frames.read_text().splitlines(keepends=True)[:2]))
    rc, err = run(command(videos, out, tiny_model_path, "--jobs", "1", "--resume"))
    assert rc == 0 and "3 of 4 inputs already analysed" in err, err
    assert per_input(out) == files


def _mount_tmpfs(path, size):
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return p.returncode == 0


def _limit_file_size(limit):
    def preexec():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_full_disk_is_a_clear_error_and_leaves_no_complete_looking_csv(videos, tiny_model_path, tmp_path, jobs):
    out = tmp_path / "small"
    mounted = _mount_tmpfs(out, "48k")
    try:
        kwargs = {} if mounted else {"preexec_fn": _limit_file_size(6000)}  # EFBIG instead of ENOSPC
        rc, err = run(command(videos, out, tiny_model_path, "--jobs", jobs), **kwargs)
        assert rc != 0, err
        assert "Traceback" not in err, err
        reason = "No space left on device" if mounted else "File too large"
        assert reason in err and "cannot write" in err, err
        for root, _, names in os.walk(out):
            assert not [n for n in names if n.startswith(".partial-")], (root, names)
            for name in names:  # a CSV that is there was written whole (atomically), and a summary agrees
                if name.endswith(".csv"):
                    with open(os.path.join(root, name), encoding="utf-8") as handle:
                        text = handle.read()
                    assert text.endswith("\n") and len(text.splitlines()) >= 1, (root, name)
            if "summary.json" in names:
                with open(os.path.join(root, "summary.json"), encoding="utf-8") as handle:
                    counted = json.load(handle)["csv_rows"]
                for name, count in counted.items():
                    with open(os.path.join(root, name), encoding="utf-8") as handle:
                        assert handle.read().count("\n") - 1 == count, (root, name)
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)
