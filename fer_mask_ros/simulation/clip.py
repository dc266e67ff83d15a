"""The bundled demo clip: FER2013 test faces wearing synthetic masks, moving in 320x240 frames.

`build_clip()` renders fer_mask_ros/data/demo_clip.avi (MJPG, readable by any OpenCV build) and
demo_clip.json, the ground truth: for every segment its time range and, for every face in it, the
true emotion, the FER2013 source file, the mask kind and the face box in every frame. The fake NAO
plays the clip as its camera (`fake-nao --source clip`), the demo and the rostests check the graph's
output against the JSON (`truth_at()`).

Each 48x48 FER face gets a synthetic mask (masking.apply_mask, as in training), then some context
so that a face detector sees a head rather than a tight square: the crop is padded with a blurred
extension of itself, upscaled, and blended into the background with a feathered ellipse.
Everything is drawn from one numpy Generator, so a seed gives the same clip bit for bit.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros import config
from fer_mask_ros.errors import ImageReadError
from fer_mask_ros.imaging import read_image
from fer_mask_ros.labels import EMOTIONS

DATA_DIR = config.DATA_DIR
DEFAULT_VIDEO = DATA_DIR / "demo_clip.avi"
DEFAULT_SOURCE = Path("data/fer2013/test")  # the README's data/ layout, relative to the working directory
WIDTH, HEIGHT, FPS = 320, 240, 10.0
MAX_BYTES = 2 * 1024 * 1024


@dataclass
class FaceSpec:
    """One face in a segment: its emotion, height in pixels and a straight path (start -> end centre)."""

    emotion: str
    height: int = 120
    start: Tuple[float, float] = (0.3, 0.5)  # centre at the segment start, fractions of width / height
    end: Tuple[float, float] = (0.7, 0.5)
    source: Optional[str] = None  # FER2013 file name; None = drawn with the seed


@dataclass
class SegmentSpec:
    duration_s: float
    faces: List[FaceSpec] = field(default_factory=list)


#: 4 single-face segments and one with two faces, 22 s at 10 fps.
DEFAULT_SEGMENTS: Tuple[SegmentSpec, ...] = (
    SegmentSpec(4.5, [FaceSpec("happy", 124, (0.33, 0.52), (0.62, 0.48))]),
    SegmentSpec(4.5, [FaceSpec("surprise", 124, (0.66, 0.48), (0.38, 0.52))]),
    SegmentSpec(4.5, [FaceSpec("angry", 124, (0.40, 0.55), (0.60, 0.45))]),
    SegmentSpec(4.5, [FaceSpec("neutral", 124, (0.62, 0.45), (0.40, 0.53))]),
    SegmentSpec(4.0, [FaceSpec("happy", 104, (0.24, 0.50), (0.28, 0.50)),
                      FaceSpec("surprise", 104, (0.76, 0.50), (0.72, 0.50))]),
)


def _cv2():
    import cv2  # noqa: PLC0415

    return cv2


def background(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A plain-ish room: a soft vertical gradient in one random hue, a floor line, mild noise. BGR uint8."""
    cv2 = _cv2()
    top = rng.uniform(150, 215, size=3)
    bottom = top * rng.uniform(0.55, 0.75)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    img = (top[None, None, :] * (1 - t) + bottom[None, None, :] * t) * np.ones((1, width, 1), np.float32)
    floor = int(height * rng.uniform(0.78, 0.86))
    img[floor:] *= 0.8
    img += rng.normal(0.0, 2.5, size=img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.clip(img, 0, 255).astype(np.uint8)


def face_patch(crop: np.ndarray, height: int, rng: np.random.Generator,
               mask_kind: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int, int, int], str]:
    """A masked FER crop with context, `height` pixels tall (the face square itself).

    Returns (patch BGR uint8, alpha float32 0..1, face box (x, y, w, h) inside the patch, mask kind).
    """
    from fer_mask_ros.learning.masking import apply_mask  # noqa: PLC0415

    cv2 = _cv2()
    if crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    crop = cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA) if crop.shape != (48, 48) else crop
    masked = apply_mask(crop, rng, kind=mask_kind)
    kind = mask_kind or "random"
    # context: pad with a blurred replicate of the face, so the head does not end at the crop square
    pad = 14
    padded = cv2.copyMakeBorder(masked, pad, pad, pad, pad, cv2.BORDER_REPLICATE).astype(np.float32)
    blurred = cv2.GaussianBlur(padded, (0, 0), 5.0)
    n = padded.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    inside = np.minimum.reduce([xx - pad + 0.5, yy - pad + 0.5, pad + 47.5 - xx, pad + 47.5 - yy])
    w_sharp = np.clip(0.5 + inside / 4.0, 0.0, 1.0)
    ctx = padded * w_sharp + blurred * (1 - w_sharp)
    scale = height / 48.0
    size = int(round(n * scale))
    big = cv2.resize(ctx, (size, size), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0, 255).astype(np.uint8)
    patch = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    # feathered ellipse: opaque over the face square, fading out in the padding
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(((xx - c) / (size * 0.5)) ** 2 + ((yy - c) / (size * 0.5)) ** 2)
    alpha = np.clip((1.0 - r) / 0.22, 0.0, 1.0).astype(np.float32)
    face_px = int(round(48 * scale))
    off = int(round(pad * scale))
    return patch, alpha, (off, off, face_px, face_px), kind


def _place(spec: FaceSpec, patch: np.ndarray, s: float, width: int, height: int) -> Tuple[int, int]:
    """Top-left corner of the patch at path position s in [0, 1] (eased)."""
    ease = 0.5 - 0.5 * math.cos(math.pi * s)
    cx = (spec.start[0] + (spec.end[0] - spec.start[0]) * ease) * width
    cy = (spec.start[1] + (spec.end[1] - spec.start[1]) * ease) * height
    return int(round(cx - patch.shape[1] / 2.0)), int(round(cy - patch.shape[0] / 2.0))


def _test_frames(bg: np.ndarray, spec: FaceSpec, patch: np.ndarray, alpha: np.ndarray,
                 box: Tuple[int, int, int, int]) -> List[Tuple[np.ndarray, List[int]]]:
    out = []
    for s in (0.0, 0.5, 1.0):
        frame = bg.copy()
        x0, y0 = _place(spec, patch, s, bg.shape[1], bg.shape[0])
        composite(frame, patch, alpha, x0, y0)
        out.append((frame, [x0 + box[0], y0 + box[1], box[2], box[3]]))
    return out


def composite(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Blend patch into frame (in place) with its top-left corner at (x0, y0), clipped to the frame."""
    h, w = patch.shape[:2]
    fh, fw = frame.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(fw, x0 + w), min(fh, y0 + h)
    if xa >= xb or ya >= yb:
        return
    p = patch[ya - y0:yb - y0, xa - x0:xb - x0].astype(np.float32)
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
    region = frame[ya:yb, xa:xb].astype(np.float32)
    frame[ya:yb, xa:xb] = np.clip(region * (1 - a) + p * a, 0, 255).astype(np.uint8)


def candidates(source_dir: Path, emotion: str) -> List[Path]:
    folder = Path(source_dir) / emotion
    files = sorted(folder.glob("PrivateTest_*.jpg")) or sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no FER2013 test images for {emotion!r} in {folder}")
    return files


def _read_grey(path: Path) -> np.ndarray:
    try:
        return read_image(path, "grey")
    except ImageReadError:
        raise FileNotFoundError(f"cannot read image {path}") from None


def build_clip(
    source_dir: Path = DEFAULT_SOURCE,
    out_video: Path = DEFAULT_VIDEO,
    seed: int = 7,
    segments: Sequence[SegmentSpec] = DEFAULT_SEGMENTS,
    fps: float = FPS,
    width: int = WIDTH,
    height: int = HEIGHT,
    quality: int = 80,
    accept: Optional[Callable[[str, List[Tuple[np.ndarray, List[int]]]], bool]] = None,
    max_tries: int = 300,
) -> Dict:
    """Render the clip and its labels JSON (same stem, .json). Returns the labels dict.

    Faces are drawn at random from the FER2013 test images of each emotion (or given by name in the
    segment specs). `accept(emotion, [(frame, box), ...])`, when given, sees the face alone on the
    background at the start, middle and end of its path and can refuse it (e.g. a face the detector
    misses); the next candidate is tried, up to `max_tries`.
    """
    cv2 = _cv2()
    rng = np.random.default_rng(seed)
    out_video = Path(out_video)
    out_video.parent.mkdir(parents=True, exist_ok=True)
    bg = background(rng, width, height)
    rendered = []  # per segment: list of (spec, patch, alpha, face box in patch, source, kind)
    used = set()
    for si, seg in enumerate(segments):
        faces = []
        for fi, spec in enumerate(seg.faces):
            if spec.emotion not in EMOTIONS:
                raise ValueError(f"unknown emotion {spec.emotion!r}")
            if spec.source:
                files = [Path(source_dir) / spec.emotion / spec.source]
            else:
                files = [f for f in candidates(source_dir, spec.emotion) if f.name not in used]
                files = [files[i] for i in rng.permutation(len(files))[:max_tries]]
            for ci, path in enumerate(files):
                # one generator per (segment, face, candidate): the accepted face renders the same here and below
                frng = np.random.default_rng([seed, si, fi, ci])
                patch, alpha, box, kind = face_patch(_read_grey(path), spec.height, frng)
                if accept is None or spec.source or accept(spec.emotion, _test_frames(bg, spec, patch, alpha, box)):
                    break
            else:
                raise RuntimeError(f"no {spec.emotion} face out of {len(files)} candidates passed the check")
            used.add(path.name)
            faces.append((spec, patch, alpha, box, path.name, kind))
        rendered.append(faces)

    from fer_mask_ros.safe_write import commit, discard, opencv_path, temp_path, write_text

    tmp = temp_path(str(out_video))  # renamed when complete
    with opencv_path(tmp) as cv_name:  # OpenCV segfaults on a path that is not UTF-8
        writer = cv2.VideoWriter(cv_name, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        discard(tmp)
        raise RuntimeError(f"OpenCV cannot write MJPG video {out_video}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    labels: Dict = {"video": out_video.name, "fps": fps, "width": width, "height": height, "seed": seed,
                    "source": "FER2013 test split (PrivateTest), synthetic masks (fer_mask_ros.masking)",
                    "box_format": "x, y, w, h in pixels: the 48x48 FER face square, scaled and placed",
                    "segments": []}
    frame_no = 0
    t0 = 0.0
    for seg, faces in zip(segments, rendered):
        n = int(round(seg.duration_s * fps))
        seg_label = {"index": len(labels["segments"]), "start_s": round(t0, 3), "end_s": round(t0 + n / fps, 3),
                     "start_frame": frame_no, "end_frame": frame_no + n, "faces": []}
        for fi, (spec, _patch, _alpha, _box, src, kind) in enumerate(faces):
            seg_label["faces"].append({"slot": fi, "emotion": spec.emotion, "source": src, "mask": kind,
                                       "height": spec.height, "boxes": []})
        for i in range(n):
            frame = bg.copy()
            for fi, (spec, patch, alpha, box, _src, _kind) in enumerate(faces):
                x0, y0 = _place(spec, patch, i / max(1, n - 1), width, height)
                composite(frame, patch, alpha, x0, y0)
                seg_label["faces"][fi]["boxes"].append([x0 + box[0], y0 + box[1], box[2], box[3]])
            writer.write(frame)
            frame_no += 1
        labels["segments"].append(seg_label)
        t0 += n / fps
    writer.release()
    labels["frames"] = frame_no
    labels["duration_s"] = round(frame_no / fps, 3)
    size = os.path.getsize(tmp)
    if size > MAX_BYTES:
        discard(tmp)
        raise RuntimeError(f"{out_video} would be {size} bytes, over the {MAX_BYTES} byte limit; lower the quality")
    commit(tmp, str(out_video))
    labels["bytes"] = size
    write_text(str(out_video.with_suffix(".json")), json.dumps(labels, indent=1) + "\n")
    return labels


def load_labels(path: Optional[Path] = None) -> Dict:
    """The labels JSON of a clip (default: the bundled one)."""
    path = Path(path) if path is not None else DEFAULT_VIDEO.with_suffix(".json")
    return json.loads(path.read_text())


def truth_at(labels: Dict, t: float, loop: bool = True) -> List[Dict]:
    """Faces visible at clip time t (seconds; wraps around when loop): [{"emotion", "box", "segment", "slot"}]."""
    n = int(labels["frames"])
    frame = int(math.floor(t * float(labels["fps"]) + 1e-6))
    frame = frame % n if loop else frame
    for seg in labels["segments"]:
        if seg["start_frame"] <= frame < seg["end_frame"]:
            k = frame - seg["start_frame"]
            return [{"emotion": f["emotion"], "box": f["boxes"][k], "segment": seg["index"], "slot": f["slot"]}
                    for f in seg["faces"]]
    return []


def segment_of(labels: Dict, emotion: str) -> List[Dict]:
    """Segments in which some face shows `emotion`."""
    return [s for s in labels["segments"] if any(f["emotion"] == emotion for f in s["faces"])]


Accept = Callable[[str, List[Tuple[np.ndarray, List[int]]]], bool]


def detector_check(detector, min_iou: float = 0.3, classifier=None) -> Accept:
    """An `accept` for build_clip: the detector finds the face (IoU >= min_iou with its box) in every
    test frame and, with a classifier (fer_mask_ros.perception.classifier.EmotionClassifier), the aligned crop
    is classified as the true emotion in every test frame."""
    from fer_mask_ros.perception.detection import iou  # noqa: PLC0415

    def accept(emotion: str, frames: List[Tuple[np.ndarray, List[int]]]) -> bool:
        for frame, box in frames:
            dets = [d for d in detector.detect(frame) if iou(d.box, box) >= min_iou]
            if not dets:
                return False
            if classifier is not None:
                from fer_mask_ros.perception.alignment import aligned_crop  # noqa: PLC0415

                pred = classifier.predict([aligned_crop(frame, dets[0], size=48)])[0]
                if pred.emotion != emotion:
                    return False
        return True

    return accept
