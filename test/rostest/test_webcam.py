#!/usr/bin/env python3
"""webcam.launch on a video standing in for the camera (webcam.test): camera topics, faces, emotions, speech."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import time
import unittest

import rospy
import rostest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from fer_mask_ros.msg import EmotionStamped, FaceArray
from fer_rostest import Collector

PKG = "fer_mask_ros"
NS = "/fer_mask"


class WebcamTest(unittest.TestCase):
    def test_video_as_camera(self):
        images = Collector(NS + "/camera/front/image_raw", Image)
        infos = Collector(NS + "/camera/front/camera_info", CameraInfo)
        faces = Collector(NS + "/faces", FaceArray)
        emotions = Collector(NS + "/emotions", EmotionStamped)
        said = Collector(NS + "/said", String)
        deadline = time.time() + 120.0
        while not said.snapshot() and time.time() < deadline and not rospy.is_shutdown():
            time.sleep(0.2)
        self.assertTrue(said.snapshot(), "the graph said nothing within 120 s")
        while len({m.emotion for m in emotions.snapshot()}) < 2 and time.time() < deadline + 30.0:
            time.sleep(0.2)  # the clip's second face (after 4.5 s)
        imgs, info = images.snapshot(), infos.snapshot()
        self.assertGreater(len(imgs), 10)
        self.assertEqual({m.header.frame_id for m in imgs}, {"usb_camera_optical_frame"})
        self.assertEqual((imgs[0].width, imgs[0].height, imgs[0].encoding), (320, 240, "bgr8"))
        self.assertTrue(info and info[0].header.frame_id == "usb_camera_optical_frame" and info[0].K[0] > 0)
        self.assertEqual((info[0].width, info[0].height), (320, 240))
        self.assertTrue(any(f.faces for f in faces.snapshot()), "no face found in the clip")
        ems = emotions.snapshot()
        self.assertTrue(ems, "no emotions")
        self.assertGreaterEqual(len({m.emotion for m in ems}), 2, "the clip shows several emotions")
        self.assertTrue(said.snapshot()[0].data.startswith(("You look", "Even with", "I am not sure")))


if __name__ == "__main__":
    rospy.init_node("test_webcam")
    rostest.rosrun(PKG, "webcam", WebcamTest, sys.argv)
