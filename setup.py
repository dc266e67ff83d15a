"""Python packages of the catkin package fer_mask_ros (used by catkin_python_setup() in CMakeLists.txt).

fer_mask_ros      the core library (no rospy), also the home of the generated fer_mask_ros.msg / .srv
fer_mask_ros_ros  the ROS helpers shared by the nodes (message conversion, diagnostics, parameters)
"""
from setuptools import find_packages, setup

PACKAGES = find_packages(include=["fer_mask_ros", "fer_mask_ros.*", "fer_mask_ros_ros", "fer_mask_ros_ros.*"])

try:
    from catkin_pkg.python_setup import generate_distutils_setup
except ImportError:  # plain `pip install .` without catkin
    kwargs = dict(name="fer_mask_ros", version="0.1.0", packages=PACKAGES)
else:
    kwargs = generate_distutils_setup(packages=PACKAGES, package_dir={"": "."})

kwargs["package_data"] = {"fer_mask_ros": ["data/*.json", "data/*.avi", "data/*.mp4", "data/*.csv"]}
setup(**kwargs)
