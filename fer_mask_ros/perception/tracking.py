"""Face ids across frames, and EMA smoothing of per-face class probabilities.

Tracker
    Each track keeps its last box and a velocity (pixels per second, smoothed).  At each
    update every track's box is predicted forward to the new stamp; detections are matched
    to predictions greedily, best first: IoU >= iou_threshold first (cost 1 - IoU), then
    centre matching (centre within one face size and similar size; cost 1 + distance/size).
    The prediction is what keeps ids when two faces cross.  Unmatched detections start new
    tracks.  A track that is not matched is kept (its ``misses`` counting consecutive
    misses) until it has missed more than ``max_missed`` updates or was last seen more than
    ``timeout_s`` seconds ago; then it is dropped and its id never comes back.

    Time going backwards (a looping rosbag, a restarted clip) by more than
    ``BACKWARDS_TOLERANCE_S`` resets the tracker: all tracks dropped, ids continue counting
    (an id is never reused within one Tracker).

ProbabilitySmoother
    state = alpha * new + (1 - alpha) * state, per track id; alpha is the weight of the
    newest frame (alpha=1: no smoothing).  An entry not updated for more than timeout_s
    seconds starts afresh; ``prune(active_ids)`` drops entries of tracks that are gone.  Expiry
    runs once per new stamp, so a frame with n faces costs O(n), not O(n^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from fer_mask_ros.config import node_default
from fer_mask_ros.perception.detection import Detection, iou

__all__ = ["BACKWARDS_TOLERANCE_S", "ProbabilitySmoother", "Track", "Tracker"]

BACKWARDS_TOLERANCE_S = 0.5


@dataclass
class Track:
    track_id: int
    detection: Detection
    hits: int
    misses: int
    last_seen: float
    velocity: Tuple[float, float] = (0.0, 0.0)  # box centre, pixels per second
    first_seen: float = field(default=0.0)

    def predicted_box(self, stamp: float) -> Tuple[float, float, float, float]:
        x, y, w, h = self.detection.box
        dt = max(0.0, stamp - self.last_seen)
        return (x + self.velocity[0] * dt, y + self.velocity[1] * dt, w, h)


def _centre_cost(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> Optional[float]:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    size = max(aw, ah, bw, bh, 1e-6)
    ratio = max(ah, 1e-6) / max(bh, 1e-6)
    if ratio < 0.5 or ratio > 2.0:
        return None
    dist = math.hypot(ax + aw / 2 - bx - bw / 2, ay + ah / 2 - by - bh / 2) / size
    if dist > 1.0:
        return None
    return dist


class Tracker:
    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_missed: int = 10,
        timeout_s: float = 2.0,
        velocity_alpha: float = 0.5,
    ) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.timeout_s = float(timeout_s)
        self.velocity_alpha = float(velocity_alpha)
        self._tracks: List[Track] = []
        self._next_id = 0
        self._last_stamp: Optional[float] = None

    @property
    def tracks(self) -> List[Track]:
        """All live tracks (matched this frame or coasting)."""
        return list(self._tracks)

    def reset(self) -> None:
        """Drop all tracks.  Ids keep counting up, so an old id never names a new face."""
        self._tracks = []
        self._last_stamp = None

    def _expire(self, stamp: float) -> None:
        self._tracks = [
            t for t in self._tracks if t.misses <= self.max_missed and stamp - t.last_seen <= self.timeout_s
        ]

    def update(self, detections: List[Detection], stamp: float) -> List[Track]:
        """Match this frame's detections; returns one Track per detection, in order."""
        stamp = float(stamp)
        if self._last_stamp is not None and stamp < self._last_stamp - BACKWARDS_TOLERANCE_S:
            self.reset()
        self._last_stamp = stamp if self._last_stamp is None else max(stamp, self._last_stamp)
        self._expire(stamp)

        candidates = []  # (cost, track index, detection index)
        for ti, track in enumerate(self._tracks):
            pred = track.predicted_box(stamp)
            for di, det in enumerate(detections):
                overlap = iou(pred, det.box)
                if overlap >= self.iou_threshold:
                    candidates.append((1.0 - overlap, ti, di))
                    continue
                cost = _centre_cost(pred, det.box)
                if cost is not None:
                    candidates.append((1.0 + cost, ti, di))
        candidates.sort(key=lambda c: c[0])
        track_for_det: Dict[int, int] = {}
        used_tracks = set()
        for _, ti, di in candidates:
            if ti in used_tracks or di in track_for_det:
                continue
            used_tracks.add(ti)
            track_for_det[di] = ti

        result: List[Track] = []
        for di, det in enumerate(detections):
            ti = track_for_det.get(di)
            if ti is None:
                track = Track(self._next_id, det, hits=1, misses=0, last_seen=stamp, first_seen=stamp)
                self._next_id += 1
                self._tracks.append(track)
            else:
                track = self._tracks[ti]
                dt = stamp - track.last_seen
                if dt > 1e-6:
                    (ox, oy), (nx, ny) = track.detection.center, det.center
                    vx, vy = (nx - ox) / dt, (ny - oy) / dt
                    a = self.velocity_alpha if track.hits > 1 else 1.0
                    track.velocity = (
                        a * vx + (1 - a) * track.velocity[0],
                        a * vy + (1 - a) * track.velocity[1],
                    )
                track.detection = det
                track.hits += 1
                track.misses = 0
                track.last_seen = stamp
            result.append(track)
        matched = set(track_for_det.values())
        for ti, track in enumerate(self._tracks):
            if ti not in matched and track.last_seen != stamp:
                track.misses += 1
        self._expire(stamp)
        return result


#: The live graph's smoothing (config/emotion_classifier.yaml), also the offline analysis default.
DEFAULT_SMOOTHING_ALPHA = float(node_default("emotion_classifier", "smoothing_alpha"))
DEFAULT_SMOOTHING_TIMEOUT_S = float(node_default("emotion_classifier", "smoothing_timeout_s"))


class ProbabilitySmoother:
    def __init__(self, alpha: float = DEFAULT_SMOOTHING_ALPHA, timeout_s: float = DEFAULT_SMOOTHING_TIMEOUT_S) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.timeout_s = float(timeout_s)
        self._state: Dict[int, Tuple[np.ndarray, float]] = {}
        self._expired_at: Optional[float] = None  # the stamp of the last expiry pass

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._state

    def reset(self) -> None:
        self._state.clear()
        self._expired_at = None

    def forget(self, track_id: int) -> None:
        self._state.pop(track_id, None)

    def prune(self, active_ids: Iterable[int]) -> None:
        """Drop entries whose track is no longer alive."""
        keep = set(active_ids)
        for tid in list(self._state):
            if tid not in keep:
                del self._state[tid]

    def _expire(self, stamp: float) -> None:
        if stamp == self._expired_at:
            return  # same frame: every entry was checked against this stamp already
        self._expired_at = stamp
        for tid, (_, last) in list(self._state.items()):
            if stamp - last > self.timeout_s or stamp < last - BACKWARDS_TOLERANCE_S:
                del self._state[tid]

    def update(self, track_id: int, probs: np.ndarray, stamp: float) -> np.ndarray:
        """Smoothed probabilities for this track (a new array, sums to 1 when the input does)."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.size == 0 or not np.all(np.isfinite(p)):
            raise ValueError("probabilities must be a non-empty finite vector")
        stamp = float(stamp)
        self._expire(stamp)
        prev = self._state.get(track_id)
        if prev is None or prev[0].shape != p.shape:
            state = p.copy()
        else:
            state = self.alpha * p + (1.0 - self.alpha) * prev[0]
        self._state[track_id] = (state, stamp)
        return state.astype(np.float32)
