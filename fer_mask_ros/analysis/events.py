"""Emotion events from per-face probability sequences: hysteresis, gap merging, minimum duration.

Input: for one face, the frame times (seconds, increasing) and the probabilities the pipeline
published for those frames (the face's evidence: every model's calibrated answers over time,
perception/evidence.py; the same numbers the live graph puts on its `emotions` topic), shape (N, 7) in
EMOTIONS order.

The default thresholds follow that calibrated evidence. ``enter`` 0.30 is a row of the risk-coverage table
of a calibrated model on real photos of a source it never trained on (phase 8 on the expressions-lfw
hold-out, class-balanced, re-run 2026-12-06): one photo at >= 0.30 is right 51.5 % (unmasked, 88 % of faces)
/ 55.9 % (masked, 64 %) of the time, 3.6 - 3.9x chance; an event asks more than one photo: the evidence (many
frames) must reach it and stay above ``exit`` 0.20 for ``min_duration`` 1 s. The evidence of a face that
shows one expression for seconds sits around 0.3 - 0.65 (the demo clip); the former fixed 0.6 gave events
to 2 of its 6 people, 0.30 to 5 (each the person's labelled emotion, none wrong).

For each emotion separately:

1. hysteresis: an event starts at the first frame whose probability is >= ``enter`` and goes on
   while the probability stays >= ``exit`` (``exit <= enter``); it ends at the last frame still
   >= ``exit``.  A hole in the face's frames longer than ``break_gap`` (the face was not seen, or the
   input was not sampled) also ends it.
2. gap merging: two events of the same face and emotion separated by at most ``merge_gap`` seconds
   (end of the first to start of the second) become one.
3. minimum duration: events shorter than ``min_duration`` seconds (end - start) are dropped.  Merging
   happens first, so fragments of one expression interrupted by a blink survive together.

``start``/``end`` are times of the first and last frame of the event, so a one-frame event lasts 0 s.
``peak_confidence`` / ``mean_confidence`` are the max / mean of that emotion's probability over the
event's frames; ``frames`` counts them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS

__all__ = ["DEFAULTS", "Event", "EventParams", "detect_events", "detect_face_events"]


@dataclass(frozen=True)
class EventParams:
    enter: float = 0.30  # probability (the face's evidence) that starts an event
    exit: float = 0.20  # an event goes on while the probability stays at or above this
    min_duration: float = 1.0  # seconds; shorter events are dropped (after merging)
    merge_gap: float = 0.5  # seconds; events of one face and emotion closer than this are merged
    break_gap: Optional[float] = None  # seconds without frames that end an event; None = auto

    def validate(self) -> None:
        if not 0.0 <= self.exit <= self.enter <= 1.0:
            raise ValueError(f"need 0 <= exit <= enter <= 1, got enter={self.enter} exit={self.exit}")
        if self.min_duration < 0 or self.merge_gap < 0:
            raise ValueError("min_duration and merge_gap must be >= 0")
        if self.break_gap is not None and self.break_gap <= 0:
            raise ValueError("break_gap must be > 0")


DEFAULTS = EventParams()


@dataclass
class Event:
    face_id: int
    emotion: str
    start: float
    end: float
    peak_confidence: float
    mean_confidence: float
    frames: int
    peak_time: float = 0.0
    peak_frame: int = -1  # frame number (of the input) of the peak, -1 when unknown

    @property
    def duration(self) -> float:
        return self.end - self.start


def auto_break_gap(times: np.ndarray, params: EventParams) -> float:
    """Hole length that ends an event: the given break_gap, else max(merge_gap, 1.5 x median frame spacing)."""
    if params.break_gap is not None:
        return float(params.break_gap)
    spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return max(float(params.merge_gap), 1.5 * spacing, 1e-9)


def _hysteresis(times: np.ndarray, p: np.ndarray, params: EventParams, break_gap: float) -> List[List[int]]:
    """Runs of frame indices (into times) during which the event is on."""
    runs: List[List[int]] = []
    current: Optional[List[int]] = None
    last_t = None
    for i in range(len(times)):
        t = float(times[i])
        if current is not None and last_t is not None and t - last_t > break_gap:
            runs.append(current)
            current = None
        if current is None:
            if p[i] >= params.enter:
                current = [i]
        elif p[i] >= params.exit:
            current.append(i)
        else:
            runs.append(current)
            current = None
        last_t = t
    if current is not None:
        runs.append(current)
    return runs


def detect_face_events(face_id: int, times: Sequence[float], probs: np.ndarray,
                       params: EventParams = DEFAULTS, frame_numbers: Optional[Sequence[int]] = None,
                       labels: Sequence[str] = EMOTIONS) -> List[Event]:
    """Events of one face; `times` increasing, `probs` (N, len(labels)). Sorted by start, then emotion."""
    params.validate()
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    pr = np.asarray(probs, dtype=np.float64).reshape(len(t), -1) if len(t) else np.zeros((0, len(labels)))
    if len(t) == 0:
        return []
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, pr = t[order], pr[order]
        frame_numbers = None if frame_numbers is None else np.asarray(frame_numbers)[order]
    fn = np.arange(len(t)) if frame_numbers is None else np.asarray(frame_numbers).reshape(-1)
    gap = auto_break_gap(t, params)
    events: List[Event] = []
    for k, emotion in enumerate(labels):
        p = pr[:, k]
        runs = _hysteresis(t, p, params, gap)
        merged: List[List[int]] = []
        for run in runs:
            if merged and t[run[0]] - t[merged[-1][-1]] <= params.merge_gap:
                merged[-1].extend(run)
            else:
                merged.append(list(run))
        for run in merged:
            idx = np.asarray(run)
            start, end = float(t[idx[0]]), float(t[idx[-1]])
            if end - start < params.min_duration - 1e-9:
                continue
            vals = p[idx]
            j = int(idx[int(np.argmax(vals))])
            events.append(Event(face_id=int(face_id), emotion=emotion, start=start, end=end,
                                peak_confidence=float(vals.max()), mean_confidence=float(vals.mean()),
                                frames=int(len(idx)), peak_time=float(t[j]), peak_frame=int(fn[j])))
    events.sort(key=lambda e: (e.start, labels.index(e.emotion)))
    return events


def detect_events(per_face: Dict[int, tuple], params: EventParams = DEFAULTS) -> List[Event]:
    """{face_id: (times, probs[, frame_numbers])} -> all events, sorted by start, face, emotion."""
    out: List[Event] = []
    for face_id in sorted(per_face):
        entry = per_face[face_id]
        times, probs = entry[0], entry[1]
        frames = entry[2] if len(entry) > 2 else None
        out.extend(detect_face_events(face_id, times, probs, params, frames))
    out.sort(key=lambda e: (e.start, e.face_id, EMOTIONS.index(e.emotion) if e.emotion in EMOTIONS else 0))
    return out
