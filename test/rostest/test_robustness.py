#!/usr/bin/env python3
"""Bad input through the real nodes (robustness.test; the cases are listed in docs/ROBUSTNESS.md).

Every case is fed to a running node (face_detector raw, face_detector ~transport compressed,
emotion_classifier, emotion_speech with the log backend) and must be *processed* (an output with
the input's header stamp), or
*skipped* (no output, the node's /diagnostics bad_input counter goes up, the node stays alive);
configuration cases start a node with a bad parameter and must be *refused* at start-up with one
FATAL line (exit status != 0, no traceback). At the end every node is alive, its diagnostics are
fresh, and received == processed + dropped + skipped (no queue grew).
"""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import cv2
import numpy as np
import rospy
import rostest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rosgraph_msgs.msg import Log
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from fer_mask_ros.simulation.face_frames import FaceFrames
from fer_mask_ros.simulation.hostile_images import png_bomb
from fer_mask_ros.msg import EmotionArray, EmotionStamped, Face, FaceArray
from fer_mask_ros.srv import ClassifyImage
from fer_mask_ros.ros.convert import array_to_image

PKG = "fer_mask_ros"
DET, DETC, CLS = "/robust/face_detector", "/robust/face_detector_compressed", "/robust/emotion_classifier"
SPEECH = "/robust/emotion_speech"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 20.0  # per processed frame (the machine may be busy)


class Diag:
    """Latest DiagnosticStatus per node name from /diagnostics."""

    def __init__(self):
        self.latest = {}
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber("/diagnostics", DiagnosticArray, self._cb, queue_size=50)

    def _cb(self, msg):
        with self.lock:
            for s in msg.status:
                self.latest[s.name] = (s, {kv.key: kv.value for kv in s.values}, time.monotonic())

    def get(self, name):
        with self.lock:
            return self.latest.get(name)

    def wait(self, name, pred, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not rospy.is_shutdown():
            got = self.get(name)
            if got is not None and pred(got[0], got[1]):
                return got
            time.sleep(0.05)
        return self.get(name)


class ByStamp:
    """Messages of a topic keyed by header stamp."""

    def __init__(self, topic, msg_type):
        self.msgs = {}
        self.count = 0
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber(topic, msg_type, self._cb, queue_size=100, buff_size=2 ** 24)

    def _cb(self, msg):
        with self.lock:
            self.msgs.setdefault(msg.header.stamp, []).append(msg)
            self.count += 1

    def wait(self, stamp, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not rospy.is_shutdown():
            with self.lock:
                if stamp in self.msgs:
                    return self.msgs[stamp][-1]
            time.sleep(0.02)
        return None


# ------------------------------------------------------------------------------------------ frames and messages
FRAMES = FaceFrames(320, 240, 2, n_frames=4)
ONE_FACE = FaceFrames(320, 240, 1, n_frames=4)


def raw_msg(data: bytes, width: int, height: int, encoding: str, step: int, bigendian: int = 0) -> Image:
    m = Image()
    m.width, m.height, m.encoding, m.step, m.is_bigendian, m.data = width, height, encoding, step, bigendian, data
    return m


def from_bgr(bgr: np.ndarray, encoding: str) -> Image:
    if encoding == "rgb8":
        return array_to_image(bgr[:, :, ::-1], "rgb8")
    if encoding == "bgr8":
        return array_to_image(bgr, "bgr8")
    if encoding == "mono8":
        return array_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "mono8")
    if encoding == "bgra8":
        return array_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), "bgra8")
    if encoding == "rgba8":
        return array_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), "rgba8")
    if encoding == "mono16":
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
        m = array_to_image(grey.view(np.uint8).reshape(grey.shape[0], -1), "mono16")
        m.width = grey.shape[1]
        return m
    if encoding == "32FC1":
        f = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        f[0, :5] = np.nan
        f[1, :5] = np.inf
        m = array_to_image(f.view(np.uint8).reshape(f.shape[0], -1), "32FC1")
        m.width = f.shape[1]
        return m
    if encoding == "yuv422":  # UYVY: U0 Y0 V0 Y1
        yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.float32)
        y = yuv[:, :, 0]
        u = (yuv[:, 0::2, 1] + yuv[:, 1::2, 1]) / 2
        v = (yuv[:, 0::2, 2] + yuv[:, 1::2, 2]) / 2
        packed = np.stack([u, y[:, 0::2], v, y[:, 1::2]], axis=2).reshape(bgr.shape[0], -1)
        m = array_to_image(np.clip(packed + 0.5, 0, 255).astype(np.uint8), "yuv422")
        m.width = bgr.shape[1]
        return m
    if encoding == "bayer_rggb8":
        rgb = bgr[:, :, ::-1]
        mosaic = np.empty(bgr.shape[:2], np.uint8)
        mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
        mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
        mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
        mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
        return array_to_image(mosaic, "bayer_rggb8")
    raise ValueError(encoding)


def compressed(bgr: np.ndarray, fmt: str) -> CompressedImage:
    ok, buf = cv2.imencode("." + fmt, bgr)
    assert ok
    m = CompressedImage()
    m.format = "jpeg" if fmt == "jpg" else fmt
    m.data = buf.tobytes()
    return m


def face_array(boxes, width, height) -> FaceArray:
    fa = FaceArray()
    fa.image_width, fa.image_height = width, height
    for i, (x, y, w, h) in enumerate(boxes):
        f = Face()
        f.id = i
        f.roi.x_offset, f.roi.y_offset = int(max(0, x)), int(max(0, y))
        f.roi.width, f.roi.height = int(w), int(h)
        f.score = 0.9
        f.has_landmarks = True
        f.landmarks = [x + 0.3 * w, y + 0.4 * h, x + 0.7 * w, y + 0.4 * h, x + 0.5 * w, y + 0.55 * h,
                       x + 0.35 * w, y + 0.75 * h, x + 0.65 * w, y + 0.75 * h]
        fa.faces.append(f)
    return fa


def node_peak_rss_mb(name: str) -> float:
    """VmHWM (peak resident memory) of a node on this machine, in MB."""
    import xmlrpc.client  # noqa: PLC0415

    import rosgraph  # noqa: PLC0415

    api = rosgraph.Master("/test_robustness").lookupNode(name)
    pid = xmlrpc.client.ServerProxy(api).getPid("/test_robustness")[2]
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmHWM for {name} (pid {pid})")


class Rosout:
    """rosout lines per node name."""

    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber("/rosout", Log, self._cb, queue_size=1000)

    def _cb(self, msg):
        with self.lock:
            self.lines.append((msg.name, msg.level, msg.msg))

    def since(self, n, name):
        with self.lock:
            return [(lvl, text) for who, lvl, text in self.lines[n:] if who == name]


class Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


# ------------------------------------------------------------------------------------------ the test
class RobustnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.diag = Diag()
        cls.faces = ByStamp("/robust/faces", FaceArray)
        cls.faces_c = ByStamp("/robust/faces_compressed", FaceArray)
        cls.arrays = ByStamp("/robust/emotion_array", EmotionArray)
        cls.said = []
        cls.said_sub = rospy.Subscriber("/robust/said", String, lambda m: cls.said.append((time.monotonic(), m.data)),
                                        queue_size=50)
        cls.rosout = Rosout()
        cls.pub_emo = rospy.Publisher("/robust/speech_emotions", EmotionStamped, queue_size=1000)
        cls.pub_det_emo = rospy.Publisher("/robust/emotions", EmotionStamped, queue_size=1000)
        cls.pub = rospy.Publisher("/robust/image", Image, queue_size=5)
        cls.pub_c = rospy.Publisher("/robust/image/compressed", CompressedImage, queue_size=5)
        cls.pub_ci = rospy.Publisher("/robust/cls_image", Image, queue_size=5)
        cls.pub_cf = rospy.Publisher("/robust/cls_faces", FaceArray, queue_size=5)
        cls.expected_bad = {DET: 0, DETC: 0, CLS: 0}
        cls.t = rospy.Time.now().to_sec()
        end = time.monotonic() + 90
        for name in (DET, DETC, CLS, SPEECH):  # nodes up (the classifier loads its model)
            while cls.diag.get(name) is None and time.monotonic() < end:
                time.sleep(0.2)
        for pub in (cls.pub, cls.pub_c, cls.pub_ci, cls.pub_cf, cls.pub_emo, cls.pub_det_emo):
            while pub.get_num_connections() == 0 and time.monotonic() < end:
                time.sleep(0.1)
        time.sleep(0.5)

    # -- helpers
    def stamp(self, t=None):
        if t is None:
            type(self).t += 0.1
            t = type(self).t
        return rospy.Time.from_sec(t)

    def send(self, pub, msg, stamp=None):
        msg.header.stamp = self.stamp() if stamp is None else stamp
        msg.header.frame_id = "robust"
        pub.publish(msg)
        return msg.header.stamp

    def processed(self, pub, msg, out, stamp=None, timeout=TIMEOUT):
        s = self.send(pub, msg, stamp)
        got = out.wait(s, timeout)
        self.assertIsNotNone(got, f"no output for the frame stamped {s.to_sec():.3f}")
        return got

    def skipped(self, node, pub, msg, out):
        s = self.send(pub, msg)
        self.expected_bad[node] += 1
        want = self.expected_bad[node]
        got = self.diag.wait(node, lambda st, v: int(v.get("bad_input", 0)) >= want, timeout=TIMEOUT)
        self.assertIsNotNone(got, f"{node}: no diagnostics")
        self.assertEqual(int(got[1]["bad_input"]), want, f"{node}: bad input not counted: {got[1]}")
        self.assertEqual(got[0].level, DiagnosticStatus.WARN, f"{node}: {got[0].message}")
        self.assertIsNone(out.wait(s, 0.2), "a skipped frame produced an output")
        return got

    def classify(self, bgr, boxes, stamp=None, encoding="bgr8"):
        s = self.stamp() if stamp is None else stamp
        h, w = bgr.shape[:2]
        self.send(self.pub_cf, face_array(boxes, w, h), s)
        return self.processed(self.pub_ci, from_bgr(bgr, encoding), self.arrays, s)

    def refused(self, node_type, expect, **params):
        """Start `node_type` with private params; it must exit != 0 with one FATAL line containing `expect`."""
        args = [f"_{k}:={v}" for k, v in params.items()]
        name = f"refused_{node_type}_{int(time.time() * 1000) % 100000}"
        node = os.path.join(REPO, "nodes", node_type)
        p = subprocess.run([sys.executable, node, f"__name:={name}", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=90, text=True)
        out = p.stdout
        fatal = [line for line in out.splitlines() if "FATAL" in line]
        self.assertNotEqual(p.returncode, 0, out)
        self.assertEqual(len(fatal), 1, out)
        self.assertIn(expect, fatal[0])
        self.assertNotIn("Traceback", out)
        rospy.loginfo(f"refused at start-up: {fatal[0]}")
        return fatal[0]

    # -- encodings (face_detector, raw transport): each one is processed; the faces are found
    def _encoding(self, encoding, min_faces=1):
        fa = self.processed(self.pub, from_bgr(FRAMES.frame(0), encoding), self.faces)
        self.assertGreaterEqual(len(fa.faces), min_faces, f"{encoding}: faces not found")
        self.assertEqual((fa.image_width, fa.image_height), (320, 240))

    def test_01_rgb8(self):
        self._encoding("rgb8", 2)

    def test_02_bgr8(self):
        self._encoding("bgr8", 2)

    def test_03_mono8(self):
        self._encoding("mono8")

    def test_04_bgra8(self):
        self._encoding("bgra8", 2)

    def test_05_rgba8(self):
        self._encoding("rgba8", 2)

    def test_06_mono16(self):
        self._encoding("mono16")

    def test_07_32fc1_with_nan_inf(self):
        self._encoding("32FC1", 0)

    def test_08_yuv422(self):
        self._encoding("yuv422")

    def test_09_bayer_rggb8(self):
        self._encoding("bayer_rggb8", 0)

    # -- compressed transport
    def test_10_compressed_jpeg(self):
        fa = self.processed(self.pub_c, compressed(FRAMES.frame(1), "jpg"), self.faces_c)
        self.assertGreaterEqual(len(fa.faces), 2)

    def test_11_compressed_png(self):
        fa = self.processed(self.pub_c, compressed(FRAMES.frame(2), "png"), self.faces_c)
        self.assertGreaterEqual(len(fa.faces), 2)

    def test_12_compressed_corrupt(self):
        png = compressed(FRAMES.frame(1), "png")
        for fmt, data in (("jpeg", b""), ("jpeg", b"\xff\xd8\xff\xe0garbage" * 10),
                          ("png", bytes(png.data[: len(png.data) // 8])), ("tiff", b"II*\0" + b"\0" * 64)):
            self.skipped(DETC, self.pub_c, CompressedImage(format=fmt, data=data), self.faces_c)
        # a truncated JPEG is decoded by libjpeg with the missing rows filled in: processed
        jpeg = compressed(FRAMES.frame(1), "jpg")
        self.processed(self.pub_c, CompressedImage(format="jpeg", data=bytes(jpeg.data[: len(jpeg.data) // 2])),
                       self.faces_c)
        self.processed(self.pub_c, compressed(FRAMES.frame(1), "jpg"), self.faces_c)  # still works

    # -- malformed raw images
    def test_13_step_size_mismatch(self):
        bgr = FRAMES.frame(0)
        data = bgr.tobytes()
        self.skipped(DET, self.pub, raw_msg(data, 320, 240, "bgr8", 320 * 2), self.faces)  # step < width*3
        self.skipped(DET, self.pub, raw_msg(data[:1000], 320, 240, "bgr8", 960), self.faces)  # data too short
        self.skipped(DET, self.pub, raw_msg(data, 100000, 100000, "bgr8", 300000), self.faces)  # absurd size
        padded = np.zeros((240, 1024), np.uint8)  # step > width*3 (row padding) is legal: processed
        padded[:, :960] = bgr.reshape(240, 960)
        fa = self.processed(self.pub, raw_msg(padded.tobytes(), 320, 240, "bgr8", 1024), self.faces)
        self.assertGreaterEqual(len(fa.faces), 2)

    def test_14_unknown_encoding(self):
        self.skipped(DET, self.pub, raw_msg(b"\0" * 300, 10, 10, "hsv8", 30), self.faces)

    def test_15_zero_by_zero(self):
        self.skipped(DET, self.pub, raw_msg(b"", 0, 0, "rgb8", 0), self.faces)

    def test_16_one_by_one(self):
        fa = self.processed(self.pub, raw_msg(b"\x80\x80\x80", 1, 1, "rgb8", 3), self.faces)
        self.assertEqual(len(fa.faces), 0)

    def test_17_4000x3000(self):
        big = cv2.resize(ONE_FACE.frame(0), (4000, 3000), interpolation=cv2.INTER_NEAREST)
        fa = self.processed(self.pub, from_bgr(big, "bgr8"), self.faces, timeout=60)
        self.assertEqual((fa.image_width, fa.image_height), (4000, 3000))
        self.assertGreaterEqual(len(fa.faces), 1)

    def test_18_black_and_white(self):
        for value in (0, 255):
            fa = self.processed(self.pub, from_bgr(np.full((240, 320, 3), value, np.uint8), "bgr8"), self.faces)
            self.assertEqual(len(fa.faces), 0, f"faces found in an all-{value} frame")

    def test_19_fifty_faces(self):
        many = FaceFrames(1280, 960, 50, n_frames=1)
        fa = self.processed(self.pub, from_bgr(many.frame(0), "bgr8"), self.faces, timeout=60)
        self.assertGreaterEqual(len(fa.faces), 10)
        arr = self.classify(many.frame(0), many.boxes(0))
        self.assertEqual(len(arr.emotions), 50)

    def test_20_faces_cut_by_the_border(self):
        bgr = FRAMES.frame(0)
        boxes = [(-40, 20, 100, 100), (270, -30, 100, 100), (250, 190, 120, 120), (0, 0, 320, 240)]
        arr = self.classify(bgr, boxes)
        self.assertEqual(len(arr.emotions), 4)
        for e in arr.emotions:
            self.assertLessEqual(e.roi.x_offset + e.roi.width, 320)
            self.assertLessEqual(e.roi.y_offset + e.roi.height, 240)
        # issue 32: a box entirely outside the image, a zero-size box and the audit's (5000, 5000, 50, 50) on a
        # 320 x 240 image have no pixel to classify: skipped and counted (faces_outside), never an emotion
        before = int((self.diag.get(CLS) or (None, {}))[1].get("faces_outside", 0))
        arr = self.classify(bgr, [(400, 300, 50, 50), (10, 10, 0, 0), (5000, 5000, 50, 50), (20, 20, 60, 60)])
        self.assertEqual([e.face_id for e in arr.emotions], [3])
        got = self.diag.wait(CLS, lambda st, v: int(v.get("faces_outside", 0)) >= before + 3, timeout=TIMEOUT)
        self.assertIsNotNone(got, "no classifier diagnostics")
        self.assertEqual(int(got[1]["faces_outside"]), before + 3, got[1])

    def test_21_repeated_and_backwards_stamps(self):
        t = type(self).t + 1.0
        ids = []
        for s in (t, t, t + 0.1, t - 5.0, t - 4.9):  # repeat, then the bag loops back 5 s
            fa = self.processed(self.pub, from_bgr(FRAMES.frame(0), "bgr8"), self.faces, stamp=rospy.Time.from_sec(s))
            ids.append(sorted(f.id for f in fa.faces))
        self.assertTrue(all(len(i) == 2 for i in ids), ids)
        self.assertEqual(ids[0], ids[2], "a repeated stamp broke the tracks")
        for s in (t + 0.2, t + 0.2, t - 3.0):  # the classifier too
            arr = self.classify(FRAMES.frame(0), FRAMES.boxes(0), stamp=rospy.Time.from_sec(s))
            self.assertEqual(len(arr.emotions), 2)
        type(self).t = t + 1.0

    def test_22_no_camera_info(self):
        """No node subscribes to camera_info: every case above ran without one. Documented, checked here."""
        from rosgraph.masterapi import Master  # noqa: PLC0415

        _pubs, subs, _srvs = Master("/test_robustness").getSystemState()
        info_subs = [t for t, nodes in subs
                     if t.endswith("camera_info") and any(n.startswith("/robust") for n in nodes)]
        self.assertEqual(info_subs, [])

    def test_23_image_and_faces_never_sync(self):
        before = self.arrays.count
        for _ in range(12):
            s = self.stamp()
            self.send(self.pub_cf, face_array(FRAMES.boxes(0), 320, 240), rospy.Time.from_sec(s.to_sec() + 0.013))
            self.send(self.pub_ci, from_bgr(FRAMES.frame(0), "bgr8"), s)
            time.sleep(0.4)
        got = self.diag.wait(CLS, lambda st, v: "never share" in st.message, timeout=TIMEOUT)
        self.assertIn("never share", got[0].message)
        self.assertEqual(got[0].level, DiagnosticStatus.WARN)
        self.assertEqual(self.arrays.count, before, "unsynchronised inputs produced an output")
        arr = self.classify(FRAMES.frame(0), FRAMES.boxes(0))  # a matching pair still works
        self.assertEqual(len(arr.emotions), 2)

    def test_24_classifier_bad_image(self):
        s = self.stamp()
        self.send(self.pub_cf, face_array(FRAMES.boxes(0), 320, 240), s)
        self.expected_bad[CLS] += 1
        self.send(self.pub_ci, raw_msg(b"\0" * 100, 320, 240, "rgb8", 960), s)
        want = self.expected_bad[CLS]
        got = self.diag.wait(CLS, lambda st, v: int(v.get("bad_input", 0)) >= want, timeout=TIMEOUT)
        self.assertEqual(int(got[1]["bad_input"]), want, got[1])
        arr = self.classify(FRAMES.frame(0), FRAMES.boxes(0), encoding="mono8")
        self.assertEqual(len(arr.emotions), 2)

    def test_25_flood(self):
        """200 frames as fast as possible: the newest is processed, the rest counted as dropped."""
        msg = from_bgr(FRAMES.frame(0), "bgr8")
        last = None
        for _ in range(200):
            last = self.send(self.pub, msg)
        self.assertIsNotNone(self.faces.wait(last, 30.0), "the newest frame of a flood was not processed")

    def test_26_faces_far_outside_the_image(self):
        """A roi at x_offset 4294967295 (uint32 max): no pixel inside the image, skipped (issue 32); every
        published roi clipped into the image."""
        fa = face_array(FRAMES.boxes(0), 320, 240)
        far = Face(id=7, score=0.9)
        far.roi.x_offset, far.roi.y_offset, far.roi.width, far.roi.height = 4294967295, 4294967295, 40, 40
        fa.faces.append(far)
        s = self.stamp()
        self.send(self.pub_cf, fa, s)
        arr = self.processed(self.pub_ci, from_bgr(FRAMES.frame(0), "bgr8"), self.arrays, s)
        self.assertEqual(len(arr.emotions), 2)
        self.assertNotIn(7, [e.face_id for e in arr.emotions])
        for e in arr.emotions:
            self.assertLessEqual(e.roi.x_offset + e.roi.width, 320, e.roi)
            self.assertLessEqual(e.roi.y_offset + e.roi.height, 240, e.roi)

    def test_27_ten_thousand_faces(self):
        """A FaceArray of 10,000 faces: only ~max_faces (100) are classified, the rest counted as dropped;
        the classifier answers within a bounded time and the next pair is processed at once."""
        boxes = [((i % 100) * 3.0, ((i // 100) % 100) * 2.0, 24, 24) for i in range(10000)]
        before = self.diag.get(CLS)[1]
        dropped0 = int(before.get("faces_dropped", 0))
        t0 = time.monotonic()
        arr = self.classify(FRAMES.frame(0), boxes)
        took = time.monotonic() - t0
        self.assertEqual(len(arr.emotions), 100)
        got = self.diag.wait(CLS, lambda st, v: int(v.get("faces_dropped", 0)) >= dropped0 + 9900, timeout=TIMEOUT)
        self.assertEqual(int(got[1].get("faces_dropped", 0)), dropped0 + 9900, got[1])
        self.assertLess(took, 30.0, "10,000 faces stalled the classifier")
        arr = self.classify(FRAMES.frame(0), FRAMES.boxes(0))
        self.assertEqual(len(arr.emotions), 2)

    def test_28_frames_lost_in_transport(self):
        """header.seq jumps by 8 (7 frames lost before the node, e.g. a full publisher queue): counted as lost."""
        got = self.diag.wait(DET, lambda st, v: "lost" in v, timeout=TIMEOUT)
        self.assertIn("lost", got[1], "face_detector does not count frames lost before it")
        lost0 = int(got[1]["lost"])
        self.processed(self.pub, from_bgr(FRAMES.frame(0), "bgr8"), self.faces)
        self.pub.impl.seq += 7  # rospy numbers each message it sends; skip 7 numbers
        self.processed(self.pub, from_bgr(FRAMES.frame(0), "bgr8"), self.faces)
        got = self.diag.wait(DET, lambda st, v: int(v.get("lost", 0)) >= lost0 + 7, timeout=TIMEOUT)
        self.assertGreaterEqual(int(got[1].get("lost", 0)), lost0 + 7, got[1])

    def test_29_service_cannot_starve_the_live_flow(self):
        """20 concurrent classify_image calls: at most ~service_max_concurrent run, the others are answered
        busy at once; the live image + faces flow keeps being processed meanwhile."""
        rospy.wait_for_service("/robust/classify_image", timeout=30)
        big = cv2.resize(FRAMES.frame(0), (640, 480))
        req = from_bgr(big, "bgr8")
        results = []

        def call():
            try:
                rospy.ServiceProxy("/robust/classify_image", ClassifyImage)(image=req)
                results.append("ok")
            except rospy.ServiceException as exc:
                results.append(str(exc))

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
        live = []
        for _ in range(3):
            t0 = time.monotonic()
            self.classify(FRAMES.frame(0), FRAMES.boxes(0))
            live.append(time.monotonic() - t0)
        for t in threads:
            t.join(60)
        busy = [r for r in results if "busy" in r]
        rospy.loginfo(f"classify_image x20: {results.count('ok')} answered, {len(busy)} busy; live pairs took "
                      f"{', '.join(f'{t:.2f}' for t in live)} s meanwhile")
        self.assertEqual(len(results), 20)
        self.assertGreaterEqual(len(busy), 1, results)
        self.assertGreaterEqual(results.count("ok"), 1, results)
        self.assertLess(max(live), 10.0, f"live pairs took {live} s during the calls")
        got = self.diag.wait(CLS, lambda st, v: int(v.get("service_busy", 0)) >= len(busy), timeout=TIMEOUT)
        self.assertGreaterEqual(int(got[1].get("service_busy", 0)), len(busy), got[1])

    def test_38_compressed_image_bombs(self):
        """A 74-byte PNG declaring 60000 x 60000, and a 30000 x 30000 all-zero PNG (~900 kB): refused from
        the header (skipped, counted), never decoded: the node's peak memory stays under 1.5 GB."""
        self.processed(self.pub_c, compressed(FRAMES.frame(1), "jpg"), self.faces_c)  # fresh: WARN, not stale ERROR
        for data in (png_bomb(60000, 60000), png_bomb(30000, 30000, zero_rows=True)):
            got = self.skipped(DETC, self.pub_c, CompressedImage(format="png", data=data), self.faces_c)
            self.assertIn("too large", got[1]["last_bad_input"])
        self.processed(self.pub_c, compressed(FRAMES.frame(1), "jpg"), self.faces_c)  # still works
        self.assertLess(node_peak_rss_mb(DETC), 1500.0)

    # -- emotion_speech
    def emotion(self, face_id, emotion="happy", confidence=0.9, masked=False, stamp=None):
        m = EmotionStamped(face_id=face_id, emotion=emotion, confidence=confidence, masked=masked)
        m.header.stamp = rospy.Time.now() if stamp is None else stamp
        return m

    def test_40_speech_storm_still_speaks(self):
        """100 face ids as fast as they can be published for 20 s (observe races decide): the policy timer
        survives, errors stay 0, and afterwards a new stable face is still spoken about."""
        end = time.monotonic() + 20.0
        n = 0
        while time.monotonic() < end:
            for fid in range(100):
                self.pub_emo.publish(self.emotion(1000 + fid, "happy" if fid % 2 else "sad"))
                n += 1
            time.sleep(0.002)
        rospy.loginfo(f"storm: {n} emotions in 20 s")
        said0 = len(self.said)
        end = time.monotonic() + 30.0
        want = "Even with your mask on, you look surprised!"
        while time.monotonic() < end and want not in [t for _, t in self.said[said0:]]:
            self.pub_emo.publish(self.emotion(5000, "surprise", 0.95, True))
            time.sleep(0.05)
        self.assertIn(want, [t for _, t in self.said[said0:]], "the speech node went mute after the storm")
        st, v, _ = self.diag.wait(SPEECH, lambda st, v: True)
        self.assertEqual(int(v.get("errors", -1)), 0, v)
        self.assertEqual(int(v.get("timer_restarts", -1)), 0, v)

    def test_41_speech_far_future_stamps_and_many_ids(self):
        """3,000 new face ids stamped 10^6 s in the future: the policy holds at most max_faces (128), and they
        are all forgotten a window (3 s) later by the node's own clock."""
        received0 = int(self.diag.get(SPEECH)[1].get("emotions_received", 0))
        future = rospy.Time.from_sec(rospy.Time.now().to_sec() + 1e6)
        for fid in range(3000):
            self.pub_emo.publish(self.emotion(100000 + fid, stamp=future))
            if fid % 200 == 0:
                time.sleep(0.01)
        time.sleep(1.5)  # the subscriber queue (50) may drop some: what arrived is enough
        got = self.diag.wait(SPEECH, lambda st, v: int(v.get("emotions_received", 0)) > received0 + 64, timeout=TIMEOUT)
        self.assertGreater(int(got[1].get("emotions_received", 0)), received0 + 64)
        self.assertLessEqual(int(got[1].get("policy_faces", 10 ** 9)), 128, got[1])
        self.assertLessEqual(int(got[1].get("policy_observations", 10 ** 9)), 128 * 256, got[1])
        got = self.diag.wait(SPEECH, lambda st, v: int(v.get("policy_faces", 10 ** 9)) == 0, timeout=TIMEOUT)
        self.assertEqual(int(got[1].get("policy_faces", -1)), 0, f"far-future observations kept: {got[1]}")

    def test_42_speech_unknown_and_huge_emotion_names(self):
        """300 messages with an unknown emotion name at ~100 Hz and one 100 kB name: counted as bad input,
        diagnostics WARN, at most a few throttled log lines and no traceback."""
        n_log = len(self.rosout.lines)
        for _ in range(300):
            self.pub_emo.publish(self.emotion(7, "klingon_rage"))
            time.sleep(0.01)
        self.pub_emo.publish(self.emotion(7, "x" * 100000))
        got = self.diag.wait(SPEECH, lambda st, v: int(v.get("bad_input", 0)) >= 301, timeout=TIMEOUT)
        self.assertEqual(int(got[1].get("bad_input", 0)), 301, got[1])
        self.assertEqual(got[0].level, DiagnosticStatus.WARN, got[0].message)
        self.assertLess(len(got[1]["last_bad_input"]), 300)
        time.sleep(1.0)
        lines = self.rosout.since(n_log, SPEECH)
        self.assertLessEqual(len(lines), 6, lines[:3])
        self.assertFalse([t for _, t in lines if "Traceback" in t or len(t) > 2000], lines[:1])

    def test_43_detector_label_map_is_bounded(self):
        """3,000 unique face ids on the detector's emotions topic (and a 100 kB name): it keeps at most 256
        labels, and ignores (counts) unknown names."""
        for fid in range(3000):
            self.pub_det_emo.publish(self.emotion(200000 + fid))
            if fid % 200 == 0:
                time.sleep(0.01)
        self.pub_det_emo.publish(self.emotion(7, "x" * 100000))
        got = self.diag.wait(DET, lambda st, v: int(v.get("bad_emotions", 0)) >= 1, timeout=TIMEOUT)
        self.assertGreaterEqual(int(got[1].get("bad_emotions", 0)), 1, got[1])
        self.assertLessEqual(int(got[1].get("labels_kept", 10 ** 9)), 256, got[1])

    # -- configuration: refused at start-up with one clear line
    def test_30_unknown_language(self):
        self.refused("emotion_speech", "language", backend="log", language="klingon")

    def test_31_unknown_speech_backend(self):
        self.refused("emotion_speech", "~backend = 'carrier_pigeon' is not one of the choices",
                     backend="carrier_pigeon")

    def test_32_unknown_transport(self):
        self.refused("face_detector", "~transport = 'theora' is not one of the choices", transport="theora")

    def test_33_unknown_classifier_backend(self):
        self.refused("emotion_classifier", "backend", backend="tensorflow", model=self.model())

    def test_34_missing_model(self):
        self.refused("emotion_classifier", "~model = '/nonexistent/fer_mask_net.pt' is no such file",
                     model="/nonexistent/fer_mask_net.pt")

    def test_35_corrupt_model(self):
        with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as f:
            f.write(b"PK\x03\x04 this is not a torch zip" * 50)
        try:
            self.refused("emotion_classifier", "cannot load model", model=f.name)
        finally:
            os.unlink(f.name)

    def test_36_wrong_architecture_model(self):
        import torch  # noqa: PLC0415

        from fer_mask_ros.perception.classifier import save_model  # noqa: PLC0415
        from fer_mask_ros.perception.zoo.network import MaskedFERNet  # noqa: PLC0415

        path = os.path.join(tempfile.mkdtemp(), "arch.pt")
        save_model(MaskedFERNet((4, 8, 16)), path)
        payload = torch.load(path, weights_only=True)
        payload["widths"] = [4, 8]
        torch.save(payload, path)
        self.refused("emotion_classifier", "architecture", model=path)

    def test_37_pickled_code_model_never_runs(self):
        d = tempfile.mkdtemp()
        marker, path = os.path.join(d, "pwned"), os.path.join(d, "evil.pt")
        with open(path, "wb") as f:
            f.write(pickle.dumps(Exploit(marker)))
        self.refused("emotion_classifier", "cannot load model", model=path)
        self.assertFalse(os.path.exists(marker), "loading the model ran pickled code")

    # -- last: everyone alive, no queue grew
    def test_99_nodes_alive_and_counts_add_up(self):
        time.sleep(2.5)
        for name in (DET, DETC, CLS):
            got = self.diag.wait(name, lambda st, v: True)
            self.assertIsNotNone(got)
            st, v, at = got
            self.assertLess(time.monotonic() - at, 3.0, f"{name}: diagnostics stopped (node dead?)")
            self.assertEqual(int(v.get("errors", 0)), 0, f"{name}: {v.get('last_error')}")
            received = int(v.get("received", v.get("pairs_received", 0)))
            done = int(v["processed"]) + int(v["dropped"]) + int(v["bad_input"])
            self.assertLessEqual(received - done, 1, f"{name}: a queue grew: {v}")
            self.assertEqual(int(v["bad_input"]), self.expected_bad[name], v)
        st, v, at = self.diag.wait(SPEECH, lambda st, v: True)
        self.assertLess(time.monotonic() - at, 3.0, "emotion_speech: diagnostics stopped (node dead?)")
        self.assertEqual(int(v.get("errors", -1)), 0, v)
        import rosnode  # noqa: PLC0415

        for name in (DET, DETC, CLS, SPEECH):
            self.assertTrue(rosnode.rosnode_ping(name, max_count=1), f"{name} does not answer")

    def model(self):
        return rospy.get_param("~model", "") or os.path.join(REPO, "models", "fer_mask_net.pt")


if __name__ == "__main__":
    rospy.init_node("test_robustness")
    rostest.rosrun(PKG, "robustness", RobustnessTest, sys.argv)
