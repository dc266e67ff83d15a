"""fer_mask_ros: masked-face expression recognition for NAO, as a ROS-free core library.

The public API, for use without ROS (the names load lazily, so `import fer_mask_ros.msg` stays cheap):

    >>> import cv2, fer_mask_ros
    >>> fer_mask_ros.detect_emotions(cv2.imread("photo.jpg"))
    [{'box': (84, 40, 96, 121), 'score': 0.93, 'emotion': 'happy', 'confidence': 0.81, 'emotions': {...},
      'masked': True, 'mask_probability': 0.97}]

FacePipeline, FaceDetector and EmotionClassifier are the parts (video: `FacePipeline.process(bgr, stamp)`
tracks and smooths; `make_detector()` is the configured detector, YuNet by default, `FaceDetector()` CenterFace);
EMOTIONS is the label order of every probability vector. The package layout is in docs/ARCHITECTURE.md; the
ROS side is fer_mask_ros.ros (with the catkin-generated fer_mask_ros.msg / .srv).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "detect_emotions": "fer_mask_ros.perception.photo",
    "classify_image": "fer_mask_ros.perception.photo",
    "FacePipeline": "fer_mask_ros.perception.pipeline",
    "FaceDetector": "fer_mask_ros.perception.detection",
    "make_detector": "fer_mask_ros.perception.detection",
    "EmotionClassifier": "fer_mask_ros.perception.classifier",
    "EMOTIONS": "fer_mask_ros.labels",
    "read_image": "fer_mask_ros.imaging",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):  # PEP 562: import the module behind a public name on first use
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fer_mask_ros' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
