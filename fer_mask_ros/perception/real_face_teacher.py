"""The real-face expression model: OpenCV Zoo's MobileFaceNet trained on RAF-DB (Apache-2.0).

RAF-DB is thousands of real in-the-wild colour faces, so this model knows real people where our
FER2013-trained net knows FER2013. It costs about 12 ms per face (one thread), five times a live
frame's budget: it teaches our net in training (`train --real-teacher`) and can give a second
opinion on stills, never in the live path.

Input: a 112x112 RGB face warped by a similarity transform from its 5 landmarks onto the ArcFace
template, scaled to (x / 255 - 0.5) / 0.5. Output: 7 logits in our EMOTIONS order.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import cv2
import numpy as np

from fer_mask_ros.perception.classifier import softmax

__all__ = ["ARCFACE_TEMPLATE", "FER_CROP_LANDMARKS", "FACE_SIZE", "RealFaceTeacher", "align_face",
           "similarity_transform"]

FACE_SIZE = 112
#: Where the 5 landmarks (image-left eye, image-right eye, nose, image-left and image-right mouth corner)
#: lie in the model's 112x112 input (the ArcFace template, as the model's authors align).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
#: The same 5 points in a FER2013-framed 48x48 crop (our aligned crop): the median of the shipped
#: detector's landmarks on 595 FER2013 Training faces (of 600 tried) enlarged 4x on a padded canvas.
FER_CROP_LANDMARKS = np.array([[14.9, 19.5], [33.0, 19.3], [24.1, 29.1], [17.3, 35.7], [32.0, 35.5]],
                              dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) that maps `src` points onto `dst` in the least-squares
    sense (Umeyama 1991); deterministic, unlike a RANSAC fit."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rotation = u @ d @ vt
    var = (src_c ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(s) @ d) / var) if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rotation
    m[:, 2] = dst_mean - scale * rotation @ src_mean
    return m


def align_face(image: np.ndarray, landmarks: Sequence[Sequence[float]], size: int = FACE_SIZE) -> np.ndarray:
    """`image`'s face (BGR or grey) warped onto the ArcFace template from its 5 landmarks -> (size, size, 3) RGB."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"need 5 finite (x, y) landmarks, got shape {points.shape}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    m = similarity_transform(points, ARCFACE_TEMPLATE * (size / FACE_SIZE))
    face = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)


class RealFaceTeacher:
    """onnxruntime session of the RAF-DB MobileFaceNet; `logits(faces)` for aligned (N, 112, 112, 3) RGB faces."""

    def __init__(self, path: str, num_threads: int = 1) -> None:
        from fer_mask_ros.errors import ModelError

        if not os.path.isfile(path):
            raise ModelError(f"{path}: real-face teacher model not found (the RAF-DB MobileFaceNet ONNX file)")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(num_threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [3, FACE_SIZE, FACE_SIZE]:
            raise ModelError(f"{path}: expected one 1x3x{FACE_SIZE}x{FACE_SIZE} input, got "
                             f"{[list(i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        self.batched = not isinstance(inputs[0].shape[0], int)
        self.path = path

    def logits(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB aligned faces -> (N, 7) float32 logits (angry ... surprise)."""
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        x = ((faces.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2)
        if self.batched:  # the float copy takes any batch
            return self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0].astype(np.float32)
        out = np.empty((len(faces), 7), dtype=np.float32)
        for i in range(len(x)):  # the int8 graph has a fixed batch of 1
            out[i] = self.session.run(None, {self.input_name: np.ascontiguousarray(x[i:i + 1])})[0][0]
        return out

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        return softmax(self.logits(faces))

    def probabilities_of_face(self, image: np.ndarray, detection) -> np.ndarray:
        """Probabilities for a detected face of `image` (NaN without landmarks: the teacher cannot align it)."""
        landmarks = getattr(detection, "landmarks", None)
        if landmarks is None:
            return np.full(7, np.nan)
        return self.probabilities(align_face(image, landmarks))[0]

    def probabilities_of_crops(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities for FER2013-framed grey crops (N, 48, 48)."""
        return softmax(self.fer_crop_logits(crops).astype(np.float64))

    def face_logits(self, image: np.ndarray, landmarks: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Logits of one face of `image` given its 5 landmarks; None without landmarks."""
        if landmarks is None:
            return None
        return self.logits(align_face(image, landmarks))[0]

    def fer_crop_logits(self, crops: np.ndarray) -> np.ndarray:
        """Logits of FER2013-framed grey crops (N, 48, 48), aligned by the fixed FER_CROP_LANDMARKS."""
        crops = np.asarray(crops)
        scale = crops.shape[1] / 48.0
        faces = np.stack([align_face(c, FER_CROP_LANDMARKS * scale) for c in crops])
        return self.logits(faces)
