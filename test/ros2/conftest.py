"""ROS 2 tests (make test-ros2): real rclpy from .venv-ros2, on a random ROS_DOMAIN_ID, discovery on localhost only."""
from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))  # 0..101: no clash with ephemeral ports
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

rclpy = pytest.importorskip("rclpy", reason="ROS 2 rclpy is not installed here (make setup-ros2; make test-ros2)")
pytest.importorskip("fer_mask_ros_interfaces", reason="fer_mask_ros_interfaces is not built (make setup-ros2)")


@pytest.fixture
def ros():
    """An initialised rclpy (the default context), shut down after the test."""
    rclpy.init(args=[])
    try:
        yield rclpy
    finally:
        rclpy.try_shutdown()
