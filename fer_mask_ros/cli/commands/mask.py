"""`mask`: write masked copies of face images or whole dataset folders.

    python -m fer_mask_ros mask INPUT --output OUT [--seed 0] [--kind KIND] [--aligned|--detect] [--limit N]

INPUT is one image (OUT is then a file path, or an existing folder / a path ending in '/'
to write into) or a folder: its tree is mirrored under OUT with the same file names, so
FER2013's `train|test/<label>/` layout (or any other) stays usable as a dataset.

Placement: aligned face crops (small square images, at most 128 px, or `--aligned`) get the
geometric placement of masking.apply_mask; larger photos (or `--detect`) go through the face
detector and every face is masked from its 5 landmarks. Photos in which no face is found are
not written (they would be unmasked) and are counted.

Each file draws from np.random.default_rng([seed, crc32(relative path)]), so a run is
reproducible file by file whatever the order, the --limit or the other files in the tree.
Unreadable files are warned about and counted; the last line is a summary.
"""
from __future__ import annotations

import argparse
import os
import sys
import zlib
from typing import List, Optional, Tuple

import numpy as np

from fer_mask_ros.errors import CommandError, WriteError
from fer_mask_ros.imaging import IMAGE_EXTENSIONS, walk_files
from fer_mask_ros.safe_write import shown

#: Square images up to this side are taken as aligned face crops in the automatic mode.
ALIGNED_MAX_SIDE = 128


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fer_mask_ros.learning.masking import MASK_KINDS

    parser.add_argument("input", metavar="INPUT", help="an image file, or a folder (searched recursively)")
    parser.add_argument("--output", "-o", required=True, metavar="OUT",
                        help="output file or folder; a folder INPUT is mirrored under OUT")
    parser.add_argument("--seed", type=int, default=0, help="random seed (per file: seed + relative path)")
    parser.add_argument("--kind", choices=MASK_KINDS, default=None, help="mask kind (default: a random kind per image)")
    place = parser.add_mutually_exclusive_group()
    place.add_argument("--aligned", action="store_true",
                       help="treat every image as an aligned face crop (geometric placement)")
    place.add_argument("--detect", action="store_true",
                       help="detect faces in every image and place masks from landmarks")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="mask only the first N images")
    parser.add_argument("--detector-model", default=None, metavar="FILE", help="detector ONNX model (default: shipped)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _rel_key(rel: str) -> str:
    return rel.replace(os.sep, "/")


def file_rng(seed: int, rel: str) -> np.random.Generator:
    """The generator for one file: independent of the order and of the other files."""
    key = _rel_key(rel).encode("utf-8", "surrogateescape")  # a name that is not UTF-8: its own bytes
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key)])


def collect(input_path: str, output: str) -> List[Tuple[str, str]]:
    """(source file, path relative to INPUT) pairs, sorted; files under OUT are left out."""
    return [(full, os.path.relpath(full, input_path)) for full in walk_files(input_path, exclude=output)]


def is_aligned_crop(image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    return max(h, w) <= ALIGNED_MAX_SIDE and abs(h - w) <= 0.1 * max(h, w)


def _write(path: str, image: np.ndarray) -> str:
    """Write through the safe writer (atomic, any file name); the path written. WriteError on failure."""
    from fer_mask_ros.safe_write import write_image

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    return write_image(path, image)


def _not_images(src: str, output: str, images: set) -> List[str]:
    """Files under src (not hidden, not under output) that are not among `images`."""
    skip = os.path.abspath(output)
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and os.path.abspath(os.path.join(dirpath, d)) != skip)
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                   if not f.startswith(".") and os.path.join(dirpath, f) not in images)
    return out


class _Masker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._detector = None

    def detector(self):
        if self._detector is None:
            from fer_mask_ros.errors import DetectorError
            from fer_mask_ros.perception.detection import FaceDetector

            try:
                self._detector = FaceDetector(model_path=self.args.detector_model)
            except DetectorError as exc:
                raise CommandError(str(exc)) from None
        return self._detector

    def mask(self, image: np.ndarray, rng: np.random.Generator) -> Optional[np.ndarray]:
        """The masked image, or None when no face was found."""
        from fer_mask_ros.learning.masking import apply_mask

        alpha = None
        if image.ndim == 3 and image.shape[2] == 4:
            image, alpha = np.ascontiguousarray(image[:, :, :3]), image[:, :, 3]
        elif image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        use_detector = self.args.detect or (not self.args.aligned and not is_aligned_crop(image))
        kind = self.args.kind
        if not use_detector:
            out = apply_mask(image, rng, kind=kind)
        else:
            faces = [d for d in self.detector().detect(image) if d.landmarks is not None]
            if not faces:
                return None
            out = image
            for det in faces:
                out = apply_mask(out, rng, landmarks=np.asarray(det.landmarks, dtype=np.float64), kind=kind)
        if alpha is not None:
            out = np.dstack([out if out.ndim == 3 else np.repeat(out[:, :, None], 3, axis=2), alpha])
        return out


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.imaging import read_image

    src = args.input
    if not os.path.exists(src):
        raise CommandError(f"no such file or folder: {src}")
    if args.limit < 0:
        raise CommandError(f"--limit must be >= 0, got {args.limit}")
    if os.path.isdir(src):
        if os.path.abspath(args.output) == os.path.abspath(src):
            raise CommandError("--output must differ from INPUT (the originals would be overwritten)")
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise CommandError(f"--output {args.output} is a file; a folder INPUT needs an output folder")
        jobs = [(path, rel, os.path.join(args.output, rel)) for path, rel in collect(src, args.output)]
        if not jobs:
            raise CommandError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {src}")
        folder = True
        others = _not_images(src, args.output, {path for path, _, _ in jobs})
        if others:
            print(f"warning: {len(others)} file(s) that are not images (by their extension) left out "
                  f"(first: {shown(others[0])})", file=sys.stderr)
    else:
        name = os.path.basename(src)
        into = os.path.isdir(args.output) or args.output.endswith(("/", os.sep))
        dest = os.path.join(args.output, name) if into else args.output
        if os.path.abspath(dest) == os.path.abspath(src):
            raise CommandError("--output must differ from INPUT (the original would be overwritten)")
        jobs = [(src, name, dest)]
        folder = False
    if args.limit:
        jobs = jobs[:args.limit]

    bar = None
    if folder and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="masking", unit="img", file=sys.stderr, dynamic_ncols=True)

    def warn(message: str) -> None:
        if bar is not None:
            bar.write(f"warning: {message}", file=sys.stderr)
        else:
            print(f"warning: {message}", file=sys.stderr)

    masker = _Masker(args)
    masked = unreadable = no_face = not_written = 0
    try:
        for path, rel, dest in jobs:
            try:
                image = read_image(path)
            except DatasetError as exc:
                warn(f"skipping {shown(str(exc))}")
                unreadable += 1
            else:
                out = masker.mask(image, file_rng(args.seed, rel))
                if out is None:
                    warn(f"no face found in {path}; not written")
                    no_face += 1
                else:
                    try:
                        _write(dest, out)
                    except WriteError as exc:
                        warn(str(exc))
                        not_written += 1
                    else:
                        masked += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    print(f"masked {masked} images, skipped {unreadable} unreadable, {no_face} without a face"
          + (f", {not_written} not written" if not_written else ""))
    return 0 if masked else 1
