"""Absolute (wall-clock) time of an input's first frame, where the input records one.

* rosbags: the first image's header stamp (bag time when the stamp is zero) is Unix time; stamps before
  2000-01-01 are taken for simulated or relative time and not used.
* videos: the container's creation time, taken as the time of frame 0: for MP4 / MOV (.mp4 .m4v .mov .3gp)
  read from moov/mvhd here (analysis/mp4.py), for other containers from `ffprobe`'s creation_time tag when
  ffprobe is installed. Cameras write it; OpenCV and most editors write none (then it is unknown). Some
  cameras write the time the recording ended: check one file against a clock when it matters.
* image sequences: unknown.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from typing import Optional, Tuple

#: Unix time of 2000-01-01: an earlier stamp is simulated or relative time, not a date.
PLAUSIBLE_AFTER = 946684800.0
MP4_EXTENSIONS = (".mp4", ".m4v", ".mov", ".3gp")


def iso_utc(unix_s: Optional[float]) -> str:
    """ISO 8601 UTC with milliseconds ("2026-12-06T18:12:57.123Z"); "" for None."""
    if unix_s is None:
        return ""
    moment = datetime.datetime.fromtimestamp(float(unix_s), datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> Optional[float]:
    """Unix time of an ISO 8601 date and time ("2024-05-01T10:20:30.000000Z"); None when it is not one."""
    text = (text or "").strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, rest = text.partition(".")
    if sep:  # fromisoformat (Python 3.8) takes 3 or 6 digits of a fraction only
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]  # the fraction's leading digits only
        zone = rest[len(digits):]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def ffprobe_creation_time(path: str) -> Optional[float]:
    """The container's creation_time tag as ffprobe reads it; None without ffprobe or without the tag."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-v", "error", "-show_entries", "format_tags=creation_time", "-of",
                               "default=noprint_wrappers=1:nokey=1", path], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = proc.stdout.strip().splitlines() if proc.returncode == 0 else []
    return parse_iso(lines[0]) if lines else None


def recording_start(path: str, kind: str, start_stamp: Optional[float] = None) -> Tuple[Optional[float], str]:
    """(Unix time of the input's first frame or None, where it came from or why it is unknown)."""
    if kind == "rosbag":
        if start_stamp is not None and start_stamp >= PLAUSIBLE_AFTER:
            return float(start_stamp), "rosbag: the first image's header stamp"
        return None, "rosbag stamps are not a date (simulated or relative time)"
    if kind != "video":
        return None, "an image sequence has no recording time"
    if os.path.splitext(path)[1].lower() in MP4_EXTENSIONS:
        from fer_mask_ros.analysis.mp4 import creation_time

        found = creation_time(path)
        if found is not None and found >= PLAUSIBLE_AFTER:
            return found, "video container: creation time (MP4 mvhd box)"
    found = ffprobe_creation_time(path)
    if found is not None and found >= PLAUSIBLE_AFTER:
        return found, "video container: creation_time tag (ffprobe)"
    if shutil.which("ffprobe") is None and os.path.splitext(path)[1].lower() not in MP4_EXTENSIONS:
        return None, "the container's creation time is read from MP4/MOV only (ffprobe is not installed)"
    return None, "the video container records no creation time"
