"""Interaction logic: what NAO says and when (pure logic; no ROS, no robot)."""
