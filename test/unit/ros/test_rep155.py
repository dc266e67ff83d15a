"""fer_mask_ros.ros.rep155 with fake publishers (no master): REP-155 messages from the graph's messages,
publishers made before the IdsList that names a face and unregistered when it leaves."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("hri_msgs.msg", reason="hri_msgs not built (make setup links ../shared/ros4hri/hri_msgs)")

from types import SimpleNamespace as Msg  # noqa: E402 - stands in for fer_mask_ros/Face, FaceArray, EmotionStamped, ...

import rospy  # noqa: E402
from sensor_msgs.msg import RegionOfInterest  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from fer_mask_ros.interaction.affect import valence_arousal  # noqa: E402
from fer_mask_ros.labels import EMOTIONS  # noqa: E402
from fer_mask_ros.ros.convert import array_to_image  # noqa: E402
from fer_mask_ros.ros.rep155 import Rep155Bridge, hri_msgs_missing  # noqa: E402


class FakePublisher:
    def __init__(self, log, topic, msg_type, queue_size):
        self.log, self.topic, self.type = log, topic, msg_type
        self.connections = 1
        self.open = True
        log.append(("advertise", topic))

    def get_num_connections(self):
        return self.connections

    def publish(self, msg):
        assert self.open, f"publish on unregistered {self.topic}"
        assert isinstance(msg, self.type), (self.topic, type(msg))
        self.log.append(("publish", self.topic, msg))

    def unregister(self):
        self.open = False
        self.log.append(("unregister", self.topic))


def make_bridge(**kwargs):
    log = []
    bridge = Rep155Bridge(make_publisher=lambda *a: FakePublisher(log, *a), **kwargs)
    return bridge, log


def header(t, seq=0):
    return Header(seq=seq, stamp=rospy.Time.from_sec(t), frame_id="CameraTop_optical_frame")


def frame(t, faces, width=320, height=240):
    """faces: [(track id, emotion, masked)] -> (EmotionArray, FaceArray, Image) of one header."""
    h = header(t)
    image = np.zeros((height, width, 3), np.uint8)
    fa, ea = Msg(header=h, image_width=width, image_height=height, faces=[]), Msg(header=h, emotions=[])
    for k, (tid, emotion, masked) in enumerate(faces):
        x = 20 + 100 * k
        image[40:140, x:x + 80] = 200
        roi = RegionOfInterest(x_offset=x, y_offset=40, width=80, height=100)
        fa.faces.append(Msg(id=tid, score=0.9, has_landmarks=True, roi=roi,
                            landmarks=[x + 20, 70, x + 60, 70, x + 40, 90, x + 25, 115, x + 55, 115]))
        probs = [0.05] * 7
        probs[EMOTIONS.index(emotion)] = 0.7
        ea.emotions.append(Msg(header=h, face_id=tid, roi=roi, emotion=emotion, confidence=0.7, labels=list(EMOTIONS),
                               probabilities=probs, masked=masked, mask_probability=0.9 if masked else 0.1))
    return ea, fa, array_to_image(image, "bgr8", h)


def published(log, suffix):
    return [entry[2] for entry in log if entry[0] == "publish" and entry[1].endswith(suffix)]


def test_hri_msgs_found():
    assert hri_msgs_missing() is None


def test_one_frame_gives_every_topic_with_the_image_header():
    bridge, log = make_bridge()
    ea, fa, image = frame(10.0, [(3, "fear", True)])
    bridge.frame(ea, fa, image)
    # the face's publishers exist before the IdsList that names it
    order = [(e[0], e[1]) for e in log]
    assert order.index(("advertise", "/humans/faces/f3/expression")) < order.index(("publish", "/humans/faces/tracked"))
    (tracked,) = published(log, "/faces/tracked")
    assert tracked.ids == ["f3"] and tracked.header is ea.header
    (expr,) = published(log, "/f3/expression")
    assert expr.header is ea.header
    assert expr.expression == "scared" and expr.confidence == pytest.approx(0.7)
    assert (expr.valence, expr.arousal) == pytest.approx(valence_arousal(EMOTIONS, ea.emotions[0].probabilities))
    (roi,) = published(log, "/f3/roi")
    assert (roi.xmin, roi.ymin, roi.xmax, roi.ymax) == pytest.approx((20 / 320, 40 / 240, 100 / 320, 140 / 240))
    assert roi.c == pytest.approx(0.9) and roi.header is ea.header
    (lm,) = published(log, "/f3/landmarks")
    assert len(lm.landmarks) == 70 and (lm.width, lm.height) == (320, 240)
    assert lm.landmarks[30].x == pytest.approx(60 / 320) and lm.landmarks[30].c == pytest.approx(0.9)
    (crop,) = published(log, "/f3/cropped")
    assert (crop.width, crop.height, crop.encoding) == (128, 128, "bgr8") and crop.header is ea.header
    pixels = np.frombuffer(crop.data, np.uint8).reshape(128, 128, 3)
    assert pixels[64, 64].tolist() == [200, 200, 200] and not pixels[:, :5].any()  # 80x100 face, padded sides
    assert [m.data for m in published(log, "/f3/masked")] == [True]


def test_faces_come_and_go_and_their_publishers_with_them():
    bridge, log = make_bridge(forget_after_s=0.5)
    t = 0.0
    for k in range(200):  # 100 faces, each seen for 3 frames, one gap of empty frames in between
        for _ in range(3):
            bridge.frame(*frame(t, [(k + 1, "happy", False)]))
            t += 0.1
        if k % 2:
            for _ in range(7):
                bridge.frame(*frame(t, []))
                t += 0.1
    bridge.frame(*frame(t + 1.0, []))
    assert bridge.faces == {} and bridge.appeared == bridge.left == 200
    advertised = {e[1] for e in log if e[0] == "advertise"}
    unregistered = {e[1] for e in log if e[0] == "unregister"}
    assert len(advertised) == 2 + 6 * 200
    assert advertised - unregistered == {"/humans/faces/tracked", "/tf"}
    assert published(log, "/faces/tracked")[-1].ids == []
    # a face stays tracked through a short miss (under forget_after_s), then leaves
    bridge.frame(*frame(100.0, [(500, "sad", False)]))
    bridge.frame(*frame(100.3, []))
    assert published(log, "/faces/tracked")[-1].ids == ["f500"]
    bridge.frame(*frame(100.6, []))
    assert published(log, "/faces/tracked")[-1].ids == []


def test_idle_stream_forgets_every_face():
    bridge, log = make_bridge(forget_after_s=0.05)
    bridge.frame(*frame(5.0, [(1, "happy", False), (2, "sad", False)]))
    assert not bridge.expire_idle()
    time.sleep(0.1)
    assert bridge.expire_idle(rospy.Time(7))
    last = published(log, "/faces/tracked")[-1]
    assert last.ids == [] and last.header.stamp == rospy.Time(7) and last.header.frame_id == "CameraTop_optical_frame"
    assert not bridge.expire_idle()


def test_time_going_back_starts_afresh():
    bridge, log = make_bridge(forget_after_s=0.5)
    bridge.frame(*frame(50.0, [(1, "happy", False)]))
    bridge.frame(*frame(1.0, [(2, "happy", False)]))  # bag loop / restarted clock
    assert published(log, "/faces/tracked")[-1].ids == ["f2"]


def test_no_crop_work_without_subscribers_and_bad_input_is_counted():
    bridge, log = make_bridge()
    ea, fa, image = frame(1.0, [(1, "happy", False)])
    bridge.frame(ea, fa, image)
    bridge.faces["f1"].pubs["cropped"].connections = 0
    bridge.frame(*frame(1.1, [(1, "happy", False)]))
    assert len(published(log, "/f1/cropped")) == 1
    ea, fa, image = frame(1.2, [(1, "happy", False), (0, "happy", False)])
    ea.emotions[0].emotion = "contempt"  # another publisher's label
    bridge.frame(ea, fa, image)
    assert bridge.bad_inputs == 1 and "contempt" in bridge.last_bad_input
    assert bridge.untracked == 1
    assert len(published(log, "/f1/expression")) == 2 and len(published(log, "/f1/roi")) == 3


def test_prefix_and_id_prefix():
    bridge, log = make_bridge(prefix="/robot2/humans/", id_prefix="nao")
    bridge.frame(*frame(1.0, [(4, "neutral", False)]))
    assert published(log, "/robot2/humans/faces/tracked")[0].ids == ["nao4"]
    assert published(log, "/robot2/humans/faces/nao4/expression")[0].expression == "neutral"
    with pytest.raises(ValueError, match="prefix"):
        make_bridge(id_prefix="4x")


def test_aligned_face_and_tf_frames_per_face():
    bridge, log = make_bridge()
    ea, fa, image = frame(3.0, [(7, "happy", False)])
    bridge.frame(ea, fa, image)
    (aligned,) = published(log, "/f7/aligned")
    assert (aligned.width, aligned.height, aligned.encoding) == (128, 128, "bgr8") and aligned.header is ea.header
    assert bridge.aligned_by_landmarks == 1
    (tf,) = published(log, "/tf")
    face, gaze = tf.transforms
    assert (face.header.frame_id, face.child_frame_id) == ("CameraTop_optical_frame", "face_f7")
    assert (gaze.header.frame_id, gaze.child_frame_id) == ("face_f7", "gaze_f7")
    assert face.header.stamp == gaze.header.stamp == ea.header.stamp
    assert face.transform.translation.z > 0.1  # in front of the camera
    assert bridge.pose_methods["pnp"] + bridge.pose_methods["box"] == 1
    # the expression leads, the TF goes out with the frame, before the crops
    order = [e[1] for e in log if e[0] == "publish"]
    assert order.index("/humans/faces/f7/expression") < order.index("/tf") < order.index("/humans/faces/f7/cropped")
    # camera_info's K for images of the same size is used; another size falls back to the nominal pinhole
    assert bridge.camera_source(320, 240).startswith("nominal")
    k = [500.0, 0.0, 160.0, 0.0, 500.0, 120.0, 0.0, 0.0, 1.0]
    assert bridge.set_camera_info(320, 240, k) and bridge.camera_source(320, 240) == "camera_info"
    assert bridge.camera_matrix(320, 240)[0, 0] == 500.0 and bridge.camera_matrix(640, 480)[0, 0] != 500.0
    assert not bridge.set_camera_info(320, 240, [0.0] * 9) and bridge.camera_source(320, 240).startswith("nominal")
    # no frame_id in the image header: no TF (counted), the topics still go out
    ea, fa, image = frame(3.1, [(7, "happy", False)])
    ea.header.frame_id = ""
    bridge.frame(ea, fa, image)
    assert len(published(log, "/tf")) == 1 and bridge.tf_skipped == 1 and len(published(log, "/f7/roi")) == 2


def test_faces_per_frame_are_capped_and_counted():
    bridge, log = make_bridge(max_faces=4)
    bridge.frame(*frame(1.0, [(1, "happy", False), (2, "sad", False)]))
    h = header(1.1)
    many = Msg(header=h, emotions=[Msg(header=h, face_id=k, roi=RegionOfInterest(x_offset=k % 300, y_offset=10,
                                                                                 width=20, height=20),
                                        emotion="happy", confidence=0.5 + k / 2000.0, labels=list(EMOTIONS),
                                        probabilities=[1 / 7.0] * 7, masked=False) for k in range(1, 501)])
    bridge.frame(many, None, None)
    # the two tracked faces stay, the best two new ones (highest confidence without a FaceArray) join
    assert published(log, "/faces/tracked")[-1].ids == ["f1", "f2", "f499", "f500"]
    assert bridge.faces_dropped == 496
    advertised = {e[1] for e in log if e[0] == "advertise"}
    assert len(advertised) == 2 + 6 * 4
    with pytest.raises(ValueError, match="max_faces"):
        make_bridge(max_faces=0)
