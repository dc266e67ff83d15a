"""Python package of the catkin package fer_mask_ros (catkin_python_setup() in CMakeLists.txt), and a plain
`pip install .` of the ROS-free core for machines without ROS.

fer_mask_ros       the core library and CLI (no ROS), also the home of the generated fer_mask_ros.msg / .srv
fer_mask_ros.ros   the ROS side: node helpers, rosbag reader, graph bench, soak (imports rospy; unused without ROS)

Without catkin (pip), the shipped models/ and config/ are copied into the installed package as
fer_mask_ros/_shipped/ (fer_mask_ros.config finds them there), so `python -m fer_mask_ros classify PHOTO`
works out of the box. torch is an extra (`pip install .[train]`: train, export, the torch backend);
inference needs only onnxruntime. matplotlib is an extra too (`.[plots]`; without it analyze draws its timeline
with OpenCV). requirements.txt pins the tested inference set (what make setup / make demo install into .venv);
requirements-dev.txt adds torch, onnx, matplotlib, pytest and ruff (what make test adds).
"""
import glob
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = find_packages(include=["fer_mask_ros", "fer_mask_ros.*"])
SHIPPED = {"models": ("*.pt", "*.onnx", "*.json", "LICENSE-*"), "config": ("*.yaml",)}


class BuildPyWithShippedFiles(build_py):
    """build_py, plus models/ (weights, fusion, licence notices) and config/*.yaml into fer_mask_ros/_shipped/
    (pip installs only)."""

    def run(self):
        super().run()
        for folder, patterns in SHIPPED.items():
            dest = os.path.join(self.build_lib, "fer_mask_ros", "_shipped", folder)
            self.mkpath(dest)
            for pattern in patterns:
                for path in sorted(glob.glob(os.path.join(HERE, folder, pattern))):
                    self.copy_file(path, os.path.join(dest, os.path.basename(path)))


try:
    from catkin_pkg.python_setup import generate_distutils_setup
except ImportError:  # plain `pip install .` without catkin
    kwargs = dict(
        name="fer_mask_ros", version="0.1.0", packages=PACKAGES, python_requires=">=3.8",
        # inference (classify, detect, analyze, live, the API, the nodes) runs on onnxruntime: torch is for training
        install_requires=["numpy>=1.20,<2", "opencv-python-headless>=4.5", "onnxruntime>=1.15",
                          "tqdm", "pyyaml"],
        # matplotlib draws the nicer timelines and evaluate's figures; without it timelines are drawn with OpenCV
        extras_require={"train": ["torch>=2.0", "matplotlib"], "export": ["torch>=2.0", "onnx"], "nao": ["qi"],
                        "plots": ["matplotlib"]},
        entry_points={"console_scripts": ["fer-mask-ros = fer_mask_ros.cli:main"]},
        cmdclass={"build_py": BuildPyWithShippedFiles},
    )
else:
    kwargs = generate_distutils_setup(packages=PACKAGES, package_dir={"": "."})

kwargs["package_data"] = {"fer_mask_ros": ["data/*.json", "data/*.avi", "data/*.mp4", "data/*.csv"]}
setup(**kwargs)
