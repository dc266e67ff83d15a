#!/usr/bin/env python3
"""End to end on the simulated NAO: fake_nao (bundled clip) -> nao_camera -> face_detector ->
emotion_classifier -> emotion_speech (qi) -> fake NAO text to speech.

Checks against fer_mask_ros/data/demo_clip.json: emotions come for the clip's faces (boxes match),
with the right labels (with a tolerance), every header is a camera image header, and the fake NAO's
ALTextToSpeech received a sentence naming an emotion that was on screen.
"""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import time
import unittest

import rospy
import rostest
from sensor_msgs.msg import Image
from std_msgs.msg import String

from fer_mask_ros.interaction import policy as speech
from fer_mask_ros.msg import EmotionStamped, FaceArray
from fer_rostest import LABELS, Collector, score_emotions

PKG = "fer_mask_ros"


def sentence_emotion(text: str, language: str = "en"):
    """Which emotion a sentence names ("unsure" for the not-sure sentence), or None."""
    for emotion in LABELS_EMOTIONS:
        for masked in (False, True):
            if speech.sentence(emotion, masked, language) == text:
                return emotion
    if text == speech.sentence(speech.UNSURE, False, language):
        return speech.UNSURE
    return None


LABELS_EMOTIONS = sorted({f["emotion"] for s in LABELS["segments"] for f in s["faces"]} |
                         set(speech.SENTENCES["en"]))


class DemoGraphTest(unittest.TestCase):
    def test_graph_against_clip_labels(self):
        duration = float(rospy.get_param("~duration", 30.0))
        min_accuracy = float(rospy.get_param("~min_accuracy", 0.6))
        images = Collector("/fer_mask/camera/front/image_raw", Image)
        faces = Collector("/fer_mask/faces", FaceArray)
        emotions = Collector("/fer_mask/emotions", EmotionStamped)
        said = Collector("/fer_mask/fake_nao/said", String)
        deadline = time.time() + 60.0
        while not rospy.has_param("/fer_mask/fake_nao/clip_start") and time.time() < deadline:
            time.sleep(0.1)
        clip_start = float(rospy.get_param("/fer_mask/fake_nao/clip_start"))
        # wait for the first emotion (model loading), then watch one full loop of the clip
        while not emotions.snapshot() and time.time() < deadline and not rospy.is_shutdown():
            time.sleep(0.1)
        self.assertTrue(emotions.snapshot(), "no EmotionStamped within 60 s of start")
        end = time.time() + duration
        while time.time() < end and not rospy.is_shutdown():
            time.sleep(0.2)

        ems, imgs, fas = emotions.snapshot(), images.snapshot(), faces.snapshot()
        rospy.loginfo(f"{len(imgs)} images, {len(fas)} FaceArrays, {len(ems)} EmotionStamped")
        self.assertGreater(len(imgs), 5 * duration, "camera publishes too slowly")
        image_stamps = {m.header.stamp for m in imgs}
        self.assertTrue(all(m.header.stamp in image_stamps for m in fas[5:-5]), "FaceArray header not an image's")
        self.assertTrue(all(m.header.stamp in image_stamps for m in ems[5:-5]), "EmotionStamped header not an image's")
        self.assertTrue(all(m.header.frame_id == "CameraTop_optical_frame" for m in ems))
        for m in ems[:20]:
            self.assertEqual(list(m.labels), list(speech.EMOTIONS))
            self.assertAlmostEqual(sum(m.probabilities), 1.0, places=3)
            self.assertEqual(m.emotion, m.labels[max(range(7), key=lambda i: m.probabilities[i])])

        fps = float(LABELS["fps"])
        # the camera stamps on arrival: the frame shown is about half a frame older
        score = score_emotions(ems, lambda m: m.header.stamp.to_sec() - clip_start - 0.5 / fps)
        rospy.loginfo(f"scores against the clip labels: {score}")
        self.assertGreater(score["judged"], 30, score)
        self.assertGreaterEqual(score["match_rate"], 0.9, f"EmotionStamped boxes do not match the clip's: {score}")
        self.assertGreaterEqual(score["accuracy"], min_accuracy, f"labels: {score}")
        self.assertGreaterEqual(score["faces_right"], max(1, score["faces"] - 2), f"majority labels: {score}")

        # speech: at least one sentence, each naming an emotion shown in the few seconds before it was said
        texts = [m.data for m in said.snapshot()]
        rospy.loginfo(f"NAO said: {texts}")
        self.assertTrue(texts, "the fake NAO said nothing")
        from fer_mask_ros.simulation.fake_nao import fetch_spoken  # noqa: PLC0415

        spoken = [u.text for u in fetch_spoken(rospy.get_param("/fer_mask/fake_nao/url"))]
        self.assertEqual(spoken[:len(texts)], texts, "ALTextToSpeech record differs from /fake_nao/said")
        named = [sentence_emotion(t) for t in texts]
        self.assertNotIn(None, named, f"unknown sentences: {texts}")
        shown = {f["emotion"] for s in LABELS["segments"] for f in s["faces"]}
        self.assertTrue(any(e in shown for e in named), f"no sentence names an emotion of the clip: {texts}")


if __name__ == "__main__":
    rospy.init_node("test_demo_graph")
    rostest.rosrun(PKG, "demo_graph", DemoGraphTest, sys.argv)
