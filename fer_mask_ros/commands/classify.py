"""`classify`: classify face crops (`--crops`), or detect and classify faces in photos.

Crop mode writes one CSV row per image:

    path,emotion,confidence,masked,mask_probability,p_angry,...,p_surprise

`masked` is 1 when mask_probability >= the classifier's mask threshold (0.5), else 0; floats
have 4 decimals. Images are read with the classifier's loader, preprocessed to 48x48 grey
and run through `predict_batch` in batches. Unreadable images are skipped with a warning on stderr and counted.

Photo mode (no `--crops`: detect faces, classify, annotate) is `classify_photos(args)`; it
needs the detector pipeline (fer_mask_ros.pipeline).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from ..cli import CommandError
from ..datasets import walk_files
from ..labels import EMOTIONS

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
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--annotate-dir", default=None, metavar="DIR",
                        help="photo mode: write an annotated copy of each photo into DIR")


# ---------------------------------------------------------------- shared helpers (also used by `evaluate`)


def list_image_files(paths: Sequence[str]) -> List[str]:
    """Expand files/folders into image files: folders recursively and sorted, arguments in order,
    duplicates dropped. A file named explicitly is kept whatever its extension. Missing -> CommandError."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CommandError(f"no such file or folder: {missing[0]}{more}")
    found: List[str] = []
    seen = set()
    for path in paths:
        if os.path.isdir(path):
            files = walk_files(path)
        else:
            files = [path]
        for f in files:
            key = os.path.abspath(f)
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    from ..classifier import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="classifier runtime: auto (the int8 ONNX copy, else the fp32 one, else torch), "
                             "int8, onnxruntime (fp32) or torch")


def load_classifier(model_path, threads=None, backend="auto"):
    """EmotionClassifier for `model_path` (None = shipped model); ModelError -> CommandError."""
    from ..classifier import EmotionClassifier, ModelError

    if model_path is not None and not os.path.isfile(model_path):
        raise CommandError(f"model file not found: {model_path}")
    try:
        return EmotionClassifier(model_path=model_path, num_threads=threads, backend=backend)
    except ModelError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    except FileNotFoundError as exc:
        raise CommandError(f"model file not found: {exc.filename or model_path}") from None


def progress(total: int, desc: str, disable: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="face", file=sys.stderr, disable=disable, dynamic_ncols=True, leave=False)


def predict_in_batches(classifier, images: np.ndarray, batch_size: int, desc: str = "predict",
                       disable_progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """predict_batch over (N,48,48) uint8 with a tqdm bar on stderr -> (probs (N,7), mask_prob (N,))."""
    batch_size = max(1, int(batch_size))
    n = int(images.shape[0])
    probs = np.zeros((n, len(EMOTIONS)), dtype=np.float32)
    mask_prob = np.zeros((n,), dtype=np.float32)
    with progress(n, desc, disable_progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            p, m = classifier.predict_batch(images[start:stop], batch_size=batch_size)
            probs[start:stop] = np.asarray(p, dtype=np.float32).reshape(-1, len(EMOTIONS))
            mask_prob[start:stop] = np.asarray(m, dtype=np.float32).reshape(-1)
            bar.update(stop - start)
    return probs, mask_prob


def load_crops(classifier, files: Sequence[str], warn=None) -> Tuple[List[str], np.ndarray, List[str]]:
    """Read + preprocess each file; returns (ok files, (K,48,48) uint8, skipped files)."""
    from ..classifier import ImageReadError

    ok, crops, skipped = [], [], []
    for path in files:
        try:
            crop = classifier.preprocess(classifier_load_image(path))
        except (ImageReadError, OSError, ValueError) as exc:
            skipped.append(path)
            if warn is not None:
                warn(path, exc)
            continue
        ok.append(path)
        crops.append(np.asarray(crop, dtype=np.uint8))
    arr = np.stack(crops) if crops else np.zeros((0, 48, 48), dtype=np.uint8)
    return ok, arr, skipped


def classifier_load_image(path: str) -> np.ndarray:
    from ..classifier import load_image

    return load_image(path)


def warn_unreadable(path: str, exc: Exception) -> None:
    reason = str(exc).strip() or type(exc).__name__
    if path not in reason:
        reason = f"{path}: {reason}"
    from tqdm import tqdm

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
    to_stdout = args.output == "-"
    if not to_stdout:
        out_dir = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(out_dir):
            raise CommandError(f"output folder does not exist: {out_dir}")
    threshold = float(getattr(classifier, "mask_threshold", MASK_THRESHOLD))
    n_done, skipped = 0, []
    handle = sys.stdout if to_stdout else open(args.output, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        with progress(len(files), "classify", args.no_progress) as bar:
            for chunk in _chunks(files, args.batch_size):
                ok, crops, bad = load_crops(classifier, chunk, warn=warn_unreadable)
                skipped.extend(bad)
                if ok:
                    probs, mask_prob = classifier.predict_batch(crops, batch_size=args.batch_size)
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


def classify_photos(args) -> int:
    """Photo mode: detect faces in each photo, classify them, write rows/annotated images (fer_mask_ros.photos)."""
    from ..photos import classify_photos as run_photos

    return run_photos(args)


def run(args) -> int:
    if args.crops:
        return classify_crops(args)
    list_image_files(args.paths)  # missing paths are reported first
    return classify_photos(args)
