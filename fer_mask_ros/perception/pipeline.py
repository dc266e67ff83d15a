"""The one pipeline: detect + track, then aligned crop + classify + smooth.

The face_detector node calls `detect`, the emotion_classifier node calls `classify`, and the
offline tools call `process` (both in turn), so the live graph, bag replay and offline
analysis compute the same thing from the same frames and stamps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from fer_mask_ros.config import node_default
from fer_mask_ros.perception.alignment import INPUT_SIZE, aligned_crop
from fer_mask_ros.perception.classifier import EmotionClassifier, Prediction
from fer_mask_ros.perception.detection import DEFAULT_NMS_THRESHOLD, Detection, FaceDetector, nms
from fer_mask_ros.perception.tracking import ProbabilitySmoother, ShotCutDetector, Tracker


@dataclass
class TrackedFace:
    track_id: int
    detection: Detection


@dataclass
class FaceEmotion:
    track_id: int
    detection: Detection
    prediction: Prediction  # smoothed over the track when smoothing is on
    raw: Prediction  # this frame alone


#: Default seconds between full-frame detector scans while faces are tracked (0 = every frame).
DEFAULT_FULL_SCAN_INTERVAL = float(node_default("face_detector", "full_scan_interval"))  # config/face_detector.yaml
#: Tracked faces are re-found in small windows only while that costs at most this share of a full scan.
REGION_BUDGET = 0.6


def _distinct(detections: List[Detection]) -> List[Detection]:
    """Drop re-found faces that are the same face as a better one (two tracks converging)."""
    if len(detections) < 2:
        return list(detections)
    boxes = np.array([d.xyxy for d in detections], np.float32)
    scores = np.array([d.score for d in detections], np.float32)
    return [detections[i] for i in sorted(nms(boxes, scores, DEFAULT_NMS_THRESHOLD))]


class FacePipeline:
    """Detector, tracker, classifier and smoother, each optional until used.

    full_scan_interval: while every tracked face was found in the previous frame, frames closer than
    this (stamp seconds) to the last full-frame scan only re-find those faces in small windows around
    their predicted boxes (`FaceDetector.detect_near`, about a quarter of the cost at QVGA).  A face that
    is not re-found, a backwards stamp, or too many faces for the window budget trigger a full scan on
    the same frame, and new faces are picked up at the next full scan.  0 scans every frame.

    shot_cuts: a `ShotCutDetector` (default: config/face_detector.yaml's settings; None = off); a cut
    ends every track before the frame is scanned in full, so no id passes across a cut.  `detect`
    gives the tracker the frame, so it also compares appearance signatures.
    """

    def __init__(
        self,
        detector: Optional[FaceDetector] = None,
        classifier: Optional[EmotionClassifier] = None,
        tracker: Optional[Tracker] = None,
        smoother: Optional[ProbabilitySmoother] = None,
        crop_size: int = INPUT_SIZE,
        full_scan_interval: float = DEFAULT_FULL_SCAN_INTERVAL,
        shot_cuts: Any = "default",
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker if tracker is not None else Tracker()
        self.shot_cuts = ShotCutDetector() if isinstance(shot_cuts, str) else shot_cuts
        self.smoother = smoother if smoother is not None else ProbabilitySmoother()
        self.mask_smoother = ProbabilitySmoother(alpha=self.smoother.alpha, timeout_s=self.smoother.timeout_s)
        self.crop_size = crop_size
        if not full_scan_interval >= 0:
            raise ValueError(f"full_scan_interval must be >= 0 seconds, got {full_scan_interval}")
        self.full_scan_interval = float(full_scan_interval)
        self._last_full_scan: Optional[float] = None
        self._last_stamp: Optional[float] = None
        self.full_scans = 0
        self.region_scans = 0

    def _expected_boxes(self, image_bgr: np.ndarray, stamp: float) -> Optional[List[tuple]]:
        """Predicted boxes of the tracked faces when this frame may skip the full scan, else None."""
        last_full, last = self._last_full_scan, self._last_stamp
        if self.full_scan_interval <= 0 or last_full is None or last is None:
            return None
        if not hasattr(self.detector, "detect_near") or not isinstance(image_bgr, np.ndarray) or image_bgr.ndim < 2:
            return None  # a full scan (which also reports bad images clearly)
        if not (last_full <= stamp < last_full + self.full_scan_interval - 1e-3) or stamp < last:
            return None
        tracks = self.tracker.tracks
        if not tracks or any(t.last_seen != last for t in tracks):
            return None
        h, w = image_bgr.shape[:2]
        if len(tracks) * self.detector.region_pixels() > REGION_BUDGET * self.detector.network_pixels(h, w):
            return None
        return [t.predicted_box(stamp) for t in tracks]

    def detect(self, image_bgr: np.ndarray, stamp: float) -> List[TrackedFace]:
        if self.detector is None:
            raise RuntimeError("this pipeline has no detector")
        stamp = float(stamp)
        detections = None
        if self.shot_cuts is not None and self.shot_cuts.update(image_bgr):
            self.tracker.split()  # no tracks left: this frame gets a full scan
        expected = self._expected_boxes(image_bgr, stamp)
        if expected is not None:
            found = self.detector.detect_near(image_bgr, expected)
            if all(d is not None for d in found):
                detections = _distinct(found)
                self.region_scans += 1
        if detections is None:
            detections = self.detector.detect(image_bgr)
            self._last_full_scan = stamp
            self.full_scans += 1
        self._last_stamp = stamp
        image = image_bgr if isinstance(image_bgr, np.ndarray) else None
        tracks = self.tracker.update(detections, stamp, image)
        return [TrackedFace(t.track_id, d) for t, d in zip(tracks, detections)]

    def crops(self, image_bgr: np.ndarray, faces: List[TrackedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.crop_size, self.crop_size), np.uint8)
        return np.stack([aligned_crop(image_bgr, f.detection, size=self.crop_size) for f in faces])

    def classify(
        self, image_bgr: np.ndarray, faces: List[TrackedFace], stamp: float, smooth: bool = True
    ) -> List[FaceEmotion]:
        if self.classifier is None:
            raise RuntimeError("this pipeline has no classifier")
        if not faces:
            return []
        # a stream (smoothing over frames) takes one pass per face; a still also averages the mirror image
        probs, mask_probs = self.classifier.predict_batch(self.crops(image_bgr, faces), flip=False if smooth else None)
        results = []
        for face, p, m in zip(faces, probs, mask_probs):
            raw = self.classifier.to_prediction(p, float(m))
            if smooth:
                p_s = self.smoother.update(face.track_id, p, stamp)
                m_s = float(self.mask_smoother.update(face.track_id, np.array([1.0 - m, m]), stamp)[1])
                prediction = self.classifier.to_prediction(p_s, m_s)
            else:
                prediction = raw
            results.append(FaceEmotion(face.track_id, face.detection, prediction, raw))
        return results

    def process(self, image_bgr: np.ndarray, stamp: float, smooth: bool = True) -> List[FaceEmotion]:
        return self.classify(image_bgr, self.detect(image_bgr, stamp), stamp, smooth=smooth)

    def reset(self) -> None:
        self._last_full_scan = self._last_stamp = None
        self.tracker.reset()
        if self.shot_cuts is not None:
            self.shot_cuts.reset()
        self.smoother.reset()
        self.mask_smoother.reset()
