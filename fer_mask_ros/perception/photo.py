"""Still photos: detect faces, classify each (the core of `classify` without --crops and of the ClassifyImage service).

`classify_image(pipeline, bgr)` is the one function for "detect + classify one still image": faces
sorted by detector score, numbered 1..N in that order, classified with the pipeline and no smoothing.
The emotion_classifier node's ClassifyImage service does exactly this, so the CLI and the service
give the same answers for the same image.

CSV, one row per face (photos without a face give no row; they are counted on stderr):

    path,face,x,y,w,h,score,emotion,confidence,masked,mask_probability,p_angry,...,p_surprise
"""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

from fer_mask_ros.labels import EMOTIONS

PHOTO_CSV_HEADER = (["path", "face", "x", "y", "w", "h", "score", "emotion", "confidence", "masked",
                     "mask_probability"] + [f"p_{e}" for e in EMOTIONS])


def classify_image(pipeline, image_bgr: np.ndarray, stamp: float = 0.0) -> list:
    """Detect + classify one still image -> [FaceEmotion], ids 1..N by detector score, no smoothing.

    Uses only `pipeline.detector` and `pipeline.classify`: the tracker and per-track evidence are untouched,
    so calling it never disturbs a live pipeline's state.
    """
    from fer_mask_ros.perception.pipeline import TrackedFace

    if pipeline.detector is None:
        raise RuntimeError("this pipeline has no detector")
    detections = detect_photo_faces(pipeline.detector, image_bgr)
    faces = [TrackedFace(track_id=i + 1, detection=d) for i, d in enumerate(detections)]
    return pipeline.classify(image_bgr, faces, stamp, smooth=False) if faces else []


#: A photo with no face found is searched once more on a canvas this much larger on each side
#: (as a fraction of its size): the detector misses faces that fill the whole frame (close-ups).
FILL_FRAME_PAD = 0.5
#: A small photo (longest side under this) with no face found yet is searched once more enlarged to this
#: side: web thumbnails of 100 px hold faces of 12 - 20 px, under the detector's smallest face.
SMALL_PHOTO_SIDE = 400


def detect_photo_faces(detector, image_bgr: np.ndarray, pad: float = FILL_FRAME_PAD,
                       small_side: int = SMALL_PHOTO_SIDE) -> list:
    """A still photo's faces, best detector score first. When none is found: a face that fills the frame
    is searched on a padded canvas (border pixels replicated), then, in a small photo, small faces on
    the photo enlarged to `small_side`; boxes and landmarks are mapped back to the photo's pixels."""
    import cv2

    found = detector.detect(image_bgr)
    h, w = image_bgr.shape[:2]
    if not found and pad > 0:
        py, px = int(round(h * pad)), int(round(w * pad))
        padded = cv2.copyMakeBorder(image_bgr, py, py, px, px, cv2.BORDER_REPLICATE)
        found = [_shifted(d, -px, -py) for d in detector.detect(padded)]
    if not found and small_side and 2 <= max(h, w) < small_side:
        factor = small_side / float(max(h, w))
        enlarged = cv2.resize(image_bgr, (max(1, round(w * factor)), max(1, round(h * factor))),
                              interpolation=cv2.INTER_CUBIC)
        found = [_scaled(d, 1.0 / factor) for d in detector.detect(enlarged)]
    return sorted(found, key=lambda d: -float(d.score))


def _scaled(detection, factor: float):
    from dataclasses import replace

    box = tuple(float(v) * factor for v in detection.box)
    landmarks = None if detection.landmarks is None else np.asarray(detection.landmarks) * factor
    return replace(detection, box=box, landmarks=landmarks)


def _shifted(detection, dx: float, dy: float):
    from dataclasses import replace

    x, y, w, h = (float(v) for v in detection.box)
    landmarks = None if detection.landmarks is None else np.asarray(detection.landmarks) + np.array([dx, dy])
    return replace(detection, box=(x + dx, y + dy, w, h), landmarks=landmarks)


def photo_rows(path: str, results: list) -> List[List[str]]:
    rows = []
    for r in results:
        x, y, w, h = (float(v) for v in r.detection.box)
        p = r.prediction
        rows.append([path, str(r.track_id), f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}",
                     f"{float(r.detection.score):.4f}", p.emotion, f"{float(p.confidence):.4f}",
                     "1" if p.masked else "0", f"{float(p.mask_probability):.4f}"]
                    + [f"{float(v):.4f}" for v in p.probabilities])
    return rows


def build_pipeline(model: Optional[str], threads: Optional[int], detector_model: Optional[str] = None,
                   score_threshold: Optional[float] = None, backend: str = "auto", detector: Optional[str] = None,
                   classifier: Optional[str] = None, **pipeline_kwargs):
    """Classifier zoo + detector (`detector`: centerface / yunet, None = config/face_detector.yaml's; `classifier`:
    a perception.zoo.CLASSIFIER_NAMES name, None = config/emotion_classifier.yaml's; `model` replaces our net)."""
    from fer_mask_ros.errors import DetectorError
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.perception.zoo import load_zoo

    zoo = load_zoo(classifier, model, threads, backend, still=True)
    kwargs = {"model_path": detector_model, "num_threads": threads or 1}
    if score_threshold is not None:
        kwargs["score_threshold"] = float(score_threshold)
    try:
        face_detector = make_detector(detector, **kwargs)
    except DetectorError as exc:
        raise DetectorError(str(exc).splitlines()[0]) from None
    return FacePipeline(detector=face_detector, zoo=zoo, **pipeline_kwargs)




_DEFAULT_PIPELINE = None


def detect_emotions(image_bgr, pipeline=None) -> List[dict]:
    """One image -> its faces with emotions, like the PyPI `fer` package's `FER().detect_emotions(img)`.

    `image_bgr`: a uint8 BGR, BGRA or grey array (as cv2.imread gives), or an image file path.
    Returns one dict per face, best detector score first::

        {"box": (x, y, w, h), "score": 0.93, "emotion": "happy", "confidence": 0.81,
         "emotions": {"angry": 0.01, ..., "surprise": 0.02}, "masked": True, "mask_probability": 0.97}

    `pipeline`: a FacePipeline with a detector and a classifier; default: the shipped models, made on
    the first call and kept for the next ones.
    """
    global _DEFAULT_PIPELINE
    from fer_mask_ros.imaging import read_image, to_bgr

    if pipeline is None:
        if _DEFAULT_PIPELINE is None:
            _DEFAULT_PIPELINE = build_pipeline(None, None)
        pipeline = _DEFAULT_PIPELINE
    image = read_image(image_bgr) if isinstance(image_bgr, (str, os.PathLike)) else image_bgr
    faces = []
    for r in classify_image(pipeline, to_bgr(image)):
        p = r.prediction
        faces.append({
            "box": tuple(int(round(float(v))) for v in r.detection.box), "score": float(r.detection.score),
            "emotion": p.emotion, "confidence": float(p.confidence),
            "emotions": {e: round(float(v), 4) for e, v in zip(EMOTIONS, p.probabilities)},
            "masked": bool(p.masked), "mask_probability": float(p.mask_probability),
        })
    return faces
