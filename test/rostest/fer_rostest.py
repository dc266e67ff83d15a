"""Helpers shared by the rostest scripts: clip truth, box matching, message collection, diagnostics."""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Dict, List, Optional

from fer_mask_ros.perception.detection import iou
from fer_mask_ros.simulation import clip

LABELS = clip.load_labels()
SEGMENT_MARGIN_S = 0.6  # ignore messages this close to a segment change (latency, tracker hand-over)


def roi_box(roi) -> List[float]:
    return [roi.x_offset, roi.y_offset, roi.width, roi.height]


def truth_for(t: float, box, min_iou: float = 0.3, labels: Dict = LABELS) -> Optional[Dict]:
    """The clip face at clip time t whose box overlaps `box`, or None; None too near a segment change."""
    fps = float(labels["fps"])
    faces = clip.truth_at(labels, t, loop=True)
    before = clip.truth_at(labels, t - SEGMENT_MARGIN_S, loop=True)
    after = clip.truth_at(labels, t + SEGMENT_MARGIN_S, loop=True)
    if not faces or {f["segment"] for f in before + after} != {faces[0]["segment"]}:
        return None
    best = max(faces, key=lambda f: iou(f["box"], box))
    out = dict(best)
    out["iou"] = iou(best["box"], box)
    out["matched"] = out["iou"] >= min_iou
    out["frame"] = int(t * fps) % int(labels["frames"])
    return out


class Collector:
    """Subscribes to a topic and keeps every message with its arrival time."""

    def __init__(self, topic: str, msg_type):
        import rospy  # noqa: PLC0415

        self.msgs: List = []
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber(topic, msg_type, self._cb, queue_size=200, buff_size=2 ** 24)

    def _cb(self, msg) -> None:
        with self.lock:
            self.msgs.append(msg)

    def snapshot(self) -> List:
        with self.lock:
            return list(self.msgs)


def score_emotions(msgs, clip_time) -> Dict:
    """Compare EmotionStamped messages with the clip labels.

    clip_time(msg) -> seconds into the clip. Returns counts, accuracy over matched faces and, per
    (segment, slot), the majority label."""
    judged = matched = correct = 0
    per_face: Dict = defaultdict(Counter)
    for m in msgs:
        truth = truth_for(clip_time(m), roi_box(m.roi))
        if truth is None:
            continue
        judged += 1
        if not truth["matched"]:
            continue
        matched += 1
        correct += m.emotion == truth["emotion"]
        per_face[(truth["segment"], truth["slot"], truth["emotion"])][m.emotion] += 1
    majority = {k: c.most_common(1)[0][0] for k, c in per_face.items()}
    faces_right = sum(1 for (seg, slot, emotion), got in majority.items() if got == emotion)
    return {"judged": judged, "matched": matched, "correct": correct,
            "accuracy": correct / matched if matched else 0.0,
            "match_rate": matched / judged if judged else 0.0,
            "faces": len(majority), "faces_right": faces_right,
            "majority": {f"{k[0]}/{k[1]} {k[2]}": v for k, v in sorted(majority.items())}}


class Diag:
    """/diagnostics by status name: the latest status of each, and the whole history."""

    def __init__(self, poll_s: float = 0.02):
        import rospy
        from diagnostic_msgs.msg import DiagnosticArray

        self.latest, self.history = {}, []
        self.poll_s = poll_s
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber("/diagnostics", DiagnosticArray, self._cb, queue_size=50)

    def _cb(self, msg):
        with self.lock:
            for s in msg.status:
                entry = (s, {kv.key: kv.value for kv in s.values}, time.monotonic())
                self.latest[s.name] = entry
                self.history.append(entry)

    def wait(self, name, pred, timeout):
        """The latest (status, values, time) of `name` once pred(status, values) holds, else the latest."""
        import rospy

        end = time.monotonic() + timeout
        while time.monotonic() < end and not rospy.is_shutdown():
            with self.lock:
                got = self.latest.get(name)
            if got is not None and pred(got[0], got[1]):
                return got
            time.sleep(self.poll_s)
        with self.lock:
            return self.latest.get(name)
