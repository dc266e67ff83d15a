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
    score: float = 1.0  # detector score (not in frames.csv)
    raw_probabilities: Optional[np.ndarray] = None  # this frame alone, unsmoothed (None: not known)
    raw_mask_probability: Optional[float] = None
    fresh: bool = True  # a model classified this face in this frame (else: the track's evidence carried)

    @classmethod
    def from_face(cls, time: float, frame: int, face: Any) -> FaceRecord:
        """The record of one FacePipeline result (FaceEmotion): its smoothed prediction and its raw one."""
        p, raw = face.prediction, getattr(face, "raw", None)
        return cls(time, frame, int(face.track_id), tuple(float(v) for v in face.detection.box), p.emotion,
                   float(p.confidence), np.asarray(p.probabilities, np.float64), bool(p.masked),
                   float(p.mask_probability), float(face.detection.score),
                   None if raw is None else np.asarray(raw.probabilities, np.float64),
                   None if raw is None else float(raw.mask_probability), bool(getattr(face, "fresh", True)))


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
    frames_declared: Optional[int] = None  # what the container says (videos), or the bag's message count
    frames_unreadable: int = 0
    shot_cuts: int = 0
    thumbnails: Dict[int, Tuple[float, float, int, np.ndarray]] = field(
        default_factory=dict)  # face -> (quality, time, frame, face crop BGR): the best view of each face
    video_codec: Optional[str] = None
    processed_frames: List[int] = field(default_factory=list)  # frame numbers, in order

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


#: Annotated-video formats, best first: (extension, fourcc, name, plays in browsers).
VIDEO_FORMATS = ((".mp4", "avc1", "H.264 (mp4)", True), (".webm", "VP80", "VP8 (WebM)", True),
                 (".avi", "MJPG", "Motion JPEG (avi)", False))
_PROBED: Dict[str, bool] = {}


def _format_works(ext: str, fourcc: str) -> bool:
    """Can this OpenCV build write (and read back) `fourcc` in `ext`? Probed once per process."""
    import tempfile

    import cv2

    key = ext + fourcc
    if key not in _PROBED:
        ok = False
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "probe" + ext)
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
            if writer.isOpened():
                for i in range(3):
                    writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
                writer.release()
                cap = cv2.VideoCapture(path)
                ok = bool(cap.isOpened() and cap.read()[0])
                cap.release()
        _PROBED[key] = ok
    return _PROBED[key]


def video_format(path_stem: str) -> Tuple[str, str, str, bool]:
    """The best format this OpenCV writes: (path, fourcc, name, browser-playable)."""
    for ext, fourcc, name, web in VIDEO_FORMATS:
        if _format_works(ext, fourcc):
            return os.path.splitext(path_stem)[0] + ext, fourcc, name, web
    raise AnalysisError(f"this OpenCV build cannot write any of {', '.join(v[2] for v in VIDEO_FORMATS)}")


def _open_writer(path_stem: str, fps: float, size: Tuple[int, int]):
    import cv2

    from fer_mask_ros.safe_write import discard, opencv_path, temp_path

    path, fourcc, name, _ = video_format(path_stem)
    tmp = temp_path(path)  # renamed when complete
    with opencv_path(tmp) as cv_name:  # OpenCV segfaults on a path that is not UTF-8
        writer = cv2.VideoWriter(cv_name, cv2.VideoWriter_fourcc(*fourcc), max(1.0, float(fps)), size)
    if not writer.isOpened():
        discard(tmp)
        raise AnalysisError(f"cannot open a video writer for {path}")
    return writer, path, name, tmp


def analyse(source, pipeline, render_path: Optional[str] = None, play: bool = False,
            progress: bool = True, key_frame_side: int = 480, on_frames=None) -> Analysis:
    """Run every sampled frame of `source` through `pipeline`; collect records (and key frames).
    `on_frames(n)` is called now and then with the number of input frames read since the last call."""
    from tqdm import tqdm

    from fer_mask_ros.analysis.render import draw_faces

    result = Analysis(input=source.path, kind=source.kind, topic=getattr(source, "topic", None),
                      faces_topic=getattr(source, "faces_topic", None))
    writer, player, render_tmp = None, _Player() if play else None, ""
    bar = tqdm(total=source.total, desc=os.path.basename(source.path)[:30], unit="frame", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=False)
    live = getattr(source, "live", {})
    t_start, cpu_start = time.perf_counter(), time.process_time()
    cuts_before = pipeline.shot_cuts.cuts if getattr(pipeline, "shot_cuts", None) is not None else 0
    reported = (getattr(source, "frame_range", None) or (0, 0))[0]  # a time chunk starts later
    try:
        for frame in source:
            if frame.faces is not None:  # frames and face ids from the recorded FaceArray
                results = pipeline.classify(frame.image, frame.faces, frame.stamp, smooth=True)
            else:
                results = pipeline.process(frame.image, frame.stamp, smooth=True)
            recs = [FaceRecord.from_face(frame.time, frame.index, r) for r in results]
            result.records.extend(recs)
            _keep_thumbnails(result, frame, recs)
            result.frames += 1
            result.processed_frames.append(frame.index)
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
                        writer, render_path, result.video_codec, render_tmp = _open_writer(
                            render_path, source.output_fps, (w, h))
                    writer.write(annotated)
                if player and not player.show(annotated, frame.time):
                    result.stopped_early = True
                    break
            bar.update(max(0, source.frames_read - bar.n))
            if on_frames is not None and source.frames_read - reported >= 25:
                on_frames(source.frames_read - reported)
                reported = source.frames_read
            if result.frames % 20 == 0:
                bar.set_postfix(fps=f"{result.frames / max(1e-9, time.perf_counter() - t_start):.1f}", refresh=False)
    finally:
        result.wall_s = time.perf_counter() - t_start
        result.cpu_s = time.process_time() - cpu_start
        if on_frames is not None and source.frames_read > reported:
            on_frames(source.frames_read - reported)
        bar.close()
        if writer is not None:
            from fer_mask_ros.safe_write import commit, discard

            writer.release()
            if sys.exc_info()[0] is None:
                _faststart(render_tmp, render_path, result)
                commit(render_tmp, render_path)
            else:
                discard(render_tmp)
        if player is not None:
            player.close()
    result.frames_read = source.frames_read
    result.duration = float(source.duration)
    result.source_fps = getattr(source, "fps", None)
    result.notes.extend(source.notes)
    result.start_stamp = getattr(source, "start_stamp", None)
    result.frames_declared = getattr(source, "total", None)
    result.frames_unreadable = int(getattr(source, "frames_unreadable", 0))
    if getattr(pipeline, "shot_cuts", None) is not None:
        result.shot_cuts = pipeline.shot_cuts.cuts - cuts_before
    result.render_path = render_path  # type: ignore[attr-defined]
    if result.frames == 0 and not result.stopped_early:
        raise AnalysisError(f"{source.path}: no frame could be processed"
                            + (f" ({'; '.join(source.notes)})" if source.notes else ""))
    return result


def _faststart(tmp: str, path: str, result: Analysis) -> None:
    """An .mp4 render gets its index (moov) first, so that browsers play it while it loads."""
    if not path.lower().endswith(".mp4"):
        return
    from fer_mask_ros.analysis.mp4 import faststart

    try:
        faststart(tmp)
    except (OSError, ValueError) as exc:
        result.notes.append(f"the annotated video is not faststart (its index stays at the end): {exc}")


def _keep_thumbnails(result: Analysis, frame: Frame, recs: List[FaceRecord], side: int = 112) -> None:
    """Per face, keep a crop of its best view: detector score x size (capped at 120 px)."""
    import cv2

    h_img, w_img = frame.image.shape[:2]
    for r in recs:
        x, y, w, h = r.box
        quality = r.score * min(1.0, max(w, h) / 120.0)
        best = result.thumbnails.get(r.face_id)
        if best is not None and best[0] >= quality:
            continue
        m = 0.15 * max(w, h)
        x0, y0 = max(0, int(x - m)), max(0, int(y - m))
        x1, y1 = min(w_img, int(x + w + m)), min(h_img, int(y + h + m))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        crop = frame.image[y0:y1, x0:x1]
        scale = side / float(max(crop.shape[:2]))
        crop = cv2.resize(crop, (max(1, int(round(crop.shape[1] * scale))), max(1, int(round(crop.shape[0] * scale)))),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        result.thumbnails[r.face_id] = (quality, r.time, r.frame, crop)


#: Candidate key frames kept at most (the strongest); the report shows up to 12.
MAX_KEY_FRAMES = 256


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
        if len(result.key_frames) > MAX_KEY_FRAMES:  # a long film with many ids: keep memory bounded
            del result.key_frames[min(result.key_frames, key=lambda k: result.key_frames[k][0])]


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


def face_frame_counts(records: Sequence[FaceRecord]) -> Dict[int, int]:
    counts: Dict[int, int] = {}
    for r in records:
        counts[r.face_id] = counts.get(r.face_id, 0) + 1
    return counts


def summarise(result: Analysis, events: Sequence[Event], model_path: str, params: EventParams,
              sampling: Dict[str, Any], min_track_frames: int = 1) -> Dict[str, Any]:
    """summary.json; faces seen in fewer than `min_track_frames` frames are counted as short tracks only."""
    from fer_mask_ros.perception.tracking import TRACKER_DEFAULTS

    counts = face_frame_counts(result.records)
    faces = sorted(f for f, n in counts.items() if n >= min_track_frames)
    kept = set(faces)
    short = {f: n for f, n in counts.items() if f not in kept}
    summary: Dict[str, Any] = {
        "input": result.input,
        "kind": result.kind,
        "frames": result.frames,
        "frames_read": result.frames_read,
        "frames_declared": result.frames_declared,
        "frames_unreadable": result.frames_unreadable,
        "duration": round(result.duration, 4),
        "source_fps": result.source_fps,
        "fps_processed": round(result.fps_processed, 2),
        "realtime_factor": round(result.duration / result.wall_s, 2) if result.wall_s > 0 else None,
        "wall_s": round(result.wall_s, 3),
        "cpu_s": round(result.cpu_s, 3),
        "fps_per_cpu_second": round(result.frames / result.cpu_s, 2) if result.cpu_s > 0 else None,
        "faces": len(faces),
        "face_ids": faces,
        "frames_per_face": {str(f): counts[f] for f in faces},
        "short_tracks": {"min_track_frames": min_track_frames, "tracks": len(short), "frames": sum(short.values())},
        "shot_cuts": result.shot_cuts,
        "events": len(events),
        "emotion_shares": emotion_shares([r for r in result.records if r.face_id in kept]),
        "model": model_path,
        "tracker": dict(TRACKER_DEFAULTS),
        "event_params": {"enter": params.enter, "exit": params.exit, "min_duration": params.min_duration,
                         "merge_gap": params.merge_gap, "break_gap": params.break_gap},
        "sampling": sampling,
        "stopped_early": result.stopped_early,
        "notes": result.notes,
    }
    if result.video_codec:
        summary["video_codec"] = result.video_codec
    if result.kind == "rosbag":
        summary.update(topic=result.topic, faces_topic=result.faces_topic, start_stamp=result.start_stamp)
        if result.live_compared:
            summary["live_agreement"] = {"faces_compared": result.live_compared,
                                         "same_emotion": round(result.live_same / result.live_compared, 4),
                                         "max_probability_difference": round(result.live_max_diff, 6)}
    return summary


# ----------------------------------------------------------------------------- batch table


