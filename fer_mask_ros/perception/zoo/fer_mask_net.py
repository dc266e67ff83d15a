"""Our network (MaskedFERNet): a grey 48 px aligned crop in, 7 emotions and P(mask) out; the cheap member."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fer_mask_ros.perception.alignment import INPUT_SIZE, aligned_crop
from fer_mask_ros.perception.zoo.base import Member, MemberOutput

__all__ = ["FerMaskNetMember"]


class FerMaskNetMember(Member):
    name = "fer_mask_net"
    cost_ms = 1.1
    has_mask_head = True

    def __init__(self, classifier) -> None:
        """classifier: a perception.classifier.EmotionClassifier (its calibration applies)."""
        self.classifier = classifier
        self.model_path = classifier.model_path

    def crops(self, image_bgr: np.ndarray, detections: Sequence) -> np.ndarray:
        if not detections:
            return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
        return np.stack([aligned_crop(image_bgr, d, size=INPUT_SIZE) for d in detections])

    def predict_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        probs, mask = self.classifier.predict_batch(crops, flip=flip)
        return MemberOutput(np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)), mask)

    def predict_fer_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        return self.predict_crops(crops, flip)

    def predict_faces(self, image_bgr: np.ndarray, detections: Sequence, flip: Optional[bool] = None) -> MemberOutput:
        return self.predict_crops(self.crops(image_bgr, detections), flip)
