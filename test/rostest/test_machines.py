#!/usr/bin/env python3
"""The graph split over two "machines" (loopback 127.0.0.1 / 127.0.0.2) and a robot at 127.0.0.3 (machines.test)."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import time
import unittest
from urllib.parse import urlparse

import rosgraph
import rospy
import rostest

from fer_mask_ros.msg import EmotionStamped, FaceArray
from fer_mask_ros.simulation.fake_nao import fetch_spoken
from fer_rostest import Collector

PKG = "fer_mask_ros"
HOSTS = {"fake_nao": "127.0.0.1", "nao_camera": "127.0.0.1", "face_detector": "127.0.0.2",
         "emotion_classifier": "127.0.0.2", "emotion_speech": "127.0.0.2"}


class MachinesTest(unittest.TestCase):
    def test_graph_across_addresses(self):
        faces = Collector("/fer_mask/faces", FaceArray)
        emotions = Collector("/fer_mask/emotions", EmotionStamped)
        deadline = time.time() + 100.0
        while not rospy.has_param("/fer_mask/fake_nao/url") and time.time() < deadline:
            time.sleep(0.2)
        url = rospy.get_param("/fer_mask/fake_nao/url")
        self.assertEqual(urlparse(url).hostname, "127.0.0.3", url)
        spoken = []
        while not spoken and time.time() < deadline and not rospy.is_shutdown():
            time.sleep(1.0)
            spoken = fetch_spoken(url)
        self.assertTrue(spoken, "NAO at 127.0.0.3 heard nothing from emotion_speech at 127.0.0.2")
        self.assertTrue(any(m.faces for m in faces.snapshot()), "no faces across the two addresses")
        self.assertTrue(emotions.snapshot())

        master = rosgraph.Master(rospy.get_name())
        for node, host in HOSTS.items():
            uri = master.lookupNode(f"/fer_mask/{node}")
            self.assertEqual(urlparse(uri).hostname, host, f"{node}: {uri}")


if __name__ == "__main__":
    rospy.init_node("test_machines")
    rostest.rosrun(PKG, "machines", MachinesTest, sys.argv)
