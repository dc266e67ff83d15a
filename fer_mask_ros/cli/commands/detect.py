"""`python -m fer_mask_ros detect --output faces.csv PATH...`: one CSV row per detected face.

PATH is an image file or a folder (searched recursively, files sorted).  CSV columns:
path,face,x,y,w,h,score,lex,ley,rex,rey,nx,ny,lmx,lmy,rmx,rmy
(face = 0-based index within the image, best score first; landmark cells are empty when
the detector gives none; left/right as seen in the image).  A readable image without a face gives
one row with only its path (every other cell empty), so every input is accounted for: a path
missing from the CSV was not readable.  Unreadable files are warned about and counted; the exit
status is non-zero only when no image at all could be read.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import List, Tuple

import numpy as np

from fer_mask_ros.errors import CommandError, ImageReadError, WriteError
from fer_mask_ros.imaging import IMAGE_EXTENSIONS as DATASET_IMAGE_EXTENSIONS
from fer_mask_ros.imaging import read_image, walk_files
from fer_mask_ros.safe_write import WriteFailures, shown, write_image

IMAGE_EXTENSIONS = DATASET_IMAGE_EXTENSIONS + (".pbm", ".jp2")
CSV_HEADER = "path,face,x,y,w,h,score,lex,ley,rex,rey,nx,ny,lmx,lmy,rmx,rmy".split(",")


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    parser.add_argument("--output", "-o", default="-", help="CSV file to write ('-' = stdout, the default)")
    parser.add_argument("--threshold", type=float, default=None, help="detector score threshold (default: tuned)")
    parser.add_argument("--min-face", type=int, default=None, help="smallest face height in pixels to look for")
    add_detector_argument(parser)
    parser.add_argument("--model", default=None,
                        help="detector ONNX model (default: the detector's shipped one, models/<detector>.onnx)")
    parser.add_argument("--annotate", metavar="DIR", default=None, help="also write annotated images to DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_detector_argument(parser) -> None:
    """`--detector centerface|yunet` (default: config/face_detector.yaml's `detector`, as the node)."""
    from fer_mask_ros.perception.detection import DETECTORS

    parser.add_argument("--detector", choices=sorted(DETECTORS), default=None,
                        help="face detector: centerface or yunet (about 5x cheaper; docs/DETECTION.md); "
                             "default: config/face_detector.yaml's `detector`")


def collect_images(paths: List[str]) -> List[Tuple[str, str]]:
    """(file, name under the annotate dir) for each image; raises CommandError for a missing path."""
    out: List[Tuple[str, str]] = []
    for path in paths:
        if os.path.isdir(path):
            out.extend((full, os.path.relpath(full, path)) for full in walk_files(path, IMAGE_EXTENSIONS))
        elif os.path.exists(path):
            out.append((path, os.path.basename(path)))
        else:
            raise CommandError(f"no such file or directory: {path}")
    return out


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def annotate(image: np.ndarray, detections) -> np.ndarray:
    import cv2

    out = image.copy()
    thick = max(1, int(round(max(image.shape[:2]) / 400)))
    for i, det in enumerate(detections):
        x, y, w, h = [int(round(v)) for v in det.box]
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), thick)
        cv2.putText(out, f"{i}:{det.score:.2f}", (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                    (0, 255, 0), thick)
        if det.landmarks is not None:
            colours = [(255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0)]
            for (px, py), colour in zip(det.landmarks, colours):
                cv2.circle(out, (int(round(px)), int(round(py))), thick + 1, colour, -1)
    return out


def run(args) -> int:
    from fer_mask_ros.errors import DetectorError
    from fer_mask_ros.perception.detection import DEFAULT_MIN_FACE, make_detector

    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:  # NaN fails this too
        raise CommandError(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.min_face is not None and args.min_face < 0:
        raise CommandError(f"--min-face must be at least 0, got {args.min_face}")
    files = collect_images(args.paths)
    if not files:
        raise CommandError("no image files found in: " + ", ".join(args.paths))
    try:
        detector = make_detector(
            args.detector,
            model_path=args.model,
            score_threshold=args.threshold,
            min_face=DEFAULT_MIN_FACE if args.min_face is None else args.min_face,
        )
    except DetectorError as exc:
        raise CommandError(str(exc)) from exc

    if args.annotate:
        if os.path.exists(args.annotate) and not os.path.isdir(args.annotate):
            raise CommandError(f"--annotate {args.annotate} exists and is not a folder")
        try:
            os.makedirs(args.annotate, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"--annotate {args.annotate}: {exc.strerror or exc}") from None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None

    from fer_mask_ros.cli.output import open_csv_output

    handle, must_close = open_csv_output(args.output)
    failures = WriteFailures((lambda line: tqdm.write(line, file=sys.stderr)) if tqdm is not None else None)
    unreadable = 0
    n_read = 0
    n_faces = 0
    n_without = 0  # images read in which no face was found
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        show = tqdm is not None and not args.no_progress and len(files) > 1
        iterator = tqdm(files, desc="detect", unit="img", file=sys.stderr, leave=False) if show else files
        for path, rel in iterator:
            try:
                image = read_image(path, "color")
            except ImageReadError as exc:
                image, reason = None, str(exc)
            if image is None:
                unreadable += 1
                message = f"warning: cannot read image {shown(reason if path in reason else path)}"
                if show:
                    iterator.write(message, file=sys.stderr)
                else:
                    print(message, file=sys.stderr)
                continue
            n_read += 1
            detections = detector.detect(image)
            for i, det in enumerate(detections):
                x, y, w, h = det.box
                row = [path, i, _fmt(x), _fmt(y), _fmt(w), _fmt(h), f"{det.score:.4f}"]
                if det.landmarks is not None:
                    row += [_fmt(float(v)) for v in np.asarray(det.landmarks).reshape(-1)[:10]]
                else:
                    row += [""] * 10
                writer.writerow(row)
            if not detections:  # read, no face: one row with the path only
                writer.writerow([path] + [""] * (len(CSV_HEADER) - 1))
                n_without += 1
            n_faces += len(detections)
            if args.annotate:
                target = os.path.join(args.annotate, rel)
                try:
                    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
                    write_image(target, annotate(image, detections))
                except OSError as exc:
                    failures.record(WriteError(f"cannot write {shown(target)}: {exc.strerror or exc}"))
                except WriteError as exc:
                    failures.record(exc)
    finally:
        if must_close:
            handle.close()
        else:
            handle.flush()
    where = "stdout" if args.output == "-" else args.output
    print(
        f"detect: {n_read} image(s) read ({n_without} without a face), {n_faces} face(s), {unreadable} unreadable "
        f"-> {where}"
        + (f"; {failures.count} annotated image(s) not written" if failures.count else ""),
        file=sys.stderr,
    )
    if n_read == 0:
        print("error: no image could be read", file=sys.stderr)
        return 1
    return 0
