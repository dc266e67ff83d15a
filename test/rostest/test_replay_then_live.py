#!/usr/bin/env python3
"""replay.launch, then demo.launch on the same master (replay_then_live.test): live time after a replay,
the sim-time warning, the end of a replay, a clean end of the demo, and a missing bag."""
# ruff: noqa: I001 - isort cannot tell the generated fer_mask_ros.msg from the source package
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import unittest

import rosbag
import rospy
import rostest
from rosgraph_msgs.msg import Clock, Log
from sensor_msgs.msg import Image

from fer_mask_ros.imaging import read_video
from fer_mask_ros.msg import FaceArray
from fer_mask_ros.ros.convert import array_to_image
from fer_mask_ros.simulation import clip
from fer_rostest import Collector

PKG = "fer_mask_ros"
TOPIC = "/fer_mask/camera/front/image_raw"
T0 = 1000.0  # bag time of the first frame: far from wall time


def roslaunch(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """roslaunch on the test's master; output (stdout + stderr) in .stdout."""
    return subprocess.run(["roslaunch", PKG, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


class ReplayThenLiveTest(unittest.TestCase):
    def test_1_missing_bag_is_one_line(self):
        t0 = time.time()
        run = roslaunch("replay.launch", "bag:=/nonexistent/session.bag", timeout=60)
        self.assertNotEqual(run.returncode, 0, run.stdout)
        self.assertLess(time.time() - t0, 30.0)
        self.assertIn("cannot replay bag:=/nonexistent/session.bag: no such file", run.stdout)
        self.assertNotIn("process[", run.stdout, "nodes started for a missing bag")
        self.assertNotIn("Traceback", run.stdout)
        self.assertNotIn("RLException", run.stdout, "check_bag's one line is the whole message")

    def test_2_replay_then_live(self):
        fps = 10.0
        frames = read_video(clip.DEFAULT_VIDEO, max_frames=50)
        faces = Collector("/fer_mask/faces", FaceArray)
        clock = Collector("/clock", Clock)
        rosout = Collector("/rosout", Log)
        with tempfile.TemporaryDirectory() as tmp:
            bag_path = os.path.join(tmp, "session.bag")
            with rosbag.Bag(bag_path, "w") as bag:
                for i, frame in enumerate(frames):
                    stamp = rospy.Time.from_sec(T0 + i / fps)
                    msg = array_to_image(frame[:, :, ::-1], "rgb8")
                    msg.header.stamp, msg.header.frame_id = stamp, "CameraTop_optical_frame"
                    bag.write(TOPIC, msg, stamp)
            # replay stops by itself at the bag's end (required by default)
            replay = roslaunch("replay.launch", f"bag:={bag_path}", "output:=log", "delay:=4", timeout=150)
        self.assertEqual(replay.returncode, 0, replay.stdout[-3000:])
        self.assertNotIn("REQUIRED process", replay.stdout, "the replay did not end cleanly")
        replayed = faces.snapshot()
        self.assertTrue(replayed, "the replayed graph published no faces")
        self.assertTrue(all(abs(m.header.stamp.to_sec() - T0) < 10 for m in replayed), "replay: not bag time")
        self.assertTrue(rospy.get_param("/use_sim_time"), "replay.launch should run on simulated time")
        self.assertTrue(clock.snapshot() and clock.snapshot()[-1].clock.to_sec() > T0, "no /clock from the replay")
        no_clock = [m.msg for m in rosout.snapshot() if "no /clock" in m.msg]
        self.assertFalse(no_clock, "the replayed graph saw no clock")

        # live after the replay: /use_sim_time false again, wall-clock stamps, a clean end
        images = Collector(TOPIC, Image)
        live = subprocess.Popen(["roslaunch", PKG, "demo.launch", "duration:=15", "port:=19585", "output:=log"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = live.communicate(timeout=150)
        finally:
            if live.poll() is None:
                live.kill()
        self.assertEqual(live.returncode, 0, out[-3000:])
        self.assertFalse(rospy.get_param("/use_sim_time"), "demo.launch left /use_sim_time true")
        stamps = [m.header.stamp.to_sec() for m in images.snapshot()]
        self.assertTrue(stamps, "no live camera image")
        self.assertLess(abs(stamps[-1] - time.time()), 60.0, "live images are not on wall time")
        self.assertTrue(any(m.header.stamp.to_sec() > T0 + 1e6 for m in faces.snapshot()), "no live faces")
        # the console: a clean end, no qi info lines
        self.assertIn("NAO said", out)
        self.assertNotIn("REQUIRED process", out)
        self.assertNotIn("has died", out)
        self.assertNotIn("Traceback", out)
        self.assertFalse([ln for ln in out.splitlines() if ln.startswith("[I] ")], "qi info lines on the console")

    def test_3_sim_time_without_clock_warns(self):
        warnings = Collector("/rosout", Log)
        rospy.set_param("/use_sim_time", True)
        from catkin.find_in_workspaces import find_in_workspaces  # noqa: PLC0415 - what roslaunch uses

        exe = find_in_workspaces(search_dirs=["libexec"], project=PKG, path="emotion_speech", first_match_only=True)
        node = subprocess.Popen([exe[0], "__ns:=/simcheck", "_backend:=log"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60.0
            found = []
            while not found and time.time() < deadline:
                found = [m for m in warnings.snapshot() if m.name == "/simcheck/emotion_speech"
                         and m.level == Log.WARN and "use_sim_time is true but no /clock" in m.msg]
                time.sleep(0.5)
            self.assertTrue(found, "no sim-time warning from a node without /clock")
        finally:
            node.terminate()
            node.wait(20)
            rospy.set_param("/use_sim_time", False)


if __name__ == "__main__":
    rospy.init_node("test_replay_then_live")
    rostest.rosrun(PKG, "replay_then_live", ReplayThenLiveTest, sys.argv)
