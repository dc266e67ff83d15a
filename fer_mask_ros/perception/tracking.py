"""Face ids across frames (per-face evidence over time: perception/evidence.py).

Tracker
    Each track keeps its last box and a velocity (pixels per second, smoothed).  At each
    update every track's box is predicted forward to the new stamp; detections are matched
    to predictions greedily, best first: IoU >= iou_threshold first (cost 1 - IoU), then
    centre matching (centre within one face size and similar size; cost 1 + distance/size).
    The prediction is what keeps ids when two faces cross.  Motion gate: a detection whose centre
    is further from a track's predicted centre than ``MOTION_SLACK + max_speed * dt`` face sizes
    (dt = seconds since the track was last seen; at most one face size) never continues it, so
    a person who appears beside the place where another just left (the demo clip at 18.0 s: one
    face size away, 0.1 s later) gets a new id; ``max_speed`` 0 turns the gate off.  Unmatched detections start new
    tracks.  A track that is not matched is kept (its ``misses`` counting consecutive
    misses) until it has missed more than ``max_missed`` updates or was last seen more than
    ``timeout_s`` seconds ago; then it is dropped and its id never comes back.

    Ids start at 1 (0 means "not tracked" in Face.msg / EmotionStamped.msg).

    Appearance: when `update` gets the image, each detection gets a cheap signature (a colour
    histogram of the face box, `appearance_signature`) and each track keeps a running average of
    its own.  A detection whose signature is further than ``appearance_threshold`` (Hellinger
    distance, 0..1) from a track's is never matched to it, so an id does not pass to another
    person who steps into the same place.

    Time going backwards (a looping rosbag, a restarted clip) by more than
    ``BACKWARDS_TOLERANCE_S`` resets the tracker, and `split()` (a shot cut, see
    `ShotCutDetector`) ends every track: all tracks dropped, ids continue counting (an id is
    never reused within one Tracker).

ShotCutDetector
    A hard cut between two frames: both the colour histogram of a 64x48 copy of the frame
    changes by more than ``cut_threshold`` (total variation, 0..1) and the mean absolute pixel
    difference exceeds ``cut_pixel_threshold`` (0..1).  Camera motion changes pixels but not
    the histogram; a light change shifts the histogram but not much the pixels.

All defaults are config/face_detector.yaml's ``tracker`` group: the live face_detector node and
offline analysis use the same tracker with the same settings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from fer_mask_ros.config import node_default
from fer_mask_ros.perception.detection import Detection, iou

__all__ = ["BACKWARDS_TOLERANCE_S", "ShotCutDetector", "Track", "Tracker",
           "TRACKER_DEFAULTS", "appearance_signature"]

BACKWARDS_TOLERANCE_S = 0.5
#: Face sizes a detection may be off its track's predicted centre whatever the time step (detector jitter).
MOTION_SLACK = 0.25

#: The tracker settings of config/face_detector.yaml (group ``tracker``): the one source of these defaults.
TRACKER_DEFAULTS: Dict[str, float] = {k: float(v) for k, v in node_default("face_detector", "tracker").items()}
_SIG_H, _SIG_S, _SIG_V = 8, 3, 8


def appearance_signature(image_bgr: np.ndarray, box: Tuple[float, float, float, float]) -> Optional[np.ndarray]:
    """A cheap appearance signature of the face in `box`: for the upper and the lower half of the box
    (eyes and hair; mouth or mask), hue x saturation (8 x 3) and value (8) histograms, each normalised
    (the whole sums to 1); None when the box is outside the image."""
    import cv2

    if (not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3
            or image_bgr.dtype != np.uint8):
        return None
    h_img, w_img = image_bgr.shape[:2]
    x, y, w, h = box
    x0, y0 = max(0, int(x)), max(0, int(y))
    x1, y1 = min(w_img, int(math.ceil(x + w))), min(h_img, int(math.ceil(y + h)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = cv2.resize(image_bgr[y0:y1, x0:x1], (24, 24), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).astype(np.int32)
    parts = []
    for half in (hsv[:12].reshape(-1, 3), hsv[12:].reshape(-1, 3)):
        hs = np.bincount((half[:, 0] * _SIG_H // 180) * _SIG_S + half[:, 1] * _SIG_S // 256,
                         minlength=_SIG_H * _SIG_S).astype(np.float64)
        v = np.bincount(half[:, 2] * _SIG_V // 256, minlength=_SIG_V).astype(np.float64)
        parts += [hs / hs.sum(), v / v.sum()]
    return np.concatenate(parts) * 0.25


def appearance_distance(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """Hellinger distance of two signatures, 0 (same) .. 1; 0 when either is unknown."""
    if a is None or b is None:
        return 0.0
    return float(math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a * b))))))


class ShotCutDetector:
    """Says whether a frame starts a new shot (see the module docstring)."""

    def __init__(self, threshold: float = TRACKER_DEFAULTS["cut_threshold"],
                 pixel_threshold: float = TRACKER_DEFAULTS["cut_pixel_threshold"]) -> None:
        self.threshold = float(threshold)
        self.pixel_threshold = float(pixel_threshold)
        self._prev: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self.cuts = 0

    def reset(self) -> None:
        self._prev = None

    def update(self, image_bgr: np.ndarray) -> bool:
        import cv2

        if (self.threshold <= 0 or not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3
                or image_bgr.shape[2] != 3 or image_bgr.size == 0 or image_bgr.dtype != np.uint8):
            return False
        small = cv2.resize(image_bgr, (64, 48), interpolation=cv2.INTER_AREA)
        q = small.reshape(-1, 3).astype(np.int32) // 64  # 4 levels per channel -> 64 bins
        hist = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64) / float(len(q))
        prev, self._prev = self._prev, (small, hist)
        if prev is None:
            return False
        hist_change = 0.5 * float(np.abs(hist - prev[1]).sum())
        pixel_change = float(np.mean(cv2.absdiff(small, prev[0]))) / 255.0
        cut = hist_change > self.threshold and pixel_change > self.pixel_threshold
        self.cuts += int(cut)
        return cut


@dataclass
class Track:
    track_id: int
    detection: Detection
    hits: int
    misses: int
    last_seen: float
    velocity: Tuple[float, float] = (0.0, 0.0)  # box centre, pixels per second
    first_seen: float = field(default=0.0)
    signature: Optional[np.ndarray] = None  # running average of appearance_signature

    def predicted_box(self, stamp: float) -> Tuple[float, float, float, float]:
        x, y, w, h = self.detection.box
        dt = max(0.0, stamp - self.last_seen)
        return (x + self.velocity[0] * dt, y + self.velocity[1] * dt, w, h)


def _centre_distance(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> float:
    """Distance of the two boxes' centres in face sizes (the larger side of either box)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return math.hypot(ax + aw / 2 - bx - bw / 2, ay + ah / 2 - by - bh / 2) / max(aw, ah, bw, bh, 1e-6)


def _centre_cost(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> Optional[float]:
    ratio = max(a[3], 1e-6) / max(b[3], 1e-6)
    if ratio < 0.5 or ratio > 2.0:
        return None
    dist = _centre_distance(a, b)
    if dist > 1.0:
        return None
    return dist


class Tracker:
    def __init__(
        self,
        iou_threshold: float = TRACKER_DEFAULTS["iou_threshold"],
        max_missed: int = int(TRACKER_DEFAULTS["max_missed"]),
        timeout_s: float = TRACKER_DEFAULTS["timeout_s"],
        velocity_alpha: float = TRACKER_DEFAULTS["velocity_alpha"],
        appearance_threshold: float = TRACKER_DEFAULTS["appearance_threshold"],
        appearance_alpha: float = TRACKER_DEFAULTS["appearance_alpha"],
        max_speed: float = TRACKER_DEFAULTS["max_speed"],
    ) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.timeout_s = float(timeout_s)
        self.velocity_alpha = float(velocity_alpha)
        self.appearance_threshold = float(appearance_threshold)  # 0 or >= 1: appearance not used
        self.appearance_alpha = float(appearance_alpha)
        if not max_speed >= 0:
            raise ValueError(f"max_speed must be >= 0 face sizes per second, got {max_speed}")
        self.max_speed = float(max_speed)  # 0: no motion gate (one face size)
        self._tracks: List[Track] = []
        self._next_id = 1  # 0 = not tracked (Face.msg)
        self._last_stamp: Optional[float] = None
        self.splits = 0  # tracks ended by split() (shot cuts)
        self.appearance_rejects = 0  # matches refused because the face looked different
        self.motion_rejects = 0  # matches refused because the face was too far from the track's predicted place

    @classmethod
    def from_settings(cls, settings: Optional[Dict[str, float]] = None) -> Tracker:
        """A tracker from a dict like config/face_detector.yaml's ``tracker`` group (missing keys: defaults)."""
        unknown = set(settings or {}) - set(TRACKER_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown tracker settings: {', '.join(sorted(unknown))}")
        names = ("iou_threshold", "max_missed", "timeout_s", "velocity_alpha", "appearance_threshold",
                 "appearance_alpha", "max_speed")
        merged = {**TRACKER_DEFAULTS, **(settings or {})}
        return cls(**{k: merged[k] for k in names})

    @property
    def tracks(self) -> List[Track]:
        """All live tracks (matched this frame or coasting)."""
        return list(self._tracks)

    def reset(self) -> None:
        """Drop all tracks.  Ids keep counting up, so an old id never names a new face."""
        self._tracks = []
        self._last_stamp = None

    def split(self) -> None:
        """End every track now (a shot cut): the next detections get new ids."""
        self.splits += len(self._tracks)
        self._tracks = []

    def _expire(self, stamp: float) -> None:
        self._tracks = [
            t for t in self._tracks if t.misses <= self.max_missed and stamp - t.last_seen <= self.timeout_s
        ]

    def update(self, detections: List[Detection], stamp: float, image: Optional[np.ndarray] = None) -> List[Track]:
        """Match this frame's detections; returns one Track per detection, in order.  With `image`
        (BGR), appearance signatures keep an id from passing to a different-looking face."""
        stamp = float(stamp)
        use_look = image is not None and 0.0 < self.appearance_threshold < 1.0
        sigs = [appearance_signature(image, d.box) if use_look else None for d in detections]
        if self._last_stamp is not None and stamp < self._last_stamp - BACKWARDS_TOLERANCE_S:
            self.reset()
        self._last_stamp = stamp if self._last_stamp is None else max(stamp, self._last_stamp)
        self._expire(stamp)

        candidates = []  # (cost, track index, detection index)
        for ti, track in enumerate(self._tracks):
            pred = track.predicted_box(stamp)
            reach = min(1.0, MOTION_SLACK + self.max_speed * max(0.0, stamp - track.last_seen))
            for di, det in enumerate(detections):
                if self.max_speed > 0 and _centre_distance(pred, det.box) > reach:
                    self.motion_rejects += int(_centre_cost(pred, det.box) is not None)
                    continue
                if use_look and appearance_distance(track.signature, sigs[di]) > self.appearance_threshold:
                    if iou(pred, det.box) > 0 or _centre_cost(pred, det.box) is not None:
                        self.appearance_rejects += 1
                    continue
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
                track = Track(self._next_id, det, hits=1, misses=0, last_seen=stamp, first_seen=stamp,
                              signature=sigs[di])
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
                if sigs[di] is not None:
                    a = self.appearance_alpha
                    track.signature = sigs[di] if track.signature is None else a * sigs[di] + (1 - a) * track.signature
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

