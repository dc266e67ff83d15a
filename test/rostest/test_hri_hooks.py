#!/usr/bin/env python3
"""hri_hooks.test: study sentences + animation from ~sentences, and the describe_face service, on the fake NAO."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import threading
import time
import unittest

import rospy
import rostest

from fer_mask_ros.msg import EmotionStamped
from fer_mask_ros.simulation.fake_nao import fetch_spoken
from fer_mask_ros.srv import DescribeFace

PKG = "fer_mask_ros"
ANIMATION = "animations/Stand/Gestures/Enthusiastic_4"


class HriHooksTest(unittest.TestCase):
    def setUp(self):
        self.url = f"tcp://127.0.0.1:{int(rospy.get_param('~port'))}"
        self.faces = {}  # face id -> (emotion, masked) published at 10 Hz
        self.pub = rospy.Publisher("/fer_mask/emotions", EmotionStamped, queue_size=20)
        self.stop = threading.Event()
        threading.Thread(target=self._publish, daemon=True).start()

    def tearDown(self):
        self.stop.set()

    def _publish(self):
        while not self.stop.is_set() and not rospy.is_shutdown():
            for face_id, (emotion, masked) in list(self.faces.items()):
                m = EmotionStamped(face_id=face_id, emotion=emotion, confidence=0.9, masked=masked)
                m.header.stamp = rospy.Time.now()
                self.pub.publish(m)
            time.sleep(0.1)

    def wait_spoken(self, predicate, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                spoken = fetch_spoken(self.url)
            except Exception:
                spoken = []
            found = [u for u in spoken if predicate(u)]
            if found:
                return found[0]
            time.sleep(0.3)
        return None

    def test_sentences_animation_and_describe_face(self):
        rospy.wait_for_service("/fer_mask/describe_face", timeout=60)
        describe = rospy.ServiceProxy("/fer_mask/describe_face", DescribeFace)
        answer = describe(face_id=0)
        self.assertFalse(answer.spoken)
        self.assertEqual(answer.message, "no face seen in the last 3 s")

        # the study's sentence, with the study's animation (ALAnimatedSpeech annotations)
        self.faces[1] = ("happy", False)
        said = self.wait_spoken(lambda u: "What a smile!" in u.text, 60)
        self.assertIsNotNone(said, "NAO never said the study's happy sentence")
        self.assertEqual(said.service, "ALAnimatedSpeech")
        self.assertEqual(said.text, f"^start({ANIMATION}) What a smile! ^wait({ANIMATION})")

        # within the 60 s cooldown the policy stays quiet, but describe_face speaks now
        self.faces[2] = ("sad", True)
        end = time.monotonic() + 30.0  # the event: the node has seen face 2 (a loaded machine may take a while)
        answer = describe(face_id=2)
        while not answer.spoken and "not seen" in answer.message and time.monotonic() < end:
            time.sleep(0.2)
            answer = describe(face_id=2)
        self.assertTrue(answer.spoken, answer.message)
        self.assertEqual((answer.face_id, answer.emotion, answer.masked), (2, "sad", True))
        self.assertEqual(answer.text, "Cheer up, it will be fine.")
        said = self.wait_spoken(lambda u: u.text == "Cheer up, it will be fine.", 10)
        self.assertIsNotNone(said, "describe_face did not make NAO speak")
        self.assertEqual(describe(face_id=99).message, "face 99 not seen in the last 3 s")


if __name__ == "__main__":
    rospy.init_node("test_hri_hooks")
    rostest.rosrun(PKG, "hri_hooks", HriHooksTest, sys.argv)
