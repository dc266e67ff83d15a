"""The per-face classification schedule on synthetic sequences (issue #31)."""
from __future__ import annotations

import pytest

from fer_mask_ros.perception.schedule import ClassifySchedule, parse_rates

FPS = 30.0
FAST, SLOW = "fast", "slow"


def box(x, size=60.0):
    return (float(x), 50.0, float(size), float(size))


def run(schedule, frames, members=(FAST,)):
    """frames: list of [(track_id, box)] per frame at FPS; returns the due map per frame."""
    return [schedule.due(i / FPS, faces, members) for i, faces in enumerate(frames)]


def test_a_new_face_is_classified_at_once_by_every_member():
    sched = ClassifySchedule({FAST: 10.0, SLOW: 2.0})
    frames = [[(1, box(10))]] * 5 + [[(1, box(10)), (2, box(200))]]
    due = run(sched, frames, (FAST, SLOW))
    assert due[0] == {FAST: [0], SLOW: [0]}
    assert 1 in due[5][FAST] and 1 in due[5][SLOW]  # face 2 appears in frame 5: classified in that frame


def test_the_rates_hold():
    sched = ClassifySchedule({FAST: 10.0, SLOW: 2.0})
    n = 300  # 10 s at 30 fps, one still face
    due = run(sched, [[(1, box(10))]] * n, (FAST, SLOW))
    fast = sum(len(d[FAST]) for d in due)
    slow = sum(len(d[SLOW]) for d in due)
    assert fast == pytest.approx(10.0 * n / FPS, abs=2)
    assert slow == pytest.approx(2.0 * n / FPS, abs=2)
    # on a 25 fps stream 10 Hz stays 10 Hz on average (the phase is kept)
    sched = ClassifySchedule({FAST: 10.0})
    count = sum(len(sched.due(i / 25.0, [(1, box(10))], (FAST,))[FAST]) for i in range(250))
    assert count == pytest.approx(100, abs=2)


def test_rate_zero_is_every_frame():
    sched = ClassifySchedule({FAST: 0.0})
    due = run(sched, [[(1, box(10)), (2, box(200))]] * 10)
    assert all(d[FAST] == [0, 1] for d in due)
    assert sched.fresh_share == 1.0


def test_a_shot_cut_or_a_refound_track_or_a_changed_box_forces_a_fresh_classification():
    sched = ClassifySchedule({FAST: 2.0}, refind_s=0.5)
    due = run(sched, [[(1, box(10))]] * 3)
    assert [d[FAST] for d in due] == [[0], [], []]
    # a shot cut: the tracker ends every track, the face comes back with a new id
    assert sched.due(3 / FPS, [(2, box(10))], (FAST,))[FAST] == [0]
    # the track is not seen for 0.6 s, then comes back
    assert sched.due(4 / FPS, [(2, box(10))], (FAST,))[FAST] == []
    assert sched.due(4 / FPS + 0.6, [(2, box(10))], (FAST,))[FAST] == [0]
    # the box doubles in size (the person came closer) or jumps by a face size
    t = 4 / FPS + 0.6
    assert sched.due(t + 1 / FPS, [(2, box(10, size=120))], (FAST,))[FAST] == [0]
    assert sched.due(t + 2 / FPS, [(2, box(10, size=120))], (FAST,))[FAST] == []
    assert sched.due(t + 3 / FPS, [(2, box(200, size=120))], (FAST,))[FAST] == [0]
    # and the pipeline may force a face (its evidence was lost)
    assert sched.due(t + 4 / FPS, [(2, box(200, size=120))], (FAST,), force=[0])[FAST] == [0]


def test_two_faces_never_both_pay_in_one_frame_when_the_schedule_can_spread_them():
    sched = ClassifySchedule({FAST: 10.0})
    faces = [(1, box(10)), (2, box(200))]
    due = run(sched, [faces] * 90)
    assert due[0][FAST] == [0, 1]  # both new: both at once
    assert all(len(d[FAST]) <= 1 for d in due[1:])
    for k in (0, 1):  # and each still gets its 10 Hz
        assert sum(k in d[FAST] for d in due) == pytest.approx(30, abs=2)
    # three faces at 10 Hz on 30 fps: one per frame
    sched = ClassifySchedule({FAST: 10.0})
    due = run(sched, [[(1, box(10)), (2, box(100)), (3, box(200))]] * 60)
    assert all(len(d[FAST]) <= 1 for d in due[1:])
    assert all(len(d[FAST]) == 1 for d in due[3:])  # from the first slot on, one face per frame


def test_time_going_backwards_starts_afresh():
    sched = ClassifySchedule({FAST: 1.0})
    assert sched.due(10.0, [(1, box(10))], (FAST,))[FAST] == [0]
    assert sched.due(10.1, [(1, box(10))], (FAST,))[FAST] == []
    assert sched.due(0.0, [(1, box(10))], (FAST,))[FAST] == [0]  # a looping bag


def test_rates_parse_and_refuse_bad_values():
    assert parse_rates("5", ("a", "b")) == {"a": 5.0, "b": 5.0}
    assert parse_rates("a=10, b=2.5", ("a", "b")) == {"a": 10.0, "b": 2.5}
    for bad in ("x", "a=-1", "a=nan", "c=3", "a=2000"):
        with pytest.raises(ValueError):
            parse_rates(bad, ("a", "b"))
    with pytest.raises(ValueError):
        ClassifySchedule({FAST: -1.0})
