"""The RAF-DB MobileFaceNet (OpenCV Zoo, Apache-2.0): a 112 px RGB face warped onto the ArcFace template from the
detector's 5 landmarks. Knows real colour faces; never saw a mask. A face without landmarks gets NaN rows (the
fusion leaves the member out for it)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.real_face_teacher import FACE_SIZE, FER_CROP_LANDMARKS, RealFaceTeacher, align_face
from fer_mask_ros.perception.zoo.base import Member, MemberOutput, log_softmax

__all__ = ["MobileFaceNetMember"]


class MobileFaceNetMember(Member):
    name = "mobilefacenet"
    cost_ms = 11.0

    def __init__(self, path: str, num_threads: int = 1) -> None:
        self.net = RealFaceTeacher(path, num_threads=num_threads or 1)
        self.model_path = path

    def predict_inputs(self, faces: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        faces = np.asarray(faces).reshape(-1, FACE_SIZE, FACE_SIZE, 3)
        if len(faces) == 0:
            return MemberOutput(np.zeros((0, len(EMOTIONS))))
        logp = log_softmax(self.net.logits(faces))
        if flip:
            logp = (logp + log_softmax(self.net.logits(np.ascontiguousarray(faces[:, :, ::-1])))) / 2
        return MemberOutput(logp)

    def predict_fer_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        """FER2013 crops, aligned by the fixed landmarks of FER's framing (FER_CROP_LANDMARKS)."""
        crops = np.asarray(crops)
        if len(crops) == 0:
            return MemberOutput(np.zeros((0, len(EMOTIONS))))
        scale = crops.shape[1] / 48.0
        return self.predict_inputs(np.stack([align_face(c, FER_CROP_LANDMARKS * scale) for c in crops]), flip)

    def predict_faces(self, image_bgr: np.ndarray, detections: Sequence, flip: Optional[bool] = None) -> MemberOutput:
        out = np.full((len(detections), len(EMOTIONS)), np.nan)
        have = [i for i, d in enumerate(detections) if getattr(d, "landmarks", None) is not None]
        if have:
            faces = np.stack([align_face(image_bgr, detections[i].landmarks) for i in have])
            out[have] = self.predict_inputs(faces, flip).log_probs
        return MemberOutput(out)
