"""`classify`: classify face crops (`--crops`), or detect and classify faces in photos.

Crop mode writes one CSV row per image:

    path,emotion,confidence,masked,mask_probability,p_angry,...,p_surprise

`masked` is 1 when mask_probability >= the classifier's mask threshold (0.5), else 0; floats
have 4 decimals. Images are read with imaging.read_image, preprocessed to 48x48 grey
and run through `predict_batch` in batches. Unreadable images are skipped with a warning on stderr and counted.

Photo mode (no `--crops`: detect faces, classify, annotate) is `classify_photos(args)`; it
uses perception/photo.py (classify_image), as the ClassifyImage service does.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from fer_mask_ros.cli.commands.detect import add_detector_argument
from fer_mask_ros.cli.output import open_csv_output
from fer_mask_ros.errors import CommandError, ImageReadError, WriteError
from fer_mask_ros.imaging import list_image_files, read_image, to_bgr
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.classifier import load_classifier, progress

CSV_HEADER = ["path", "emotion", "confidence", "masked", "mask_probability"] + [f"p_{e}" for e in EMOTIONS]
MASK_THRESHOLD = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files or folders (folders are searched recursively)")
    parser.add_argument("--crops", action="store_true",
                        help="inputs are face crops: classify each whole image (no face detection)")
    parser.add_argument("--output", "-o", default="-", metavar="FILE",
                        help="CSV file to write; '-' (default) writes to stdout")
    parser.add_argument("--model", default=None, metavar="FILE", help="model file (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=256, help="faces per inference batch (default 256)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: library default)")
    add_backend_argument(parser)
    add_detector_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--annotate-dir", default=None, metavar="DIR",
                        help="photo mode: write an annotated copy of each photo into DIR")


# ---------------------------------------------------------------- shared helpers (also used by `evaluate`)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """--classifier (which zoo member, or the fusion) and --backend (our net's runtime)."""
    from fer_mask_ros.config import node_default
    from fer_mask_ros.perception.classifier import CLASSIFIER_BACKENDS
    from fer_mask_ros.perception.zoo import CLASSIFIER_NAMES

    streams, stills = (node_default("emotion_classifier", k) for k in ("classifier", "still_classifier"))
    parser.add_argument("--classifier", choices=CLASSIFIER_NAMES, default=None, metavar="NAME",
                        help=f"expression model: {', '.join(CLASSIFIER_NAMES)} (fusion: every member, fused by mask "
                             f"condition; default {stills} for photos, {streams} for crops and videos; "
                             f"config/emotion_classifier.yaml; models/ZOO.md)")

    parser.add_argument("--backend", choices=CLASSIFIER_BACKENDS, default="auto",
                        help="classifier runtime: auto (the int8 ONNX copy, else the fp32 one, else torch), "
                             "int8, onnxruntime (fp32) or torch")


def load_crops(classifier, files: Sequence[str], warn=None) -> Tuple[List[str], np.ndarray, List[str]]:
    """Read + preprocess each file; returns (ok files, (K,48,48) uint8, skipped files)."""
    from fer_mask_ros.errors import ImageReadError

    ok, crops, skipped = [], [], []
    for path in files:
        try:
            crop = classifier.preprocess(read_image(path))
        except (ImageReadError, OSError, ValueError) as exc:
            skipped.append(path)
            if warn is not None:
                warn(path, exc)
            continue
        ok.append(path)
        crops.append(np.asarray(crop, dtype=np.uint8))
    arr = np.stack(crops) if crops else np.zeros((0, 48, 48), dtype=np.uint8)
    return ok, arr, skipped


#: photos without a face named on stderr one by one, then only counted
NAMED_NO_FACE = 20


def warn_unreadable(path: str, exc: Exception) -> None:
    from tqdm import tqdm

    from fer_mask_ros.analysis.sources import VIDEO_EXTENSIONS

    if str(path).lower().endswith(VIDEO_EXTENSIONS + (".bag",)):
        tqdm.write(f"warning: skipping {path}: a video, not a photo; for videos use: python -m fer_mask_ros analyze "
                   f"{path} --output DIR", file=sys.stderr)
        return
    reason = str(exc).strip() or type(exc).__name__
    if path not in reason:
        reason = f"{path}: {reason}"
    tqdm.write(f"warning: skipping unreadable image {reason}", file=sys.stderr)


# ---------------------------------------------------------------- crop mode


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _rows(files: Sequence[str], probs: np.ndarray, mask_prob: np.ndarray,
          threshold: float = MASK_THRESHOLD) -> Iterator[List[str]]:
    for path, p, m in zip(files, probs, mask_prob):
        best = int(np.argmax(p))
        yield [path, EMOTIONS[best], f"{float(p[best]):.4f}", "1" if float(m) >= threshold else "0",
               f"{float(m):.4f}"] + [f"{float(v):.4f}" for v in p]


def classify_crops(args) -> int:
    files = list_image_files(args.paths)
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    classifier = load_classifier(args.model, args.threads, args.backend)
    predictor = classifier
    if getattr(args, "classifier", None) not in (None, "fer_mask_net"):
        from fer_mask_ros.perception.zoo import make_zoo

        predictor = make_zoo(args.classifier, args.threads, classifier=classifier).crop_classifier()
    to_stdout = args.output == "-"
    threshold = float(getattr(classifier, "mask_threshold", MASK_THRESHOLD))
    n_done, skipped = 0, []
    handle, _ = open_csv_output(args.output)
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        with progress(len(files), "classify", args.no_progress) as bar:
            for chunk in _chunks(files, args.batch_size):
                ok, crops, bad = load_crops(classifier, chunk, warn=warn_unreadable)
                skipped.extend(bad)
                if ok:
                    probs, mask_prob = predictor.predict_batch(crops, batch_size=args.batch_size)
                    writer.writerows(_rows(ok, np.asarray(probs), np.asarray(mask_prob).reshape(-1), threshold))
                    n_done += len(ok)
                bar.update(len(chunk))
        handle.flush()
    finally:
        if not to_stdout:
            handle.close()
    where = "" if to_stdout else f" -> {args.output}"
    print(f"classified {n_done} images, skipped {len(skipped)} unreadable{where}", file=sys.stderr)
    if not files:
        print("warning: no image files found in the given paths", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- photo mode


def run(args) -> int:
    if args.crops:
        return classify_crops(args)
    list_image_files(args.paths)  # missing paths are reported first
    return classify_photos(args)


def classify_photos(args) -> int:
    """`classify PHOTO... [--output faces.csv] [--annotate-dir DIR]` without --crops."""
    from tqdm import tqdm

    from fer_mask_ros.analysis.render import draw_faces
    from fer_mask_ros.perception.photo import PHOTO_CSV_HEADER, build_pipeline, classify_image, photo_rows

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
                              getattr(args, "score_threshold", None), backend=getattr(args, "backend", "auto"),
                              detector=getattr(args, "detector", None), classifier=getattr(args, "classifier", None))
    n_faces, no_face, skipped, names, skipped_writes = 0, 0, 0, {}, 0
    handle, _ = open_csv_output(args.output)
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PHOTO_CSV_HEADER)
        for path in tqdm(files, desc="classify", unit="photo", file=sys.stderr, disable=args.no_progress,
                         dynamic_ncols=True, leave=False):
            try:
                image = read_image(path)
                bgr = to_bgr(image)  # grey / BGR / BGRA -> BGR
            except (ImageReadError, OSError, ValueError) as exc:
                skipped += 1
                warn_unreadable(path, exc)
                continue
            results = classify_image(pipeline, bgr)
            writer.writerows(photo_rows(path, results))
            n_faces += len(results)
            no_face += int(not results)
            if not results and no_face <= NAMED_NO_FACE:
                tqdm.write(f"no face found in {path}" + (" (further ones are only counted)"
                                                          if no_face == NAMED_NO_FACE else ""), file=sys.stderr)
            if annotate_dir:
                from fer_mask_ros.analysis.analyse import FaceRecord
                from fer_mask_ros.safe_write import write_image

                recs = [FaceRecord(0.0, 0, r.track_id, tuple(float(v) for v in r.detection.box), r.prediction.emotion,
                                   r.prediction.confidence, r.prediction.probabilities, r.prediction.masked,
                                   r.prediction.mask_probability) for r in results]
                target = os.path.join(annotate_dir, _annotated_name(path, names))
                try:  # never cv2.imwrite: it crashes on a name that is not UTF-8
                    write_image(target, draw_faces(bgr, recs))
                except WriteError as exc:
                    skipped_writes += 1
                    print(f"warning: {exc}", file=sys.stderr)
        handle.flush()
    finally:
        if not to_stdout:
            handle.close()
    where = "" if to_stdout else f" -> {args.output}"
    print(f"{len(files) - skipped} photos, {n_faces} faces ({no_face} photos without a face), "
          f"skipped {skipped} unreadable{where}"
          + (f"; {skipped_writes} annotated photo(s) not written" if skipped_writes else ""), file=sys.stderr)
    if not files:
        print("warning: no image files found in the given paths", file=sys.stderr)
    return 0


def _annotated_name(path: str, root_names: dict) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, n = f"{stem}.jpg", 2
    while name in root_names:
        name, n = f"{stem}_{n}.jpg", n + 1
    root_names[name] = path
    return name
