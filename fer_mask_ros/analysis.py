"""Offline analysis of recorded sessions: frame sources, per-frame records, events, summary, outputs.

Every frame goes through the one pipeline (fer_mask_ros.pipeline.FacePipeline) with the stamps the
live graph would use, so the numbers are the live graph's numbers:

* videos: stamp = frame_index / fps; each sampled frame -> ``FacePipeline.process`` (detect + track,
  crop + classify + per-face EMA smoothing).
* rosbags, camera topic only: stamp = the image header stamp (bag time when the stamp is zero);
  each image -> ``FacePipeline.process``.
* rosbags recorded from the graph (record.launch: camera + fer_mask_ros/FaceArray [+ EmotionArray]):
  the FaceArray messages say which images the live face_detector processed and with which face
  ids.  Images are matched to them by header stamp (exactly, as the emotion_classifier node's
  TimeSynchronizer does; ``sync_slop`` > 0 = nearest within the slop) and only those images are
  classified, with ``FacePipeline.classify(image, faces_from_FaceArray, stamp, smooth=True)``:
  what nodes/emotion_classifier does.  When the bag also has the node's EmotionArray topic (one
  message per pair the node processed), only those pairs are used, and the live answers are
  compared with the offline ones (``live_agreement`` in the summary).
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .datasets import walk_files
from .events import Event, EventParams, detect_events
from .labels import EMOTIONS

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg")
BAG_EXTENSIONS = (".bag",)
DEFAULT_TOPIC = "/naoqi_driver/camera/front/image_raw"
IMAGE_TYPES = ("sensor_msgs/Image", "sensor_msgs/CompressedImage")
FACE_ARRAY_TYPE = "fer_mask_ros/FaceArray"
EMOTION_ARRAY_TYPE = "fer_mask_ros/EmotionArray"
FALLBACK_FPS = 30.0

FRAMES_HEADER = (["time", "frame", "face_id", "x", "y", "w", "h", "emotion", "confidence"]
                 + [f"p_{e}" for e in EMOTIONS] + ["masked", "mask_probability"])
EVENTS_HEADER = ["start", "end", "face_id", "emotion", "peak_confidence", "mean_confidence", "frames"]


class AnalysisError(Exception):
    """One input cannot be analysed; the message names the input."""


# ----------------------------------------------------------------------------- frames


@dataclass
class Frame:
    index: int  # position of the frame in the input (video frame number / image message number)
    time: float  # seconds since the input's first frame
    stamp: float  # what the pipeline gets: video time, or the image header stamp
    image: np.ndarray  # BGR uint8
    faces: Optional[list] = None  # TrackedFace list from a recorded FaceArray; None = detect
    key: Optional[int] = None  # header stamp in ns (bags), for matching live results


@dataclass
class FaceRecord:
    time: float
    frame: int
    face_id: int
    box: Tuple[float, float, float, float]
    emotion: str
    confidence: float
    probabilities: np.ndarray
    masked: bool
    mask_probability: float

    def row(self) -> List[str]:
        x, y, w, h = self.box
        return ([f"{self.time:.4f}", str(self.frame), str(self.face_id), f"{x:.1f}", f"{y:.1f}", f"{w:.1f}",
                 f"{h:.1f}", self.emotion, f"{self.confidence:.4f}"]
                + [f"{float(p):.4f}" for p in self.probabilities] + ["1" if self.masked else "0",
                                                                     f"{self.mask_probability:.4f}"])


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


class VideoSource:
    kind = "video"

    def __init__(self, path: str, sampler: Optional[Sampler] = None) -> None:
        import cv2

        self.path = path
        self.sampler = sampler or Sampler()
        if not os.path.isfile(path):
            raise AnalysisError(f"{path}: no such file")
        if os.path.getsize(path) == 0:
            raise AnalysisError(f"{path}: empty file (zero-length video)")
        self._cap = cv2.VideoCapture(path)
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

    @property
    def duration(self) -> float:
        return self.frames_read / self.fps

    @property
    def output_fps(self) -> float:
        fps = self.fps / self.sampler.every
        return min(fps, 1.0 / self.sampler.period) if self.sampler.period else fps

    def __iter__(self) -> Iterator[Frame]:
        cap, i = self._cap, 0
        try:
            while True:
                t = i / self.fps
                if self.sampler.keep(i, t):
                    ok, image = cap.read()
                else:
                    ok, image = cap.grab(), None
                if not ok:
                    break
                self.frames_read = i + 1
                if image is not None:
                    yield Frame(index=i, time=t, stamp=t, image=image)
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise AnalysisError(f"{self.path}: no frames could be decoded (zero-length or unreadable video)")


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.secs) * 1_000_000_000 + int(stamp.nsecs)


def _pick_topic(topics: Dict[str, Any], msg_type: str, wanted: Optional[str], near: str, what: str,
                path: str) -> Optional[str]:
    """'none' -> None; a name -> it (must exist with that type); 'auto' -> the only one / the one nearest `near`."""
    if wanted in (None, "", "none"):
        return None
    if wanted != "auto":
        if wanted not in topics:
            raise AnalysisError(f"{path}: no topic {wanted} in the bag")
        if topics[wanted].msg_type != msg_type:
            raise AnalysisError(f"{path}: {what} topic {wanted} is {topics[wanted].msg_type}, not {msg_type}")
        return wanted
    found = sorted(t for t, info in topics.items() if info.msg_type == msg_type and info.message_count > 0)
    if len(found) <= 1:
        return found[0] if found else None
    ns = near.rsplit("/", 1)[0]
    same = [t for t in found if t.rsplit("/", 1)[0] == ns]
    if len(same) == 1:
        return same[0]
    raise AnalysisError(f"{path}: several {msg_type} topics ({', '.join(found)}); choose one with --{what}-topic")


class BagSource:
    kind = "rosbag"

    def __init__(self, path: str, topic: str = DEFAULT_TOPIC, faces_topic: Optional[str] = "auto",
                 sampler: Optional[Sampler] = None, sync_slop: float = 0.0) -> None:
        self.path = path
        self.topic = topic
        self.sampler = sampler or Sampler()
        self.sync_slop = float(sync_slop)
        self.notes: List[str] = []
        if not os.path.isfile(path):
            raise AnalysisError(f"{path}: no such file")
        try:
            import rosbag
        except ImportError as exc:
            raise AnalysisError(f"{path}: reading rosbags needs the rosbag Python package ({exc})") from None
        try:
            self._bag = rosbag.Bag(path, "r")
        except Exception as exc:  # ROSBagException, ROSBagFormatException, OSError, ...
            raise AnalysisError(f"{path}: not a readable rosbag ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        topics = self._bag.get_type_and_topic_info().topics
        if topic not in topics or topics[topic].message_count == 0:
            images = sorted(t for t, i in topics.items() if i.msg_type in IMAGE_TYPES and i.message_count > 0)
            hint = f"; image topics in the bag: {', '.join(images)}" if images else "; the bag has no image topics"
            self._bag.close()
            raise AnalysisError(f"{path}: no messages on topic {topic}{hint} (choose one with --topic)")
        self.msg_type = topics[topic].msg_type
        if self.msg_type not in IMAGE_TYPES:
            self._bag.close()
            raise AnalysisError(f"{path}: topic {topic} is {self.msg_type}, not sensor_msgs/Image or CompressedImage")
        self.total = int(topics[topic].message_count)
        freq = topics[topic].frequency
        self._rate = float(freq) if freq and math.isfinite(freq) and freq > 0 else None
        try:
            self.faces_topic = _pick_topic(topics, FACE_ARRAY_TYPE, faces_topic, topic, "faces", path)
            self.emotions_topic = (_pick_topic(topics, EMOTION_ARRAY_TYPE, "auto", self.faces_topic, "emotions", path)
                                   if self.faces_topic else None)
        except AnalysisError:
            self._bag.close()
            raise
        self.frames_read = 0
        self.skipped_bad = 0
        self.live: Dict[Tuple[int, int], Tuple[str, np.ndarray]] = {}  # (stamp ns, face id) -> live answer
        self.start_stamp: Optional[float] = None
        self._last_time = 0.0
        if self.faces_topic and self.sampler.active:
            self.notes.append("--every/--max-fps ignored: the recorded FaceArray decides which frames are processed")

    @property
    def duration(self) -> float:
        return self._last_time

    @property
    def output_fps(self) -> float:
        """Frame rate for the annotated video: the topic's recorded rate (10 when unknown)."""
        return self._rate or 10.0

    def _decode(self, msg: Any) -> Optional[np.ndarray]:
        import cv2

        if self.msg_type == "sensor_msgs/CompressedImage":
            data = np.frombuffer(bytes(msg.data), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if image is None:
                raise ValueError("cannot decode the compressed image")
            return image
        from fer_mask_ros_ros.convert import image_to_bgr  # the live nodes' own conversion

        return image_to_bgr(msg)

    def _recorded_faces(self) -> Tuple[Dict[int, Any], List[int]]:
        from fer_mask_ros_ros.convert import tracked_faces_from_msg

        processed = None
        if self.emotions_topic:
            processed = set()
            for _, msg, _ in self._bag.read_messages(topics=[self.emotions_topic]):
                key = _stamp_ns(msg.header.stamp)
                processed.add(key)
                for e in msg.emotions:
                    self.live[(key, int(e.face_id))] = (str(e.emotion), np.asarray(e.probabilities, np.float64))
        faces: Dict[int, Any] = {}
        for _, msg, _ in self._bag.read_messages(topics=[self.faces_topic]):
            key = _stamp_ns(msg.header.stamp)
            if processed is None or key in processed:
                faces[key] = tracked_faces_from_msg(msg)
        return faces, sorted(faces)

    def __iter__(self) -> Iterator[Frame]:
        import bisect

        recorded, keys = self._recorded_faces() if self.faces_topic else (None, [])
        slop_ns = int(round(self.sync_slop * 1e9))
        first = None
        try:
            for i, (_, msg, bag_time) in enumerate(self._bag.read_messages(topics=[self.topic])):
                self.frames_read = i + 1
                stamp_msg = msg.header.stamp if _stamp_ns(msg.header.stamp) else bag_time
                key = _stamp_ns(stamp_msg)
                stamp = float(stamp_msg.secs) + 1e-9 * float(stamp_msg.nsecs)  # as the nodes' stamp_to_sec
                if first is None:
                    first = key
                    self.start_stamp = key * 1e-9
                t = (key - first) * 1e-9
                self._last_time = max(self._last_time, t)
                faces = None
                if recorded is not None:
                    match = key if key in recorded else None
                    if match is None and slop_ns > 0 and keys:
                        j = bisect.bisect_left(keys, key)
                        near = [k for k in keys[max(0, j - 1):j + 1] if abs(k - key) <= slop_ns]
                        match = min(near, key=lambda k: abs(k - key)) if near else None
                    if match is None or match not in recorded:
                        continue
                    faces = recorded.pop(match)
                elif not self.sampler.keep(i, t):
                    continue
                try:
                    image = self._decode(msg)
                except ValueError as exc:
                    self.skipped_bad += 1
                    if self.skipped_bad == 1:
                        self._first_bad = f"message {i}: {exc}"
                    continue
                yield Frame(index=i, time=t, stamp=stamp, image=image, faces=faces, key=key)
        finally:
            self._bag.close()
            if self.skipped_bad:
                self.notes.append(f"skipped {self.skipped_bad} undecodable images (first: {self._first_bad})")


def open_source(path: str, topic: str = DEFAULT_TOPIC, faces_topic: Optional[str] = "auto",
                sampler: Optional[Sampler] = None, sync_slop: float = 0.0):
    if not os.path.exists(path):
        raise AnalysisError(f"{path}: no such file")
    if path.lower().endswith(BAG_EXTENSIONS):
        return BagSource(path, topic, faces_topic, sampler, sync_slop)
    return VideoSource(path, sampler)


def expand_inputs(paths: Sequence[str]) -> Tuple[List[str], bool]:
    """Files and folders -> input files (folders: videos and bags, recursively, sorted); batch flag.

    Missing paths are kept (they are reported per input)."""
    out: List[str] = []
    batch = len(paths) > 1
    for path in paths:
        if os.path.isdir(path):
            batch = True
            out.extend(walk_files(path, VIDEO_EXTENSIONS + BAG_EXTENSIONS))
        else:
            out.append(path)
    seen, unique = set(), []
    for p in out:
        if os.path.abspath(p) not in seen:
            seen.add(os.path.abspath(p))
            unique.append(p)
    return unique, batch or len(unique) > 1


# ----------------------------------------------------------------------------- the pass


@dataclass
class Analysis:
    input: str
    kind: str
    records: List[FaceRecord] = field(default_factory=list)
    frames: int = 0  # frames processed
    frames_read: int = 0
    duration: float = 0.0
    source_fps: Optional[float] = None
    wall_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of this process during the pass (one thread: ~ one core's time)
    stopped_early: bool = False
    notes: List[str] = field(default_factory=list)
    key_frames: Dict[Tuple[int, str], Tuple[float, int, np.ndarray, List[FaceRecord], float]] = field(
        default_factory=dict)  # (face, emotion) -> (confidence, frame, small image, records, scale)
    live_compared: int = 0
    live_same: int = 0
    live_max_diff: float = 0.0
    start_stamp: Optional[float] = None
    faces_topic: Optional[str] = None
    topic: Optional[str] = None

    @property
    def fps_processed(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def series(self) -> Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """{face_id: (times, smoothed probs (N, 7), frame numbers)}."""
        by_face: Dict[int, List[FaceRecord]] = {}
        for r in self.records:
            by_face.setdefault(r.face_id, []).append(r)
        return {fid: (np.array([r.time for r in rs]), np.stack([r.probabilities for r in rs]),
                      np.array([r.frame for r in rs])) for fid, rs in sorted(by_face.items())}


class _Player:
    """--play: show frames with the overlay in real time (input time); q / Esc stops."""

    WINDOW = "fer_mask_ros analyze (q: stop)"

    def __init__(self) -> None:
        self._t0: Optional[Tuple[float, float]] = None
        self.failed = False

    def show(self, image: np.ndarray, t: float) -> bool:
        import cv2

        now = time.monotonic()
        if self._t0 is None:
            self._t0 = (now, t)
        wait_ms = int((self._t0[0] + (t - self._t0[1]) - now) * 1000)
        try:
            cv2.imshow(self.WINDOW, image)
            key = cv2.waitKey(max(1, wait_ms)) & 0xFF
        except cv2.error as exc:
            self.failed = True
            raise AnalysisError(f"--play: cannot show a window ({str(exc).strip().splitlines()[-1]})") from None
        return key not in (ord("q"), 27)

    def close(self) -> None:
        import cv2

        if self._t0 is not None and not self.failed:
            try:
                cv2.destroyWindow(self.WINDOW)
                cv2.waitKey(1)
            except cv2.error:
                pass


def _open_writer(path_stem: str, fps: float, size: Tuple[int, int]):
    import cv2

    for ext, fourcc in ((".mp4", "mp4v"), (".avi", "MJPG")):
        if path_stem.endswith(".avi") and ext == ".mp4":
            continue
        path = os.path.splitext(path_stem)[0] + ext
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), max(1.0, float(fps)), size)
        if writer.isOpened():
            return writer, path
        writer.release()
    raise AnalysisError(f"cannot open a video writer for {path_stem}")


def analyse(source, pipeline, render_path: Optional[str] = None, play: bool = False,
            progress: bool = True, key_frame_side: int = 480) -> Analysis:
    """Run every sampled frame of `source` through `pipeline`; collect records (and key frames)."""
    from tqdm import tqdm

    from .render import draw_faces

    result = Analysis(input=source.path, kind=source.kind, topic=getattr(source, "topic", None),
                      faces_topic=getattr(source, "faces_topic", None))
    writer, player = None, _Player() if play else None
    bar = tqdm(total=source.total, desc=os.path.basename(source.path)[:30], unit="frame", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=False)
    live = getattr(source, "live", {})
    t_start, cpu_start = time.perf_counter(), time.process_time()
    try:
        for frame in source:
            if frame.faces is not None:  # frames and face ids from the recorded FaceArray
                results = pipeline.classify(frame.image, frame.faces, frame.stamp, smooth=True)
            else:
                results = pipeline.process(frame.image, frame.stamp, smooth=True)
            recs = [FaceRecord(frame.time, frame.index, int(r.track_id), tuple(float(v) for v in r.detection.box),
                               r.prediction.emotion, float(r.prediction.confidence),
                               np.asarray(r.prediction.probabilities, np.float64), bool(r.prediction.masked),
                               float(r.prediction.mask_probability)) for r in results]
            result.records.extend(recs)
            result.frames += 1
            if live and frame.key is not None:
                for r in recs:
                    answer = live.get((frame.key, r.face_id))
                    if answer is not None:
                        result.live_compared += 1
                        result.live_same += int(answer[0] == r.emotion)
                        if answer[1].shape == r.probabilities.shape:
                            diff = float(np.max(np.abs(answer[1] - r.probabilities)))
                            result.live_max_diff = max(result.live_max_diff, diff)
            _keep_key_frames(result, frame, recs, key_frame_side)
            if render_path or player:
                annotated = draw_faces(frame.image, recs, time_s=frame.time)
                if render_path:
                    if writer is None:
                        h, w = annotated.shape[:2]
                        writer, render_path = _open_writer(render_path, source.output_fps, (w, h))
                    writer.write(annotated)
                if player and not player.show(annotated, frame.time):
                    result.stopped_early = True
                    break
            bar.update(max(0, source.frames_read - bar.n))
            if result.frames % 20 == 0:
                bar.set_postfix(fps=f"{result.frames / max(1e-9, time.perf_counter() - t_start):.1f}", refresh=False)
    finally:
        result.wall_s = time.perf_counter() - t_start
        result.cpu_s = time.process_time() - cpu_start
        bar.close()
        if writer is not None:
            writer.release()
        if player is not None:
            player.close()
    result.frames_read = source.frames_read
    result.duration = float(source.duration)
    result.source_fps = getattr(source, "fps", None)
    result.notes.extend(source.notes)
    result.start_stamp = getattr(source, "start_stamp", None)
    result.render_path = render_path  # type: ignore[attr-defined]
    if result.frames == 0 and not result.stopped_early:
        raise AnalysisError(f"{source.path}: no frame could be processed"
                            + (f" ({'; '.join(source.notes)})" if source.notes else ""))
    return result


def _keep_key_frames(result: Analysis, frame: Frame, recs: List[FaceRecord], side: int) -> None:
    """Per (face, top emotion), keep a small copy of the frame where its confidence was highest."""
    small, scale = None, 1.0
    for r in recs:
        best = result.key_frames.get((r.face_id, r.emotion))
        if best is not None and best[0] >= r.confidence:
            continue
        if small is None:
            import cv2

            h, w = frame.image.shape[:2]
            scale = min(1.0, side / float(max(h, w)))
            small = frame.image if scale >= 1.0 else cv2.resize(frame.image, (int(round(w * scale)),
                                                                              int(round(h * scale))),
                                                               interpolation=cv2.INTER_AREA)
            small = small.copy()
        result.key_frames[(r.face_id, r.emotion)] = (r.confidence, frame.index, small, recs, scale)


# ----------------------------------------------------------------------------- outputs


def emotion_shares(records: Sequence[FaceRecord]) -> Dict[str, Dict[str, float]]:
    counts: Dict[int, Dict[str, int]] = {}
    for r in records:
        c = counts.setdefault(r.face_id, {e: 0 for e in EMOTIONS})
        c[r.emotion] = c.get(r.emotion, 0) + 1
    out = {}
    for fid in sorted(counts):
        n = sum(counts[fid].values())
        out[str(fid)] = {e: round(counts[fid][e] / n, 4) for e in EMOTIONS}
    return out


def summarise(result: Analysis, events: Sequence[Event], model_path: str, params: EventParams,
              sampling: Dict[str, Any]) -> Dict[str, Any]:
    faces = sorted({r.face_id for r in result.records})
    frames_per_face = {str(f): 0 for f in faces}
    for r in result.records:
        frames_per_face[str(r.face_id)] += 1
    summary: Dict[str, Any] = {
        "input": result.input,
        "kind": result.kind,
        "frames": result.frames,
        "frames_read": result.frames_read,
        "duration": round(result.duration, 4),
        "source_fps": result.source_fps,
        "fps_processed": round(result.fps_processed, 2),
        "realtime_factor": round(result.duration / result.wall_s, 2) if result.wall_s > 0 else None,
        "wall_s": round(result.wall_s, 3),
        "cpu_s": round(result.cpu_s, 3),
        "fps_per_cpu_second": round(result.frames / result.cpu_s, 2) if result.cpu_s > 0 else None,
        "faces": len(faces),
        "face_ids": faces,
        "frames_per_face": frames_per_face,
        "events": len(events),
        "emotion_shares": emotion_shares(result.records),
        "model": model_path,
        "event_params": {"enter": params.enter, "exit": params.exit, "min_duration": params.min_duration,
                         "merge_gap": params.merge_gap, "break_gap": params.break_gap},
        "sampling": sampling,
        "stopped_early": result.stopped_early,
        "notes": result.notes,
    }
    if result.kind == "rosbag":
        summary.update(topic=result.topic, faces_topic=result.faces_topic, start_stamp=result.start_stamp)
        if result.live_compared:
            summary["live_agreement"] = {"faces_compared": result.live_compared,
                                         "same_emotion": round(result.live_same / result.live_compared, 4),
                                         "max_probability_difference": round(result.live_max_diff, 6)}
    return summary


def write_frames_csv(path: str, records: Sequence[FaceRecord]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FRAMES_HEADER)
        writer.writerows(r.row() for r in records)


def write_events_csv(path: str, events: Sequence[Event]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EVENTS_HEADER)
        for e in events:
            writer.writerow([f"{e.start:.4f}", f"{e.end:.4f}", e.face_id, e.emotion, f"{e.peak_confidence:.4f}",
                             f"{e.mean_confidence:.4f}", e.frames])


def key_frame_images(result: Analysis, events: Sequence[Event], limit: int = 6) -> List[Tuple[str, bytes]]:
    """Annotated JPEGs of the peak frames of the strongest events (one per face and emotion)."""
    from .render import draw_faces, encode_jpeg

    out, seen = [], set()
    for ev in sorted(events, key=lambda e: -e.peak_confidence):
        pair = (ev.face_id, ev.emotion)
        if pair in seen or pair not in result.key_frames:
            continue
        seen.add(pair)
        conf, index, small, recs, scale = result.key_frames[pair]
        scaled = [FaceRecord(r.time, r.frame, r.face_id, tuple(v * scale for v in r.box), r.emotion, r.confidence,
                             r.probabilities, r.masked, r.mask_probability) for r in recs]
        t = recs[0].time if recs else 0.0
        caption = f"face {ev.face_id} {ev.emotion} {conf:.2f} at {t:.2f} s (frame {index})"
        out.append((caption, encode_jpeg(draw_faces(small, scaled, time_s=t))))
        if len(out) >= limit:
            break
    return out


def write_outputs(out_dir: str, result: Analysis, model_path: str, params: EventParams,
                  sampling: Dict[str, Any]) -> Dict[str, Any]:
    """frames.csv, events.csv, timeline.png, summary.json, report.html into out_dir; returns the summary."""
    from .render import report_html, timeline_png

    os.makedirs(out_dir, exist_ok=True)
    series = result.series()
    events = detect_events(series, params)
    summary = summarise(result, events, model_path, params, sampling)
    write_frames_csv(os.path.join(out_dir, "frames.csv"), result.records)
    write_events_csv(os.path.join(out_dir, "events.csv"), events)
    png = timeline_png({f: (s[0], s[1]) for f, s in series.items()}, events, duration=result.duration or None,
                       title=os.path.basename(result.input))
    with open(os.path.join(out_dir, "timeline.png"), "wb") as handle:
        handle.write(png)
    outputs = ["frames.csv", "events.csv", "timeline.png", "summary.json", "report.html"]
    render_path = getattr(result, "render_path", None)
    if render_path:
        outputs.append(os.path.basename(render_path))
    summary["outputs"] = outputs
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    page = report_html(summary, events, png, key_frame_images(result, events))
    with open(os.path.join(out_dir, "report.html"), "w", encoding="utf-8") as handle:
        handle.write(page)
    return summary


# ----------------------------------------------------------------------------- batch table

BATCH_HEADER = (["input", "status", "output", "frames", "duration", "fps_processed", "faces", "events",
                 "dominant_emotion"] + [f"share_{e}" for e in EMOTIONS] + ["error"])


def batch_row(input_path: str, out_dir: str, summary: Optional[Dict[str, Any]], error: str = "") -> Dict[str, str]:
    row = {k: "" for k in BATCH_HEADER}
    row.update(input=input_path, output=out_dir, status="ok" if summary is not None else "failed", error=error)
    if summary is not None:
        totals = {e: 0.0 for e in EMOTIONS}
        for fid, share in summary["emotion_shares"].items():
            n = summary["frames_per_face"].get(fid, 0)
            for e in EMOTIONS:
                totals[e] += share[e] * n
        n_all = sum(totals.values())
        row.update(frames=str(summary["frames"]), duration=f"{summary['duration']:.2f}",
                   fps_processed=f"{summary['fps_processed']:.1f}", faces=str(summary["faces"]),
                   events=str(summary["events"]))
        if n_all > 0:
            row["dominant_emotion"] = max(EMOTIONS, key=lambda e: totals[e])
            for e in EMOTIONS:
                row[f"share_{e}"] = f"{totals[e] / n_all:.3f}"
    return row


def write_batch_table(path: str, rows: Sequence[Dict[str, str]]) -> str:
    """DIR/summary.csv; returns the same table as markdown (fewer columns)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    cols = ["input", "status", "frames", "duration", "fps_processed", "faces", "events", "dominant_emotion"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = [r[c] if c != "status" or not r["error"] else f"failed: {r['error']}" for c in cols]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
