"""Frame sources for offline analysis: videos here, and a registry of readers by file extension.

A reader is registered as a module name and a class name (`register_reader(".bag", "fer_mask_ros.ros.bag",
"BagSource")`), imported only when such a file is opened; that keeps this module ROS-free while rosbags
are read by fer_mask_ros.ros.bag. Other packages can register their own readers the same way.
"""
from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.errors import AnalysisError
from fer_mask_ros.imaging import open_video_capture, walk_files

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg")
DEFAULT_TOPIC = "/naoqi_driver/camera/front/image_raw"
FALLBACK_FPS = 30.0
MAX_BAD_RUN = 300  # consecutive undecodable frames after which the rest of a video counts as unreadable

# file extension -> (module, class, what to install when the module cannot be imported)
READERS: Dict[str, Tuple[str, str, str]] = {}


def register_reader(extension: str, module: str, cls: str, needs: str = "") -> None:
    """Read files ending in `extension` with `module`.`cls`(path, topic, faces_topic, sampler, sync_slop);
    the module is imported when the first such file is opened. `needs` names what it requires."""
    READERS[extension.lower()] = (module, cls, needs)


register_reader(".bag", "fer_mask_ros.ros.bag", "BagSource", needs="ROS 1 (rosbag, genpy, sensor_msgs)")


@dataclass
class Frame:
    index: int  # position of the frame in the input (video frame number / image message number)
    time: float  # seconds since the input's first frame
    stamp: float  # what the pipeline gets: video time, or the image header stamp
    image: np.ndarray  # BGR uint8
    faces: Optional[list] = None  # TrackedFace list from a recorded FaceArray; None = detect
    key: Optional[int] = None  # header stamp in ns (bags), for matching live results


class Sampler:
    """--every N (every Nth frame) and --max-fps F (at most F frames per second of input time)."""

    def __init__(self, every: int = 1, max_fps: Optional[float] = None) -> None:
        self.every = max(1, int(every))
        self.period = 1.0 / float(max_fps) if max_fps else 0.0
        self._next = None

    @property
    def active(self) -> bool:
        return self.every > 1 or self.period > 0

    def keep(self, index: int, t: float) -> bool:
        if index % self.every:
            return False
        if self.period <= 0:
            return True
        if self._next is not None and t < self._next - 1e-6:
            return False
        self._next = (self._next + self.period) if self._next is not None else t + self.period
        if self._next <= t:
            self._next = t + self.period
        return True


class _FrameTimes:
    """What a source played at `fps` through its `sampler` reports: seconds read, frames per second kept."""

    fps: float
    frames_read: int
    sampler: Sampler

    @property
    def duration(self) -> float:
        return self.frames_read / self.fps

    @property
    def output_fps(self) -> float:
        fps = self.fps / self.sampler.every
        return min(fps, 1.0 / self.sampler.period) if self.sampler.period else fps


class VideoSource(_FrameTimes):
    kind = "video"

    def __init__(self, path: str, sampler: Optional[Sampler] = None,
                 frame_range: Optional[Tuple[int, int]] = None) -> None:
        """frame_range = (first, stop): only frames first .. stop - 1 (a time chunk; see analysis/chunks.py)."""
        import cv2

        self.path = path
        self.sampler = sampler or Sampler()
        self.frame_range = frame_range
        if not os.path.isfile(path):
            raise AnalysisError(f"{path}: no such file")
        if os.path.getsize(path) == 0:
            raise AnalysisError(f"{path}: empty file (zero-length video)")
        self._cap = open_video_capture(path)
        if not self._cap.isOpened():
            raise AnalysisError(f"{path}: cannot open as a video (unreadable or unsupported format)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps_known = math.isfinite(fps) and 0.5 < fps < 1000
        self.fps = fps if self.fps_known else FALLBACK_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if count > 0 else None
        self.frames_read = 0
        self.notes: List[str] = [] if self.fps_known else [f"frame rate unknown, assumed {FALLBACK_FPS:g} fps"]
        self.skipped_bad = 0
        self.frames_unreadable = 0  # frames the container declares that could not be decoded

    def __iter__(self) -> Iterator[Frame]:
        """Frames in order. A frame that does not decode before the declared end is skipped (reading on),
        counted in frames_unreadable and reported in the notes: data loss is never silent."""
        cap, i, decoded, bad = self._cap, 0, 0, []
        first, stop = self.frame_range or (0, None)
        end = self.total if stop is None else (min(stop, self.total) if self.total else stop)
        if first > 0:
            import cv2

            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != first:  # no exact seek: read up to it
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                while i < first and cap.grab():
                    i += 1
            i = first
        try:
            while stop is None or i < stop:
                t = i / self.fps
                if self.sampler.keep(i, t):
                    ok, image = cap.read()
                else:
                    ok, image = cap.grab(), None
                if not ok:
                    if end is None or i >= end:
                        break
                    bad.append(i)  # declared but unreadable: try the next one
                    i += 1
                    if len(bad) >= MAX_BAD_RUN and bad[-MAX_BAD_RUN] == i - MAX_BAD_RUN:
                        bad.extend(range(i, end))  # a long unreadable stretch: give up on the rest
                        i = end
                        break
                    continue  # read on: the demuxer moves past a frame that does not decode (seeking is worse)
                decoded += 1
                self.frames_read = i + 1
                if image is not None:
                    yield Frame(index=i, time=t, stamp=t, image=image)
                i += 1
        finally:
            cap.release()
            if bad and bad == list(range(bad[0], bad[0] + len(bad))) and bad[-1] == (self.total or 0) - 1 \
                    and len(bad) <= max(2, (self.total or 0) // 100):
                self.notes.append(f"the video has {bad[0]} frames, its container estimated {self.total}")
                self.total, bad = bad[0], []  # an estimated count that was a little off, not data loss
            self.frames_unreadable = len(bad)
            if bad:
                self.frames_read = max(self.frames_read, i)
                where = _ranges(bad)
                self.notes.append(f"{len(bad)} of the {self.total} declared frames ({len(bad) / self.fps:.1f} s of "
                                  f"the declared {self.total / self.fps:.1f} s) could not be decoded: frames {where}")
        if decoded == 0:
            raise AnalysisError(f"{self.path}: no frames could be decoded (zero-length or unreadable video)")
        if end is not None and decoded < end - first and not bad:
            self.notes.append(f"the video ended after {decoded} of its {end - first} declared frames")


#: frame rate of an image sequence when --fps is not given
DEFAULT_SEQUENCE_FPS = 10.0


class ImageSequenceSource(_FrameTimes):
    """A folder of frames (images, sorted by path) as a video at `fps`: frame i is at i / fps seconds."""

    kind = "images"

    def __init__(self, folder: str, sampler: Optional[Sampler] = None, fps: Optional[float] = None) -> None:
        self.path = folder
        self.sampler = sampler or Sampler()
        self.files = walk_files(folder)
        if not self.files:
            raise AnalysisError(f"{folder}: no videos, bags or images found")
        self.fps_known = fps is not None
        self.fps = float(fps) if fps else DEFAULT_SEQUENCE_FPS
        if not self.fps > 0:
            raise AnalysisError(f"{folder}: --fps must be > 0")
        self.total = len(self.files)
        self.frames_read = 0
        self.frames_unreadable = 0
        self.notes: List[str] = [] if self.fps_known else [
            f"an image sequence of {self.total} frames, played at {self.fps:g} fps (set --fps)"]

    def __iter__(self) -> Iterator[Frame]:
        from fer_mask_ros.errors import ImageReadError
        from fer_mask_ros.imaging import read_image, to_bgr

        bad: List[int] = []
        for i, path in enumerate(self.files):
            t = i / self.fps
            self.frames_read = i + 1
            if not self.sampler.keep(i, t):
                continue
            try:
                image = to_bgr(read_image(path))
            except (ImageReadError, OSError, ValueError):
                bad.append(i)
                continue
            yield Frame(index=i, time=t, stamp=t, image=image)
        self.frames_unreadable = len(bad)
        if bad:
            self.notes.append(f"{len(bad)} of the {self.total} images could not be read: frames {_ranges(bad)}")
        if len(bad) == self.total:
            raise AnalysisError(f"{self.path}: none of its {self.total} images could be read")


def _ranges(indices: List[int], limit: int = 6) -> str:
    """[3, 4, 5, 9] -> '3-5, 9' (at most `limit` ranges)."""
    out: List[str] = []
    start = prev = indices[0]
    for k in indices[1:] + [None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if k is not None:
            start = prev = k
    return ", ".join(out[:limit]) + (f", ... ({len(out) - limit} more ranges)" if len(out) > limit else "")


def open_source(path: str, topic: str = DEFAULT_TOPIC, faces_topic: Optional[str] = "auto",
                sampler: Optional[Sampler] = None, sync_slop: float = 0.0, fps: Optional[float] = None):
    """A video, a registered reader's file (.bag), or a folder of frames (an image sequence at `fps`)."""
    if not os.path.exists(path):
        raise AnalysisError(f"{path}: no such file")
    if os.path.isdir(path):
        return ImageSequenceSource(path, sampler, fps)
    ext = os.path.splitext(path)[1].lower()
    if ext in READERS:
        module, cls, needs = READERS[ext]
        try:
            reader = getattr(importlib.import_module(module), cls)
        except ImportError as exc:
            raise AnalysisError(f"{path}: reading {ext} files needs {needs or module} ({exc})") from None
        return reader(path, topic, faces_topic, sampler, sync_slop)
    return VideoSource(path, sampler)


def declared_frames(path: str, topic: str = DEFAULT_TOPIC) -> int:
    """How many frames an input says it has, cheaply (0 when unknown): the batch progress bar's total.
    Videos: the container's count; other readers: their `declared_frames(path, topic)` if they have one."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        return 0
    if ext in READERS:
        module, cls, _ = READERS[ext]
        try:
            reader = getattr(importlib.import_module(module), cls)
            count = getattr(reader, "declared_frames", None)
            return int(count(path, topic)) if count else 0
        except Exception:  # unreadable: reported when it is analysed
            return 0
    if not ext or ext not in VIDEO_EXTENSIONS:
        return 0
    import cv2

    cap = open_video_capture(path)
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()


def expand_inputs(paths: Sequence[str]) -> Tuple[List[str], bool]:
    """Files and folders -> input files (folders: videos and bags, recursively, sorted); batch flag.
    A folder without videos or bags but with images is one input: an image sequence (ImageSequenceSource).

    Missing paths are kept (they are reported per input)."""
    out: List[str] = []
    batch = len(paths) > 1
    for path in paths:
        if os.path.isdir(path):
            found = walk_files(path, VIDEO_EXTENSIONS + tuple(READERS))
            if not found and walk_files(path):
                out.append(path)  # frames
                continue
            batch = True
            out.extend(found)
        else:
            out.append(path)
    seen, unique = set(), []
    for p in out:
        if os.path.abspath(p) not in seen:
            seen.add(os.path.abspath(p))
            unique.append(p)
    return unique, batch or len(unique) > 1
