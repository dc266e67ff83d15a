"""The face-api.js FaceExpressionNet (Vincent Mühler, MIT): a zero-padded square RGB face of 112 px, no alignment.

models/face_expression_faceapi.onnx is a conversion of face-api.js's original tfjs weights (see models/README.md).
Input float32 [N, 112, 112, 3] RGB 0..255 (the graph normalises); output 7 probabilities in the order neutral,
happy, sad, angry, fear, disgust, surprise, re-ordered here to labels.EMOTIONS.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import cv2
import numpy as np

from fer_mask_ros.errors import ModelError
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.zoo.base import Member, MemberOutput

__all__ = ["FACEAPI_ORDER", "FaceApiMember", "padded_square"]

FACEAPI_ORDER = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
_TO_OURS = [FACEAPI_ORDER.index(e) for e in EMOTIONS]
SIZE = 112


def padded_square(image_bgr: np.ndarray, box, size: int = SIZE) -> np.ndarray:
    """The face box of `image_bgr` cut out (clipped to the image), zero-padded to a centred square, resized to
    `size` -> (size, size, 3) RGB uint8 (face-api.js's own preparation)."""
    h, w = image_bgr.shape[:2]
    x, y, bw, bh = [float(v) for v in box]
    x0, y0 = int(max(0, np.floor(x))), int(max(0, np.floor(y)))
    x1, y1 = int(min(w, np.ceil(x + bw))), int(min(h, np.ceil(y + bh)))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, 3), np.uint8)
    face = image_bgr[y0:y1, x0:x1]
    if face.ndim == 2:
        face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    fh, fw = face.shape[:2]
    side = max(fh, fw)
    square = np.zeros((side, side, 3), np.uint8)
    oy, ox = (side - fh) // 2, (side - fw) // 2
    square[oy:oy + fh, ox:ox + fw] = face[:, :, :3]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(square, (size, size), interpolation=interp), cv2.COLOR_BGR2RGB)


class FaceApiMember(Member):
    name = "faceapi"
    cost_ms = 2.0

    def __init__(self, path: str, num_threads: int = 1) -> None:
        if not os.path.isfile(path):
            raise ModelError(f"model file not found: {path}")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(num_threads or 1))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.model_path = path

    def predict_inputs(self, faces: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        faces = np.asarray(faces, np.float32).reshape(-1, SIZE, SIZE, 3)
        if len(faces) == 0:
            return MemberOutput(np.zeros((0, len(EMOTIONS))))
        probs = self.session.run(None, {self.input_name: faces})[0].astype(np.float64)
        logp = np.log(np.clip(probs[:, _TO_OURS], 1e-12, 1.0))
        if flip:
            mirrored = self.session.run(None, {self.input_name: np.ascontiguousarray(faces[:, :, ::-1])})[0]
            logp = (logp + np.log(np.clip(mirrored.astype(np.float64)[:, _TO_OURS], 1e-12, 1.0))) / 2
        return MemberOutput(logp)

    def predict_fer_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        crops = np.asarray(crops)
        faces = [padded_square(np.dstack([c] * 3) if c.ndim == 2 else c, (0, 0, c.shape[1], c.shape[0]))
                 for c in crops]
        return self.predict_inputs(np.stack(faces) if faces else np.zeros((0, SIZE, SIZE, 3), np.uint8), flip)

    def predict_faces(self, image_bgr: np.ndarray, detections: Sequence, flip: Optional[bool] = None) -> MemberOutput:
        faces = np.stack([padded_square(image_bgr, d.box) for d in detections]) if detections else \
            np.zeros((0, SIZE, SIZE, 3), np.uint8)
        return self.predict_inputs(faces, flip)
