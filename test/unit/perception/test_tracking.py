from __future__ import annotations

import numpy as np
import pytest

from fer_mask_ros.perception.detection import Detection
from fer_mask_ros.perception.tracking import ProbabilitySmoother, Tracker

DT = 1.0 / 15


def det(x, y, size=60.0, score=0.9):
    return Detection((float(x), float(y), float(size), float(size)), score)


def test_smooth_motion_keeps_one_id():
    tracker = Tracker()
    ids = set()
    for i in range(40):
        tracks = tracker.update([det(20 + 6 * i, 50 + 2 * i)], i * DT)
        assert len(tracks) == 1
        ids.add(tracks[0].track_id)
        assert tracks[0].hits == i + 1 and tracks[0].misses == 0
    assert len(ids) == 1


def test_survives_five_missed_frames():
    tracker = Tracker()
    t = 0.0
    first = None
    for i in range(10):
        t = i * DT
        first = tracker.update([det(50 + 8 * i, 80)], t)[0].track_id
    for k in range(1, 6):  # 5 frames without detections: the face keeps moving
        assert tracker.update([], (9 + k) * DT) == []
        assert tracker.tracks[0].misses == k
    again = tracker.update([det(50 + 8 * 15, 80)], 15 * DT)
    assert again[0].track_id == first
    assert again[0].misses == 0


def test_two_crossing_faces_keep_ids():
    tracker = Tracker()
    id_a = id_b = None
    for i in range(41):
        xa = 20 + 10 * i  # left to right
        xb = 420 - 10 * i  # right to left, crossing at i = 20
        dets = [det(xa, 100), det(xb, 104)]
        if i % 2:
            dets = dets[::-1]  # detection order must not matter
        tracks = tracker.update(dets, i * DT)
        assert len(tracks) == 2
        by_x = {round(t.detection.box[0]): t.track_id for t in tracks}
        if i == 0:
            id_a, id_b = by_x[xa], by_x[xb]
            assert id_a != id_b
        elif xa != xb:
            assert by_x[xa] == id_a and by_x[xb] == id_b, f"ids swapped at frame {i}"


def test_returns_one_track_per_detection_in_order():
    tracker = Tracker()
    tracker.update([det(0, 0), det(200, 0)], 0.0)
    tracks = tracker.update([det(202, 0), det(2, 0), det(400, 400)], DT)
    assert [t.detection.box[0] for t in tracks] == [202, 2, 400]
    assert tracks[0].track_id == 1 and tracks[1].track_id == 0 and tracks[2].track_id == 2


def test_timeout_drops_track():
    tracker = Tracker(timeout_s=2.0)
    a = tracker.update([det(100, 100)], 0.0)[0].track_id
    assert tracker.update([det(100, 100)], 1.5)[0].track_id == a
    b = tracker.update([det(100, 100)], 3.6)[0].track_id
    assert b != a


def test_too_many_misses_drops_track():
    tracker = Tracker(max_missed=10, timeout_s=100.0)
    a = tracker.update([det(100, 100)], 0.0)[0].track_id
    for k in range(1, 12):
        tracker.update([], k * DT)
    assert tracker.tracks == []
    assert tracker.update([det(100, 100)], 12 * DT)[0].track_id != a


def test_time_going_backwards_resets_and_never_reuses_ids():
    tracker = Tracker()
    a = tracker.update([det(100, 100)], 10.0)[0].track_id
    b = tracker.update([det(100, 100)], 0.0)[0].track_id  # bag looped
    assert b != a
    assert len(tracker.tracks) == 1


def test_far_detection_starts_new_track():
    tracker = Tracker()
    a = tracker.update([det(0, 0)], 0.0)[0].track_id
    b = tracker.update([det(300, 300)], DT)[0].track_id
    assert a != b


def test_smoother_ema_and_expiry():
    sm = ProbabilitySmoother(alpha=0.5, timeout_s=2.0)
    np.testing.assert_allclose(sm.update(1, np.array([1.0, 0.0]), 0.0), [1.0, 0.0])
    np.testing.assert_allclose(sm.update(1, np.array([0.0, 1.0]), 0.1), [0.5, 0.5])
    np.testing.assert_allclose(sm.update(1, np.array([0.0, 1.0]), 0.2), [0.25, 0.75])
    np.testing.assert_allclose(sm.update(2, np.array([0.2, 0.8]), 0.2), [0.2, 0.8])  # independent ids
    np.testing.assert_allclose(sm.update(1, np.array([1.0, 0.0]), 5.0), [1.0, 0.0])  # expired: fresh start
    sm.prune([1])
    assert 2 not in sm and 1 in sm
    sm.reset()
    assert len(sm) == 0


def test_smoother_rejects_bad_input():
    with pytest.raises(ValueError):
        ProbabilitySmoother(alpha=0.0)
    sm = ProbabilitySmoother()
    with pytest.raises(ValueError):
        sm.update(0, np.array([np.nan, 1.0]), 0.0)
