"""Offline analysis of recorded sessions: frames through the pipeline, per-frame records, key frames, summary.

Sources are in analysis/sources.py (videos; rosbags through fer_mask_ros.ros.bag), events in
analysis/events.py, the files written in analysis/report.py.

Every frame goes through the one pipeline (fer_mask_ros.perception.pipeline.FacePipeline) with the stamps the
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

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.analysis.events import Event, EventParams
from fer_mask_ros.analysis.sources import Frame
from fer_mask_ros.errors import AnalysisError
from fer_mask_ros.labels import EMOTIONS

# ----------------------------------------------------------------------------- frames


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

    from fer_mask_ros.analysis.render import draw_faces

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


# ----------------------------------------------------------------------------- batch table


