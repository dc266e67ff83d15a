"""The one pipeline: detect + track, then the zoo's members on the faces that are due + per-face evidence.

The face_detector node calls `detect`, the emotion_classifier node calls `classify`, and the
offline tools call `process` (both in turn), so the live graph, bag replay and offline
analysis compute the same thing from the same frames and stamps.

A stream (`classify(..., smooth=True)`) runs each member only on the faces its schedule says are due
(perception/schedule.py: new faces at once, then a rate per member) and adds the answers to the track's
evidence (perception/evidence.py); every face gets the fusion of its track's evidence, `fresh` says
whether a member classified it in this frame. A still (`smooth=False`) runs every member once, with
flip averaging, and fuses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from fer_mask_ros.config import node_default
from fer_mask_ros.perception.alignment import INPUT_SIZE, aligned_crop
from fer_mask_ros.perception.classifier import EmotionClassifier, Prediction
from fer_mask_ros.perception.detection import DEFAULT_NMS_THRESHOLD, Detection, FaceDetector, nms
from fer_mask_ros.perception.evidence import TrackEvidence
from fer_mask_ros.perception.schedule import ClassifySchedule
from fer_mask_ros.perception.tracking import ShotCutDetector, Tracker


@dataclass
class TrackedFace:
    track_id: int
    detection: Detection


@dataclass
class FaceEmotion:
    track_id: int
    detection: Detection
    prediction: Prediction  # the track's evidence when smoothing is on
    raw: Prediction  # the newest answers of the track's members (this frame's when fresh)
    fresh: bool = True  # a member classified this face in this frame


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
    """Detector, tracker, classifier (or zoo) and per-face evidence, each optional until used.

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
        crop_size: int = INPUT_SIZE,
        full_scan_interval: float = DEFAULT_FULL_SCAN_INTERVAL,
        shot_cuts: Any = "default",
        zoo: Any = None,
        schedule: Optional[ClassifySchedule] = None,
        half_life_s: Optional[float] = None,
        smoothing_timeout_s: Optional[float] = None,
    ) -> None:
        """classifier: an EmotionClassifier (the zoo is then fer_mask_net alone) or None when `zoo` is given;
        zoo: a perception.zoo.Zoo; schedule: default config/emotion_classifier.yaml's classify_hz;
        half_life_s / smoothing_timeout_s: the evidence's (default: the same file's)."""
        if zoo is None and hasattr(classifier, "fusion"):  # a perception.zoo.Zoo given as the classifier
            zoo, classifier = classifier, None
        if zoo is None and classifier is not None:
            from fer_mask_ros.perception.zoo import make_zoo

            zoo = make_zoo("fer_mask_net", classifier=classifier)
        if classifier is None and zoo is not None:
            classifier = getattr(zoo.members[zoo.mask_member], "classifier", None)
        self.detector = detector
        self.classifier = classifier
        self.zoo = zoo
        self.tracker = tracker if tracker is not None else Tracker()
        self.shot_cuts = ShotCutDetector() if isinstance(shot_cuts, str) else shot_cuts
        kwargs = {k: v for k, v in (("half_life_s", half_life_s), ("timeout_s", smoothing_timeout_s)) if v is not None}
        self.evidence = TrackEvidence(zoo.fusion if zoo is not None else None, **kwargs)
        self.schedule = schedule if schedule is not None else ClassifySchedule()
        self._newest: dict = {}  # track -> ({member: newest log-probabilities}, newest P(mask))
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

    def _prediction(self, probs: np.ndarray, mask_prob: float) -> Prediction:
        if self.classifier is not None:
            return self.classifier.to_prediction(probs, mask_prob)
        best = int(np.argmax(probs))
        from fer_mask_ros.labels import EMOTIONS

        return Prediction(EMOTIONS[best], float(probs[best]), np.asarray(probs, dtype=np.float64),
                          bool(mask_prob >= self.zoo.fusion.mask_threshold), float(mask_prob))

    def classify(
        self, image_bgr: np.ndarray, faces: List[TrackedFace], stamp: float, smooth: bool = True
    ) -> List[FaceEmotion]:
        if self.zoo is None:
            raise RuntimeError("this pipeline has no classifier")
        if not faces:
            return []
        if not smooth:  # a still: every member once, each face also mirrored
            outputs = self.zoo.predict(image_bgr, [f.detection for f in faces])
            probs, mask_probs = self.zoo.fuse(outputs)
            return [FaceEmotion(f.track_id, f.detection, self._prediction(p, float(m)),
                                self._prediction(p, float(m))) for f, p, m in zip(faces, probs, mask_probs)]
        return self._classify_stream(image_bgr, faces, float(stamp))

    def _classify_stream(self, image_bgr: np.ndarray, faces: List[TrackedFace], stamp: float) -> List[FaceEmotion]:
        zoo, evidence = self.zoo, self.evidence
        evidence._expire(stamp)
        # a face the evidence forgot (or never had the mask member's answer for) is classified by every member
        lost = [i for i, f in enumerate(faces) if f.track_id <= 0 or not evidence.has_mask(f.track_id)]
        order = zoo.run_order()
        due = self.schedule.due(stamp, [(f.track_id, f.detection.box) for f in faces], order, force=lost)
        fresh = [False] * len(faces)
        untracked = {}  # index -> ({member: log-probabilities}, P(mask)) of faces without a track id
        for member in order:
            idx = due.get(member, [])
            if not idx:
                continue
            # a stream takes one pass per face (no mirror image): it averages over frames instead
            out = zoo.members[member].predict_faces(image_bgr, [faces[i].detection for i in idx], flip=False)
            for j, i in enumerate(idx):
                tid = faces[i].track_id
                mask = None if out.mask_prob is None or member != zoo.mask_member else float(out.mask_prob[j])
                fresh[i] = True
                if tid <= 0:
                    entry = untracked.setdefault(i, ({}, 0.0))
                    entry[0][member] = out.log_probs[j]
                    untracked[i] = (entry[0], entry[1] if mask is None else mask)
                    continue
                evidence.add(tid, member, out.log_probs[j], mask, stamp)
                newest = self._newest.setdefault(tid, [{}, 0.0])
                newest[0][member] = out.log_probs[j]
                if mask is not None:
                    newest[1] = mask
        results = []
        for i, face in enumerate(faces):
            tid = face.track_id
            newest = untracked.get(i) if tid <= 0 else self._newest.get(tid)
            used = {m: lp[None, :] for m, lp in newest[0].items() if zoo.fusion.needs(m)} if newest else {}
            estimate = None if tid <= 0 else evidence.estimate(tid, stamp)
            raw = self._prediction(zoo.fusion.combine(used, np.array([newest[1]]))[0], newest[1]) if used else None
            prediction = raw if estimate is None else self._prediction(estimate[0], estimate[1])
            raw = raw if raw is not None else prediction
            results.append(FaceEmotion(tid, face.detection, prediction, raw, fresh[i]))
        if len(self._newest) > 4 * max(16, len(evidence)):  # bounded: drop tracks the evidence forgot
            self._newest = {t: v for t, v in self._newest.items() if t in evidence}
        return results

    def process(self, image_bgr: np.ndarray, stamp: float, smooth: bool = True) -> List[FaceEmotion]:
        return self.classify(image_bgr, self.detect(image_bgr, stamp), stamp, smooth=smooth)

    def reset(self) -> None:
        self._last_full_scan = self._last_stamp = None
        self.tracker.reset()
        if self.shot_cuts is not None:
            self.shot_cuts.reset()
        self.evidence.reset()
        self.schedule.reset()
        self._newest.clear()
