#!/usr/bin/env python3
"""ROS4HRI's own client, pyhri (>= 0.4: `from pyhri import HRIListener`), reads the demo graph's REP-155 faces.

The demo graph (demo.launch rep155:=true) plays the bundled clip on the fake NAO. An HRIListener, with the
reference frame the bridge sets in /humans/reference_frame, follows the faces; every face that stays long enough
must give its roi, cropped, aligned and landmarks, and its transform() and gaze_transform() (TF face_<id>,
gaze_<id>), and pyhri must log no warning (its "failed to transform face frame ..." comes through rospy's log,
which this test reads). pyhri is not packaged for Debian: it is taken from $PYHRI_SRC, else from
../shared/ros4hri/pyhri/src beside the repository (like the Makefile's HRI_MSGS_SRC). Without it, or without
hri_msgs or tf2_ros, the one test is named test_SKIPPED_... and says why (rostest's summary has no skip count).
"""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import unittest

import rospy
import rostest

PKG = "fer_mask_ros"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
PYHRI_SRC = os.environ.get("PYHRI_SRC") or os.path.join(os.path.dirname(REPO), "shared", "ros4hri", "pyhri", "src")
MIN_SEEN_S = 2.0  # a face tracked at least this long must have been read completely (generous for a loaded CI box)


def why_not_runnable():
    """None when pyhri, hri_msgs and tf2_ros import, else why this test cannot run."""
    from fer_mask_ros.ros.rep155 import hri_msgs_missing  # noqa: PLC0415

    reason = hri_msgs_missing()
    if reason:
        return f"hri_bridge is off: {reason}"
    try:
        import tf2_ros  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"tf2_ros is not installed ({exc}; Debian: python3-tf2-ros), pyhri needs it"
    if PYHRI_SRC not in sys.path:
        sys.path.insert(0, PYHRI_SRC)
    try:
        import pyhri  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"pyhri not found ({exc}): set PYHRI_SRC=<pyhri>/src or put pyhri 0.4.x at {PYHRI_SRC}"
    return None


class Warnings(logging.Handler):
    """Every WARN or worse logged through rospy in this process (pyhri logs through rospy)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records, self.records_lock = [], threading.Lock()  # not self.lock: logging.Handler holds that in emit

    def emit(self, record):
        with self.records_lock:
            self.records.append(f"{record.name}: {record.getMessage()}")

    def snapshot(self):
        with self.records_lock:
            return list(self.records)


class PyhriTest(unittest.TestCase):
    def test_pyhri_reads_every_face_without_a_warning(self):
        from pyhri import HRIListener  # noqa: PLC0415

        warnings = Warnings()
        logging.getLogger("rosout").addHandler(warnings)
        deadline = time.monotonic() + 90.0
        while not rospy.has_param("/humans/reference_frame") and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(rospy.has_param("/humans/reference_frame"), "hri_bridge set no /humans/reference_frame")
        reference = rospy.get_param("/humans/reference_frame")
        hri = HRIListener(reference_frame=reference)
        first_seen, last_seen, complete, problems = {}, {}, {}, []
        duration = float(rospy.get_param("~duration", 23.0))
        end = None
        while not rospy.is_shutdown() and time.monotonic() < (end or deadline):
            for fid, face in hri.faces.items():
                now = time.monotonic()
                first_seen.setdefault(fid, now)
                last_seen[fid] = now
                if end is None:
                    end = now + duration  # from the first face on
                if fid in complete or not face.valid:
                    continue
                parts = (face.roi, face.cropped, face.aligned, face.landmarks)
                if any(p is None for p in parts):
                    continue
                tf, gaze = face.transform(), face.gaze_transform()
                if tf.child_frame_id != face.frame or gaze.child_frame_id != face.gaze_frame:
                    problems.append(f"{fid}: transform {tf.child_frame_id!r}, gaze {gaze.child_frame_id!r}")
                    continue
                complete[fid] = (face.roi, face.cropped, face.aligned, face.landmarks, tf, gaze)
            time.sleep(0.1)
        hri.close()
        logging.getLogger("rosout").removeHandler(warnings)

        long_enough = sorted(f for f in first_seen if last_seen[f] - first_seen[f] >= MIN_SEEN_S)
        rospy.loginfo(f"REP155 PYHRI RESULT: reference frame {reference}; faces seen {sorted(first_seen)}; "
                      f"tracked >= {MIN_SEEN_S} s: {long_enough}; read completely: {sorted(complete)}; "
                      f"warnings: {len(warnings.snapshot())}")
        self.assertGreaterEqual(len(first_seen), 4, f"pyhri saw the faces {sorted(first_seen)}")
        self.assertEqual(problems, [])
        self.assertEqual([f for f in long_enough if f not in complete], [],
                         "faces tracked for seconds that pyhri could not read completely")
        self.assertEqual(warnings.snapshot(), [], "pyhri / rospy warned")
        for fid, (roi, cropped, aligned, landmarks, tf, gaze) in complete.items():
            self.assertTrue(0.0 <= roi.xmin < roi.xmax <= 1.0, (fid, roi))
            self.assertEqual(cropped.shape, (128, 128, 3))
            self.assertEqual(aligned.shape, (128, 128, 3))
            self.assertTrue(aligned.any(), f"{fid}: aligned image is black")
            self.assertEqual(len(landmarks.landmarks), 70)
            self.assertEqual(tf.header.frame_id, reference)
            self.assertGreater(tf.transform.translation.z, 0.1, f"{fid}: face not in front of the camera")
            self.assertEqual(gaze.header.frame_id, reference)


class PyhriSkipped(unittest.TestCase):
    def test_SKIPPED_pyhri_client(self):  # noqa: N802 - the name is what rostest's summary shows
        reason = why_not_runnable()
        rospy.logwarn(f"rep155_pyhri SKIPPED: {reason}")
        print(f"rep155_pyhri SKIPPED: {reason}")
        self.skipTest(reason)


if __name__ == "__main__":
    rospy.init_node("test_rep155_pyhri")
    runnable = why_not_runnable() is None
    rostest.rosrun(PKG, "rep155_pyhri", PyhriTest if runnable else PyhriSkipped, sys.argv)
