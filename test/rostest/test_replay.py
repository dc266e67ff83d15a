#!/usr/bin/env python3
"""Bag replay: the test writes a bag of the bundled clip's first segments (rosbag Python API, image
stamps = bag time), replay.launch plays it with --clock on simulated time, and the graph's outputs
match the clip labels and what the same FacePipeline computes offline on the same frames."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import os
import sys
import time
import unittest

import rosbag
import rospy
import rostest
from rosgraph_msgs.msg import Clock

from fer_mask_ros.imaging import read_video
from fer_mask_ros.simulation import clip
from fer_mask_ros.perception.detection import iou
from fer_mask_ros.msg import EmotionStamped, FaceArray
from fer_mask_ros.ros.convert import array_to_image, roi_from_box
from fer_rostest import LABELS, Collector, roi_box, score_emotions

PKG = "fer_mask_ros"
T0 = 1000.0  # bag time of the first frame
TOPIC = "/fer_mask/camera/front/image_raw"


class ReplayTest(unittest.TestCase):
    def test_replay_matches_labels_and_offline_pipeline(self):
        bag_path = rospy.get_param("~bag")
        seconds = float(rospy.get_param("~seconds", 13.5))
        fps = float(LABELS["fps"])
        frames = read_video(clip.DEFAULT_VIDEO, max_frames=int(seconds * fps))
        stamps = [rospy.Time.from_sec(T0 + i / fps) for i in range(len(frames))]
        emotions = Collector("/fer_mask/emotions", EmotionStamped)
        faces = Collector("/fer_mask/faces", FaceArray)
        clock = Collector("/clock", Clock)
        tmp = bag_path + ".part"
        with rosbag.Bag(tmp, "w") as bag:
            for frame, stamp in zip(frames, stamps):
                msg = array_to_image(frame[:, :, ::-1], "rgb8")
                msg.header.stamp = stamp
                msg.header.frame_id = "CameraTop_optical_frame"
                bag.write(TOPIC, msg, stamp)
        os.rename(tmp, bag_path)  # rosbag play (launch-prefix wait_for_file) starts now
        end_stamp = stamps[-1].to_sec()
        deadline = time.time() + seconds + 90.0
        while time.time() < deadline and not rospy.is_shutdown():
            c = clock.snapshot()
            if c and c[-1].clock.to_sec() >= end_stamp - 0.25:  # play stops its clock at the last message
                break
            time.sleep(0.2)
        time.sleep(2.0)  # last frames through the graph
        ems, fas = emotions.snapshot(), faces.snapshot()
        rospy.loginfo(f"replay: {len(frames)} frames, {len(fas)} FaceArrays, {len(ems)} EmotionStamped")
        self.assertGreaterEqual(len(fas), 0.8 * len(frames), "face_detector dropped too many frames")
        stamp_set = set(stamps)
        self.assertTrue(all(m.header.stamp in stamp_set for m in ems), "EmotionStamped header is not a bag image's")

        score = score_emotions(ems, lambda m: m.header.stamp.to_sec() - T0)
        rospy.loginfo(f"replay scores against the clip labels: {score}")
        self.assertGreaterEqual(score["match_rate"], 0.9, score)
        self.assertGreaterEqual(score["accuracy"], float(rospy.get_param("~min_accuracy", 0.6)), score)

        # the same pipeline offline, on the frames the graph processed, gives the same faces and labels
        from fer_mask_ros.perception.classifier import EmotionClassifier  # noqa: PLC0415
        from fer_mask_ros.perception.detection import make_detector  # noqa: PLC0415
        from fer_mask_ros.perception.pipeline import FacePipeline  # noqa: PLC0415

        pipeline = FacePipeline(detector=make_detector(), classifier=EmotionClassifier())  # the node's default
        processed = {m.header.stamp for m in fas}
        offline = {}
        for frame, stamp in zip(frames, stamps):
            if stamp in processed:
                offline[stamp] = pipeline.process(frame, stamp.to_sec())
        same_box = same_label = n = 0
        for m in ems:
            results = offline.get(m.header.stamp, [])
            if not results:
                continue
            best = max(results, key=lambda r: iou(r.detection.box, roi_box(m.roi)))
            n += 1
            same_box += iou(roi_box(roi_from_box(best.detection.box, 320, 240)), roi_box(m.roi)) > 0.9
            same_label += best.prediction.emotion == m.emotion
        rospy.loginfo(f"offline agreement: {n} faces, {same_box} same box, {same_label} same label")
        self.assertGreater(n, 0.5 * len(ems))
        self.assertGreaterEqual(same_box, 0.95 * n)
        self.assertGreaterEqual(same_label, 0.9 * n)


if __name__ == "__main__":
    rospy.init_node("test_replay")
    rostest.rosrun(PKG, "replay", ReplayTest, sys.argv)
