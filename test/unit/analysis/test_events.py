"""Event maths (fer_mask_ros.analysis.events) on synthetic probability sequences."""
from __future__ import annotations

import numpy as np
import pytest

from fer_mask_ros.analysis.events import EventParams, detect_events, detect_face_events
from fer_mask_ros.labels import EMOTIONS

HAPPY = EMOTIONS.index("happy")
SAD = EMOTIONS.index("sad")


def seq(values, emotion=HAPPY, fps=10.0, t0=0.0):
    """Times and (N, 7) probabilities where `emotion` has `values` and the rest share what is left."""
    v = np.asarray(values, dtype=np.float64)
    probs = np.tile(((1.0 - v) / (len(EMOTIONS) - 1))[:, None], (1, len(EMOTIONS)))
    probs[:, emotion] = v
    return t0 + np.arange(len(v)) / fps, probs


P = EventParams(enter=0.6, exit=0.4, min_duration=0.0, merge_gap=0.0)


def test_hysteresis_enter_and_exit_thresholds():
    # 0.5 never starts an event; 0.6 starts it; it goes on through 0.45 (>= exit) and ends below 0.4
    t, p = seq([0.5, 0.5, 0.6, 0.7, 0.45, 0.41, 0.39, 0.5, 0.55])
    events = detect_face_events(3, t, p, P)
    assert len(events) == 1
    e = events[0]
    assert (e.face_id, e.emotion, e.frames) == (3, "happy", 4)
    assert e.start == pytest.approx(0.2) and e.end == pytest.approx(0.5)
    assert e.peak_confidence == pytest.approx(0.7) and e.peak_time == pytest.approx(0.3)
    assert e.mean_confidence == pytest.approx(np.mean([0.6, 0.7, 0.45, 0.41]))


def test_no_hysteresis_when_exit_equals_enter():
    t, p = seq([0.7, 0.55, 0.7, 0.7])
    assert len(detect_face_events(1, t, p, EventParams(enter=0.6, exit=0.6, min_duration=0, merge_gap=0))) == 2
    assert len(detect_face_events(1, t, p, P)) == 1  # 0.55 >= exit 0.4 keeps it going


def test_min_duration_drops_short_events():
    t, p = seq([0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])  # 0.1 s and 0.5 s events
    params = EventParams(enter=0.6, exit=0.4, min_duration=0.3, merge_gap=0.0)
    events = detect_face_events(1, t, p, params)
    assert [(round(e.start, 3), round(e.end, 3)) for e in events] == [(0.5, 1.0)]
    assert len(detect_face_events(1, t, p, P)) == 2


def test_gap_merging_joins_close_events_before_min_duration():
    # two 0.2 s bursts 0.2 s apart: each too short, merged they last 0.6 s
    t, p = seq([0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9])
    merge = EventParams(enter=0.6, exit=0.4, min_duration=0.5, merge_gap=0.25)
    events = detect_face_events(1, t, p, merge)
    assert len(events) == 1 and events[0].frames == 6
    assert events[0].start == pytest.approx(0.0) and events[0].end == pytest.approx(0.6)
    no_merge = EventParams(enter=0.6, exit=0.4, min_duration=0.5, merge_gap=0.15)
    assert detect_face_events(1, t, p, no_merge) == []


def test_missing_frames_break_an_event():
    t1, p1 = seq([0.9] * 5)
    t2, p2 = seq([0.9] * 5, t0=3.0)  # the face is gone for 2.6 s
    t, p = np.concatenate([t1, t2]), np.concatenate([p1, p2])
    events = detect_face_events(1, t, p, EventParams(min_duration=0.0, merge_gap=0.5))
    assert [(e.start, round(e.end, 3)) for e in events] == [(0.0, 0.4), (3.0, 3.4)]
    # a merge gap longer than the hole joins them again
    assert len(detect_face_events(1, t, p, EventParams(min_duration=0.0, merge_gap=3.0))) == 1


def test_several_emotions_and_faces_sorted():
    t, p_h = seq([0.9] * 6 + [0.05] * 6)
    _, p_s = seq([0.05] * 6 + [0.9] * 6, emotion=SAD)
    p = p_h.copy()
    p[6:] = p_s[6:]
    t2, p2 = seq([0.9] * 8, emotion=SAD, t0=0.25)
    events = detect_events({2: (t2, p2), 1: (t, p, np.arange(100, 112))}, EventParams(min_duration=0.3))
    assert [(e.face_id, e.emotion) for e in events] == [(1, "happy"), (2, "sad"), (1, "sad")]
    assert events[0].peak_frame == 100 and events[2].peak_frame == 106


def test_event_params_validation():
    with pytest.raises(ValueError):
        detect_face_events(1, [0.0], np.full((1, 7), 1 / 7), EventParams(enter=0.4, exit=0.6))
    assert detect_face_events(1, [], np.zeros((0, 7))) == []
