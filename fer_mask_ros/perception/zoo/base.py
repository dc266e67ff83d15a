"""What every expression model of the zoo offers: faces of an image in, calibrated log-probabilities out.

Each member takes the whole image and the detector's faces, because each has its own input: our net a
grey 48 px aligned crop, the RAF-DB MobileFaceNet a 112 px ArcFace-aligned RGB face, the face-api net
a zero-padded square RGB face. Output rows follow the faces; columns follow labels.EMOTIONS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS

__all__ = ["Member", "MemberOutput", "log_softmax"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@dataclass
class MemberOutput:
    """One member's answer for N faces."""

    log_probs: np.ndarray  # (N, 7) natural-log probabilities, EMOTIONS order, the member's own temperature applied
    mask_prob: Optional[np.ndarray] = None  # (N,) P(mask) for members with a mask head, else None

    def __post_init__(self) -> None:
        self.log_probs = np.asarray(self.log_probs, dtype=np.float64).reshape(-1, len(EMOTIONS))
        if self.mask_prob is not None:
            self.mask_prob = np.asarray(self.mask_prob, dtype=np.float64).reshape(-1)


class Member:
    """Base class of a zoo member. Subclasses set `name`, `cost_ms` and implement `predict_faces`."""

    name = "member"
    #: Nominal cost of one face on one thread (ms), measured on the project's 2-core VM: the schedule uses it.
    cost_ms = 1.0
    #: True when the member reports P(mask) (our net); the fusion takes the mask flag from such a member.
    has_mask_head = False
    #: The model file the member runs (for summaries and model cards).
    model_path = ""

    def predict_faces(self, image_bgr: np.ndarray, detections: Sequence, flip: Optional[bool] = None) -> MemberOutput:
        """Log-probabilities for `detections` (perception.detection.Detection) of `image_bgr` (BGR uint8).

        flip: also average each face with its mirror image (None = the member's default for stills)."""
        raise NotImplementedError

    def predict_fer_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> MemberOutput:
        """Log-probabilities for FER2013-framed grey crops (N, 48, 48) uint8 (evaluation on FER2013)."""
        raise NotImplementedError
