"""`bench --graph`: the real ROS graph (fake_nao -> nao_camera -> face_detector -> emotion_classifier)
timed end to end, plus the synthetic frames (1..N masked faces from the bundled clip) it is fed.

Frames: `FaceFrames(width, height, faces)` composites the bundled clip's masked FER faces
(fer_mask_ros/data/demo_clip.*) on the clip's background, moving slowly, so every resolution and
face count uses the same faces. The graph bench starts a fake NAO serving those frames at the
offered rate, `roslaunch`es nao.launch against it and measures, per case:

* latency camera stamp -> EmotionStamped arrival (p50 / p95 / max), frames processed / dropped per
  second (EmotionArray count vs camera images), CPU % and RSS per node (from /proc);
* per-stage times (decode, detection, crop, classification, publish) from the same library calls,
  timed in this process on the same frames.

Writes a Markdown table (docs/PERFORMANCE.md) and docs/performance.json.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESOLUTIONS = {"QVGA": (320, 240), "VGA": (640, 480)}
NAO_RESOLUTION = {"QVGA": 1, "VGA": 2}


# --------------------------------------------------------------------------------------------- frames
def clip_face_patches(margin: float = 0.18) -> List[np.ndarray]:
    """BGR crops (face box + margin) of every distinct face of the bundled clip, in clip order."""
    import cv2  # noqa: PLC0415

    from . import clip  # noqa: PLC0415

    labels = clip.load_labels()
    cap = cv2.VideoCapture(str(clip.DATA_DIR / labels["video"]))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise RuntimeError("cannot read the bundled demo clip")
    patches = []
    for seg in labels["segments"]:
        for face in seg["faces"]:
            k = len(face["boxes"]) // 2  # middle of the segment
            x, y, w, h = face["boxes"][k]
            img = frames[min(len(frames) - 1, seg["start_frame"] + k)]
            m = int(round(margin * max(w, h)))
            x0, y0 = max(0, x - m), max(0, y - m)
            x1, y1 = min(img.shape[1], x + w + m), min(img.shape[0], y + h + m)
            patches.append(img[y0:y1, x0:x1].copy())
    return patches


def clip_background(width: int, height: int) -> np.ndarray:
    """The clip's plain background (its first frame's left column strip, stretched) at width x height."""
    import cv2  # noqa: PLC0415

    from . import clip  # noqa: PLC0415

    rng = np.random.default_rng(7)
    return cv2.resize(clip.background(rng), (width, height), interpolation=cv2.INTER_LINEAR)


class FaceFrames:
    """Frames of `faces` masked clip faces on a width x height background, moving a little per frame.

    `frame(i)` -> BGR uint8; `boxes(i)` -> the faces' (x, y, w, h) boxes in that frame. Faces sit
    on a grid (up to 5 per row) sized so that they fill their cells; `n_frames` distinct frames loop.
    """

    def __init__(self, width: int, height: int, faces: int, n_frames: int = 40, seed: int = 0,
                 patches: Optional[Sequence[np.ndarray]] = None):
        import cv2  # noqa: PLC0415

        self.width, self.height, self.faces = int(width), int(height), int(faces)
        self.n_frames = max(1, int(n_frames))
        patches = list(patches) if patches is not None else clip_face_patches()
        bg = clip_background(self.width, self.height)
        cols = min(self.faces, 5) if self.faces else 1
        rows = max(1, math.ceil(self.faces / cols))
        cell_w, cell_h = self.width / cols, self.height / rows
        side = int(min(cell_w, cell_h) * 0.78)
        rng = np.random.default_rng(seed)
        self._frames: List[np.ndarray] = []
        self._boxes: List[List[Tuple[int, int, int, int]]] = []
        slack_x, slack_y = cell_w - side, cell_h - side
        phases = rng.uniform(0, 2 * math.pi, size=(max(1, self.faces), 2))
        tiles = [cv2.resize(patches[i % len(patches)], (side, side), interpolation=cv2.INTER_AREA)
                 for i in range(self.faces)]
        for t in range(self.n_frames):
            frame = bg.copy()
            boxes = []
            for i in range(self.faces):
                r, c = divmod(i, cols)
                a = 2 * math.pi * t / self.n_frames
                x = int(c * cell_w + slack_x * (0.5 + 0.4 * math.sin(a + phases[i, 0])))
                y = int(r * cell_h + slack_y * (0.5 + 0.4 * math.cos(a + phases[i, 1])))
                frame[y:y + side, x:x + side] = tiles[i]
                boxes.append((x, y, side, side))
            self._frames.append(frame)
            self._boxes.append(boxes)

    def frame(self, i: int) -> np.ndarray:
        return self._frames[i % self.n_frames]

    def boxes(self, i: int) -> List[Tuple[int, int, int, int]]:
        return list(self._boxes[i % self.n_frames])

    @property
    def frames(self) -> List[np.ndarray]:
        return list(self._frames)


# --------------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100, linear interpolation); nan for no values."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class ProcSample:
    """CPU time (s) and RSS (bytes) of one process at one moment (Linux /proc)."""

    cpu_s: float
    rss: int
    t: float


def proc_sample(pid: int) -> Optional[ProcSample]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime (fields 14, 15 of stat)
    return ProcSample(cpu_s=cpu, rss=rss_pages * os.sysconf("SC_PAGE_SIZE"), t=time.monotonic())


def cpu_percent(a: ProcSample, b: ProcSample) -> float:
    dt = b.t - a.t
    return 100.0 * (b.cpu_s - a.cpu_s) / dt if dt > 0 else float("nan")


def machine_description() -> Dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        mem_gib = float("nan")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory_gib": f"{mem_gib:.1f}",
            "os": platform.platform(), "python": platform.python_version(),
            "load_before": " ".join(f"{v:.2f}" for v in load)}


@dataclass
class CaseResult:
    resolution: str
    offered_fps: float
    faces: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    processed_fps: float
    dropped_fps: float
    peer_fps: Optional[float] = None
    camera_fps: float = float("nan")
    faces_per_frame: float = float("nan")
    cpu_percent: Dict[str, float] = field(default_factory=dict)
    rss_mb: Dict[str, float] = field(default_factory=dict)
    stages_ms: Dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    def record(self) -> Dict:
        """The docs/performance.json record (rounded; nan -> null)."""
        d = asdict(self)
        return {k: _json_value(v) for k, v in d.items()}


def _json_value(v):
    if isinstance(v, float):
        return None if v != v else round(v, 2)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v
