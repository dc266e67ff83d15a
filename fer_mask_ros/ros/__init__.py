"""The ROS side: everything that imports rospy, rosbag, genpy, *_msgs or fer_mask_ros.msg / .srv.

It imports the core; the core never imports it (test/unit/test_architecture.py).
"""
