from __future__ import annotations

import numpy as np
import pytest

from fer_mask_ros.perception.detection import Detection
from fer_mask_ros.perception.tracking import TRACKER_DEFAULTS, ShotCutDetector, Tracker

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
    assert tracks[0].track_id == 2 and tracks[1].track_id == 1 and tracks[2].track_id == 3


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


def test_ids_start_at_one():
    """0 means "not tracked" in Face.msg / EmotionStamped.msg."""
    tracker = Tracker()
    assert [t.track_id for t in tracker.update([det(0, 0), det(200, 0)], 0.0)] == [1, 2]


def test_split_ends_every_track_and_ids_go_on():
    tracker = Tracker()
    a = tracker.update([det(100, 100)], 0.0)[0].track_id
    tracker.split()
    b = tracker.update([det(100, 100)], DT)[0].track_id
    assert b == a + 1 and len(tracker.tracks) == 1


def _face_image(colour, seed=0):
    """A textured patch of one colour (a face-sized box at 100..160) on grey."""
    image = np.full((240, 320, 3), 40, np.uint8)
    texture = np.random.default_rng(seed).integers(-40, 40, (60, 60, 1))
    image[100:160, 100:160] = np.clip(np.array(colour)[None, None, :] + texture, 0, 255)
    return image


def test_a_different_looking_face_in_the_same_place_gets_a_new_id():
    tracker = Tracker()
    red, blue = _face_image((0, 0, 220)), _face_image((220, 60, 0))
    ids = [tracker.update([det(100, 100)], i * DT, red)[0].track_id for i in range(5)]
    assert len(set(ids)) == 1
    other = tracker.update([det(102, 100)], 5 * DT, blue)[0].track_id
    assert other != ids[0] and tracker.appearance_rejects >= 1
    # the same look with a little noise keeps its id
    noisy = np.clip(blue.astype(int) + np.random.default_rng(1).integers(-10, 10, blue.shape), 0, 255).astype(np.uint8)
    assert tracker.update([det(102, 100)], 6 * DT, noisy)[0].track_id == other


def test_tracker_defaults_come_from_the_node_config():
    from fer_mask_ros.config import node_default

    tracker = Tracker()
    assert tracker.iou_threshold == float(node_default("face_detector", "tracker/iou_threshold"))
    assert tracker.appearance_threshold == TRACKER_DEFAULTS["appearance_threshold"]
    assert Tracker.from_settings({"max_missed": 3}).max_missed == 3
    with pytest.raises(ValueError):
        Tracker.from_settings({"nonsense": 1})


def test_shot_cut_detector_sees_cuts_not_motion():
    rng = np.random.default_rng(1)
    scene_a = rng.integers(0, 120, (240, 320, 3)).astype(np.uint8)
    scene_a = np.repeat(np.repeat(scene_a[::8, ::8], 8, 0), 8, 1)
    scene_b = (255 - scene_a) // 2 + 100
    brighter = np.clip(scene_a.astype(int) + 20, 0, 255).astype(np.uint8)
    for after, cut in ((np.roll(scene_a, 6, axis=1), False), (brighter, False), (scene_b, True)):  # pan, light, cut
        cuts = ShotCutDetector()
        assert not cuts.update(scene_a)
        assert cuts.update(after) is cut
        assert cuts.cuts == int(cut)


def test_the_messages_say_what_the_tracker_does():
    """Face.msg / EmotionStamped.msg: ids from 1, 0 = not tracked (issue #16, item 5)."""
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "msg")
    for name in ("Face.msg", "EmotionStamped.msg"):
        with open(os.path.join(root, name), encoding="utf-8") as handle:
            text = handle.read()
        assert "0 = not tracked" in text and "from 1" in text, name
    assert Tracker().update([det(0, 0)], 0.0)[0].track_id == 1


def test_a_face_far_from_the_predicted_place_gets_a_new_id():
    """The demo clip at 18.0 s: one person leaves, another appears one face size away 0.1 s later."""
    tracker = Tracker()
    for i in range(10):  # slowly moving left
        a = tracker.update([det(140 - i, 70, size=110)], i * 0.1)[0].track_id
    b = tracker.update([det(240, 70, size=90)], 1.0)[0].track_id
    assert b != a and tracker.motion_rejects == 1
    # the gate widens with the time since the track was seen: the same jump after a second of coasting is kept
    tracker = Tracker(max_missed=100)
    a = tracker.update([det(140, 70, size=110)], 0.0)[0].track_id
    assert tracker.update([det(240, 70, size=110)], 1.0)[0].track_id == a
    # max_speed 0: the old one-face-size gate only
    tracker = Tracker(max_speed=0)
    a = tracker.update([det(140, 70, size=110)], 0.0)[0].track_id
    assert tracker.update([det(240, 70, size=90)], 0.1)[0].track_id == a
    with pytest.raises(ValueError):
        Tracker(max_speed=-1)
