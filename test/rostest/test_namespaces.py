#!/usr/bin/env python3
"""Two fake NAOs, two graphs in namespaces robot1 / robot2 (namespaces.test): own camera, own robot, own names."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import time
import unittest

import rosgraph
import rospy
import rostest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from fer_mask_ros.msg import FaceArray
from fer_mask_ros.simulation.fake_nao import fetch_spoken
from fer_rostest import Collector

PKG = "fer_mask_ros"
NODES = ("fake_nao", "nao_camera", "face_detector", "emotion_classifier", "emotion_speech")


class NamespacesTest(unittest.TestCase):
    def test_two_robots_keep_apart(self):
        cam1 = Collector("/robot1/camera/front/image_raw", Image)
        cam2 = Collector("/robot2/camera/bottom/image_raw", Image)
        info2 = Collector("/robot2/camera/bottom/camera_info", CameraInfo)
        faces1, faces2 = Collector("/robot1/faces", FaceArray), Collector("/robot2/faces", FaceArray)
        said1, said2 = Collector("/robot1/said", String), Collector("/robot2/said", String)
        diags = Collector("/diagnostics", DiagnosticArray)
        deadline = time.time() + 120.0
        while not said1.snapshot() and time.time() < deadline and not rospy.is_shutdown():
            time.sleep(0.2)
        time.sleep(2.0)
        self.assertTrue(said1.snapshot(), "robot1's graph said nothing within 120 s")

        # every node of both graphs is alive under its own name (no "new node registered with same name")
        # (a node is listed once it has registered a topic: on a loaded machine that can take a while)
        master = rosgraph.Master(rospy.get_name())
        expected = {f"/{robot}/{node}" for robot in ("robot1", "robot2") for node in NODES}
        deadline = time.time() + 60.0
        while True:
            pubs, subs, _ = master.getSystemState()
            nodes = {n for _, ns in pubs + subs for n in ns}
            if expected <= nodes or time.time() > deadline:
                break
            time.sleep(0.5)
        for robot in ("robot1", "robot2"):
            for node in NODES:
                self.assertIn(f"/{robot}/{node}", nodes)
        pubs, subs = dict(pubs), dict(subs)
        self.assertEqual(pubs.get("/robot1/camera/front/image_raw"), ["/robot1/nao_camera"])
        self.assertEqual(pubs.get("/robot2/camera/bottom/image_raw"), ["/robot2/nao_camera"])
        self.assertNotIn("/robot2/camera/front/image_raw", pubs, "camera:=1 still publishes the front topic")
        self.assertFalse([t for t in pubs if t.startswith("/naoqi_driver")], "a node publishes outside its namespace")
        for robot, camera in (("robot1", "front"), ("robot2", "bottom")):
            topic = f"/{robot}/camera/{camera}/image_raw"
            graph_subs = {n for n in subs.get(topic, []) if n != rospy.get_name()}
            self.assertEqual(graph_subs, {f"/{robot}/face_detector", f"/{robot}/emotion_classifier"}, topic)

        # frames: robot2's bottom camera is named as naoqi_driver names it
        self.assertTrue(cam1.snapshot() and cam2.snapshot() and info2.snapshot())
        self.assertEqual({m.header.frame_id for m in cam1.snapshot()}, {"CameraTop_optical_frame"})
        self.assertEqual({m.header.frame_id for m in cam2.snapshot()}, {"CameraBottom_optical_frame"})
        self.assertEqual({m.header.frame_id for m in info2.snapshot()}, {"CameraBottom_optical_frame"})

        # each graph sees its own camera: faces only in robot1's (the clip), none in robot2's (no face)
        self.assertTrue(any(m.faces for m in faces1.snapshot()), "robot1 found no face in the clip")
        self.assertTrue(faces2.snapshot(), "robot2's detector processed nothing")
        self.assertFalse(any(m.faces for m in faces2.snapshot()), "robot2 found faces: it reads robot1's camera")

        # each graph speaks to its own robot only
        spoken1 = [u.text for u in fetch_spoken(rospy.get_param("/robot1/fake_nao/url"))]
        spoken2 = [u.text for u in fetch_spoken(rospy.get_param("/robot2/fake_nao/url"))]
        self.assertTrue(spoken1, "robot1's fake NAO heard nothing")
        self.assertEqual(spoken2, [], "robot2's fake NAO was spoken to")
        self.assertEqual(said2.snapshot(), [])

        # /diagnostics names the robot: namespace and NAO address
        hw = {s.name: s.hardware_id for m in diags.snapshot() for s in m.status}
        for robot, port in (("robot1", 19581), ("robot2", 19582)):
            for node in ("nao_camera", "face_detector", "emotion_classifier", "emotion_speech"):
                self.assertEqual(hw.get(f"/{robot}/{node}"), f"{robot} NAO 127.0.0.1:{port}", hw)


if __name__ == "__main__":
    rospy.init_node("test_namespaces")
    rostest.rosrun(PKG, "namespaces", NamespacesTest, sys.argv)
