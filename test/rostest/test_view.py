#!/usr/bin/env python3
"""view.test: the viewer without a display writes the newest frames of its topic as JPEGs (~save_dir)."""
from __future__ import annotations

import os
import sys
import time
import unittest

import cv2
import rospy
import rostest

PKG = "fer_mask_ros"


class ViewTest(unittest.TestCase):
    def test_frames_saved(self):
        save_dir = rospy.get_param("~save_dir")
        start = time.time() - 30.0  # the nodes started a little before this test
        deadline = time.monotonic() + 30.0
        fresh = []
        while len(fresh) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            names = sorted(os.listdir(save_dir)) if os.path.isdir(save_dir) else []
            fresh = [n for n in names if os.path.getmtime(os.path.join(save_dir, n)) > start]
        self.assertGreaterEqual(len(fresh), 3, f"view wrote {fresh} into {save_dir}")
        image = cv2.imread(os.path.join(save_dir, fresh[-1]))
        self.assertEqual(image.shape, (240, 320, 3))


if __name__ == "__main__":
    rospy.init_node("test_view")
    rostest.rosrun(PKG, "view_saves_frames", ViewTest, sys.argv)
