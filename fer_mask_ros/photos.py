"""Photo mode of `classify` (no --crops): detect faces in photos, classify each, CSV + annotated images.

`classify_image(pipeline, bgr)` is the one function for "detect + classify one still image": faces
sorted by detector score, numbered 1..N in that order, classified with the pipeline and no smoothing.
The emotion_classifier node's ClassifyImage service does exactly this, so the CLI and the service
give the same answers for the same image.

CSV, one row per face (photos without a face give no row; they are counted on stderr):

    path,face,x,y,w,h,score,emotion,confidence,masked,mask_probability,p_angry,...,p_surprise
"""
from __future__ import annotations

import csv
import os
import sys
from typing import List, Optional

import numpy as np

from .labels import EMOTIONS

PHOTO_CSV_HEADER = (["path", "face", "x", "y", "w", "h", "score", "emotion", "confidence", "masked",
                     "mask_probability"] + [f"p_{e}" for e in EMOTIONS])


def classify_image(pipeline, image_bgr: np.ndarray, stamp: float = 0.0) -> list:
    """Detect + classify one still image -> [FaceEmotion], ids 1..N by detector score, no smoothing.

    Uses only `pipeline.detector` and `pipeline.classify`: the tracker and smoother are untouched,
    so calling it never disturbs a live pipeline's state.
    """
    from .pipeline import TrackedFace

    if pipeline.detector is None:
        raise RuntimeError("this pipeline has no detector")
    detections = sorted(pipeline.detector.detect(image_bgr), key=lambda d: -float(d.score))
    faces = [TrackedFace(track_id=i + 1, detection=d) for i, d in enumerate(detections)]
    return pipeline.classify(image_bgr, faces, stamp, smooth=False) if faces else []


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


def _annotated_name(path: str, root_names: dict) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, n = f"{stem}.jpg", 2
    while name in root_names:
        name, n = f"{stem}_{n}.jpg", n + 1
    root_names[name] = path
    return name


def build_pipeline(model: Optional[str], threads: Optional[int], detector_model: Optional[str] = None,
                   score_threshold: Optional[float] = None):
    from .cli import CommandError
    from .commands.classify import load_classifier
    from .detection import DetectorError, FaceDetector
    from .pipeline import FacePipeline

    classifier = load_classifier(model, threads)
    kwargs = {"model_path": detector_model, "num_threads": threads or 1}
    if score_threshold is not None:
        kwargs["score_threshold"] = float(score_threshold)
    try:
        detector = FaceDetector(**kwargs)
    except DetectorError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    return FacePipeline(detector=detector, classifier=classifier)


def classify_photos(args) -> int:
    """`classify PHOTO... [--output faces.csv] [--annotate-dir DIR]` without --crops."""
    from tqdm import tqdm

    from .classifier import ImageReadError, load_image
    from .cli import CommandError
    from .commands.classify import list_image_files, warn_unreadable
    from .detection import to_bgr
    from .render import draw_faces

    files = list_image_files(args.paths)
    to_stdout = args.output == "-"
    if not to_stdout:
        out_dir = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(out_dir):
            raise CommandError(f"output folder does not exist: {out_dir}")
    annotate_dir = getattr(args, "annotate_dir", None)
    if annotate_dir:
        if os.path.exists(annotate_dir) and not os.path.isdir(annotate_dir):
            raise CommandError(f"--annotate-dir {annotate_dir} exists and is not a folder")
        os.makedirs(annotate_dir, exist_ok=True)
    pipeline = build_pipeline(args.model, args.threads, getattr(args, "detector_model", None),
                              getattr(args, "score_threshold", None))
    n_faces, no_face, skipped, names = 0, 0, 0, {}
    handle = sys.stdout if to_stdout else open(args.output, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PHOTO_CSV_HEADER)
        for path in tqdm(files, desc="classify", unit="photo", file=sys.stderr, disable=args.no_progress,
                         dynamic_ncols=True, leave=False):
            try:
                image = load_image(path)
                bgr = to_bgr(image)  # grey / BGR / BGRA -> BGR
            except (ImageReadError, OSError, ValueError) as exc:
                skipped += 1
                warn_unreadable(path, exc)
                continue
            results = classify_image(pipeline, bgr)
            writer.writerows(photo_rows(path, results))
            n_faces += len(results)
            no_face += int(not results)
            if annotate_dir:
                import cv2

                from .analysis import FaceRecord

                recs = [FaceRecord(0.0, 0, r.track_id, tuple(float(v) for v in r.detection.box), r.prediction.emotion,
                                   r.prediction.confidence, r.prediction.probabilities, r.prediction.masked,
                                   r.prediction.mask_probability) for r in results]
                target = os.path.join(annotate_dir, _annotated_name(path, names))
                if not cv2.imwrite(target, draw_faces(bgr, recs)):
                    raise CommandError(f"cannot write {target}")
        handle.flush()
    finally:
        if not to_stdout:
            handle.close()
    where = "" if to_stdout else f" -> {args.output}"
    print(f"{len(files) - skipped} photos, {n_faces} faces ({no_face} photos without a face), "
          f"skipped {skipped} unreadable{where}", file=sys.stderr)
    if not files:
        print("warning: no image files found in the given paths", file=sys.stderr)
    return 0
