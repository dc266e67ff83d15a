"""Frames from a video file, an image folder or an in-memory list, played at a set fps, looping.

Used by the fake NAO (fer_mask_ros.simulation.fake_nao) to pretend to be a live camera: the frame
shown at time t (seconds since the start) is frame ``int(t * fps) % len(frames)``.
Frames are held in memory as RGB uint8 HxWx3 arrays (the bundled demo clip is small);
loading stops at ``max_bytes`` with a warning so that a long video cannot eat the RAM.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

from fer_mask_ros import config
from fer_mask_ros.errors import FrameSourceError, ImageReadError
from fer_mask_ros.imaging import IMAGE_EXTENSIONS, iter_video, read_image

LOG = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

DATA_DIR = config.DATA_DIR
DEMO_CLIP_STEM = "demo_clip"


def find_demo_clip(data_dir: Optional[Path] = None) -> Optional[Path]:
    """The bundled demo clip fer_mask_ros/data/demo_clip.* (any extension), or None."""
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    if not folder.is_dir():
        return None
    candidates = sorted(p for p in folder.glob(DEMO_CLIP_STEM + ".*") if p.is_file())
    # prefer a video over anything else (e.g. a README or a JSON sidecar)
    for p in candidates:
        if p.suffix.lower() in VIDEO_EXTENSIONS:
            return p
    for p in candidates:
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            return p
    folder_clip = folder / DEMO_CLIP_STEM
    if folder_clip.is_dir():
        return folder_clip
    return None


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """Validate one frame and return it as a contiguous HxWx3 uint8 RGB array (gray is expanded)."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise FrameSourceError(f"a frame must be HxW or HxWx3, got shape {tuple(np.asarray(frame).shape)}")
    return np.ascontiguousarray(arr)


class FrameSource:
    """A looping list of RGB frames played at `fps` frames per second."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float = 10.0, name: str = "frames"):
        self.frames: List[np.ndarray] = [as_rgb(f) for f in frames]
        if not self.frames:
            raise FrameSourceError(f"frame source {name!r} holds no frames")
        if not fps or fps <= 0:
            raise FrameSourceError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.name = name

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        h, w = self.frames[0].shape[:2]
        return f"FrameSource({self.name!r}, {len(self)} frames, {w}x{h}, {self.fps:g} fps)"

    @property
    def duration(self) -> float:
        """Seconds before the source loops."""
        return len(self.frames) / self.fps

    def index_at(self, t: float) -> int:
        """Frame index shown `t` seconds after the start (looping; negative t shows frame 0)."""
        if t <= 0:
            return 0
        return int(t * self.fps + 1e-9) % len(self.frames)

    def frame_at(self, t: float) -> np.ndarray:
        return self.frames[self.index_at(t)]

    @classmethod
    def from_path(cls, path: Union[str, Path], fps: float = 10.0, max_bytes: int = DEFAULT_MAX_BYTES) -> FrameSource:
        return cls(load_frames(path, max_bytes=max_bytes), fps=fps, name=str(path))


def _read_image(path: Path) -> np.ndarray:
    """An image file as RGB (what the fake camera serves)."""
    try:
        return np.ascontiguousarray(read_image(path, "color")[:, :, ::-1])
    except ImageReadError:
        raise FrameSourceError(f"cannot read image {path}") from None


def _take_within(frames: Iterator[np.ndarray], max_bytes: int, what: str) -> List[np.ndarray]:
    """Frames until their total size would pass max_bytes (always at least one), with one warning if cut."""
    kept: List[np.ndarray] = []
    total = 0
    for frame in frames:
        total += frame.nbytes
        if total > max_bytes and kept:
            LOG.warning("%s is larger than %d MiB in memory; using its first %d frames",
                        what, max_bytes // (1024 * 1024), len(kept))
            break
        kept.append(frame)
    close = getattr(frames, "close", None)
    if close is not None:
        close()  # a video generator releases its capture now, not when collected
    return kept


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    """RGB frames of a video file (what the fake camera serves)."""
    try:
        for bgr in iter_video(path):
            yield np.ascontiguousarray(bgr[:, :, ::-1])
    except ImageReadError as exc:
        raise FrameSourceError(str(exc)) from None


def load_frames(path: Union[str, Path], max_bytes: int = DEFAULT_MAX_BYTES) -> List[np.ndarray]:
    """RGB frames from a video file, a single image or a folder of images (sorted by name)."""
    p = Path(path)
    if not p.exists():
        raise FrameSourceError(f"frame source {p} does not exist")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FrameSourceError(f"folder {p} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return _take_within((_read_image(f) for f in files), max_bytes, f"image folder {p}")
    if p.suffix.lower() in IMAGE_EXTENSIONS and p.suffix.lower() != ".gif":
        return [_read_image(p)]
    frames = _take_within(_video_frames(p), max_bytes, f"video {p}")
    if not frames:
        raise FrameSourceError(f"video {p} has no readable frames")
    return frames


def open_frame_source(
    source: Union[str, Path, FrameSource, Sequence[np.ndarray]],
    fps: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FrameSource:
    """A FrameSource from a path, the word "clip" (the bundled demo clip), a list of frames or a FrameSource.

    A FrameSource passed in keeps its frames but plays at `fps`.
    """
    if isinstance(source, FrameSource):
        return FrameSource(source.frames, fps=fps, name=source.name)
    if isinstance(source, (str, Path)):
        if str(source) == "clip":
            clip = find_demo_clip()
            if clip is None:
                raise FrameSourceError(
                    f"the bundled demo clip {DATA_DIR / (DEMO_CLIP_STEM + '.*')} is missing; "
                    "build it with `python -m fer_mask_ros make-clip` or pass --source VIDEO|FOLDER"
                )
            source = clip
        return FrameSource.from_path(source, fps=fps, max_bytes=max_bytes)
    if isinstance(source, np.ndarray) and source.ndim in (2, 3) and (source.ndim == 2 or source.shape[-1] in (1, 3, 4)):
        return FrameSource([source], fps=fps, name="image")
    return FrameSource(list(source), fps=fps, name="frames")
