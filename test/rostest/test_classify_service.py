#!/usr/bin/env python3
"""ClassifyImage service (/fer_mask/classify_image): a clip frame in rgb8, bgr8 and mono8 gives the
clip's face with its label; a blank image gives no face; an unknown encoding gives a service error."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import sys
import unittest

import cv2
import numpy as np
import rospy
import rostest

from fer_mask_ros.imaging import read_video
from fer_mask_ros.simulation import clip
from fer_mask_ros.perception.detection import iou
from fer_mask_ros.srv import ClassifyImage
from fer_mask_ros.ros.convert import array_to_image
from fer_rostest import LABELS, roi_box

PKG = "fer_mask_ros"


def clip_frame(index: int) -> np.ndarray:
    frames = read_video(clip.DEFAULT_VIDEO, max_frames=1, start=index)
    assert frames, f"cannot read frame {index} of {clip.DEFAULT_VIDEO}"
    return frames[0]


class ClassifyServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.wait_for_service("/fer_mask/classify_image", timeout=90)
        cls.call = rospy.ServiceProxy("/fer_mask/classify_image", ClassifyImage)

    def check_segment(self, seg, encoding):
        k = (seg["start_frame"] + seg["end_frame"]) // 2
        bgr = clip_frame(k)
        img = {"bgr8": bgr, "rgb8": bgr[:, :, ::-1], "mono8": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)}[encoding]
        msg = array_to_image(img, encoding)
        msg.header.stamp = rospy.Time(123, 456)
        msg.header.frame_id = "test_frame"
        res = self.call(msg).emotions
        self.assertEqual(len(res), len(seg["faces"]), f"segment {seg['index']} ({encoding}): {res}")
        right = 0
        for face in seg["faces"]:
            truth_box = face["boxes"][k - seg["start_frame"]]
            best = max(res, key=lambda e: iou(roi_box(e.roi), truth_box))
            self.assertGreater(iou(roi_box(best.roi), truth_box), 0.3)
            self.assertEqual(best.header.stamp, rospy.Time(123, 456))
            self.assertEqual(best.header.frame_id, "test_frame")
            self.assertAlmostEqual(sum(best.probabilities), 1.0, places=3)
            right += best.emotion == face["emotion"]
        return right, len(seg["faces"])

    def test_clip_frames(self):
        right = total = 0
        for seg in LABELS["segments"]:
            for enc in ("bgr8", "rgb8", "mono8"):
                r, n = self.check_segment(seg, enc)
                right, total = right + r, total + n
        rospy.loginfo(f"classify_image: {right}/{total} faces labelled right")
        self.assertGreaterEqual(right / total, float(rospy.get_param("~min_accuracy", 0.6)))

    def test_blank_image_has_no_face(self):
        msg = array_to_image(np.full((240, 320, 3), 128, np.uint8), "rgb8")
        self.assertEqual(len(self.call(msg).emotions), 0)

    def test_bad_encoding_is_an_error(self):
        msg = array_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
        msg.encoding = "not_an_encoding"
        with self.assertRaises(rospy.ServiceException):
            self.call(msg)


if __name__ == "__main__":
    rospy.init_node("test_classify_service")
    rostest.rosrun(PKG, "classify_service", ClassifyServiceTest, sys.argv)
