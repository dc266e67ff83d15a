"""Readers for FER2013 in the forms people have it, and for generic `<root>/<label>/*` folders.

Every reader returns a FaceDataset of grey uint8 crops resized to `size`. Bad input raises
DatasetError naming the file (and line for CSV). Unreadable images can be skipped with
`skip_unreadable=True`; the skipped files are then listed in `FaceDataset.skipped`.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .labels import EMOTION_INDEX, EMOTIONS, FER2013_CSV_ORDER, UnknownLabelError, normalise_label

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
USAGES = ("Training", "PublicTest", "PrivateTest")
_SPLIT_DIRS = {"train": "Training", "training": "Training", "test": "", "val": "PublicTest", "valid": "PublicTest"}


class DatasetError(ValueError):
    """A dataset cannot be read; the message names the file (and line)."""


@dataclass
class FaceDataset:
    images: np.ndarray  # (N, size, size) uint8 grey
    labels: np.ndarray  # (N,) int64 indices into EMOTIONS
    sources: List[str]  # file path, or "file.csv:LINE"
    usages: List[str]  # "Training" / "PublicTest" / "PrivateTest" / "" when unknown
    skipped: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, keep: np.ndarray) -> FaceDataset:
        idx = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep)
        return FaceDataset(
            self.images[idx], self.labels[idx], [self.sources[i] for i in idx],
            [self.usages[i] for i in idx], list(self.skipped),
        )

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts)}


def to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def square_resize(grey: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (area for shrinking, cubic for growing)."""
    h, w = grey.shape[:2]
    if h != w:
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        grey = grey[y0:y0 + side, x0:x0 + side]
    if grey.shape[0] != size:
        interp = cv2.INTER_AREA if grey.shape[0] > size else cv2.INTER_CUBIC
        grey = cv2.resize(grey, (size, size), interpolation=interp)
    return np.ascontiguousarray(grey, dtype=np.uint8)


def read_image(path: str) -> np.ndarray:
    """Read an image file as BGR/grey/BGRA uint8; raise DatasetError naming the file."""
    data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise DatasetError(f"{path}: no such file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DatasetError(f"{path}: not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_fer2013_csv(path: str, usage: Optional[str] = None, size: int = 48) -> FaceDataset:
    """Kaggle's fer2013.csv (`emotion,pixels,Usage`), plain or gzipped."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: no such file")
    images, labels, sources, usages = [], [], [], []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: empty file")
            columns = [c.strip().lower() for c in header]
            if "emotion" not in columns or "pixels" not in columns:
                raise DatasetError(f"{path}:1: expected a header with 'emotion' and 'pixels' columns, got {header}")
            i_emotion, i_pixels = columns.index("emotion"), columns.index("pixels")
            i_usage = columns.index("usage") if "usage" in columns else None
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                where = f"{path}:{line_no}"
                if len(row) < len(columns):
                    raise DatasetError(f"{where}: expected {len(columns)} fields, got {len(row)}")
                row_usage = row[i_usage].strip() if i_usage is not None else ""
                if usage and row_usage != usage:
                    continue
                try:
                    emotion = int(row[i_emotion])
                    if not 0 <= emotion < len(FER2013_CSV_ORDER):  # no negative indexing: -1 is an error
                        raise IndexError(emotion)
                    label = EMOTION_INDEX[FER2013_CSV_ORDER[emotion]]
                except (ValueError, IndexError):
                    raise DatasetError(f"{where}: emotion {row[i_emotion]!r} is not an integer 0-6") from None
                try:
                    pixels = np.array(row[i_pixels].split(), dtype=np.float32)
                except ValueError:
                    raise DatasetError(f"{where}: pixels must be space-separated numbers") from None
                side = int(round(np.sqrt(pixels.size)))
                if side * side != pixels.size or side == 0:
                    raise DatasetError(f"{where}: {pixels.size} pixels do not form a square image")
                if pixels.min() < 0 or pixels.max() > 255:
                    raise DatasetError(f"{where}: pixel values must lie in 0-255")
                images.append(square_resize(pixels.reshape(side, side).astype(np.uint8), size))
                labels.append(label)
                sources.append(where)
                usages.append(row_usage)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read CSV ({exc})") from None
    return _make(images, labels, sources, usages, size, [], path)


def _usage_from_name(filename: str, split_dir: str) -> str:
    for u in USAGES:
        if filename.startswith(u + "_"):
            return u
    return _SPLIT_DIRS.get(split_dir.lower(), "")


def _iter_label_dirs(root: str) -> Iterable[Tuple[str, str]]:
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        if os.path.isdir(full) and not name.startswith("."):
            yield name, full


def walk_files(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS, exclude: Optional[str] = None) -> List[str]:
    """Files under `folder` whose names end with one of `extensions` (any case), recursively, in
    sorted walk order; hidden folders and the folder `exclude` (e.g. an output inside the input)
    are skipped. The one folder walk of the library and its commands."""
    suffixes = tuple(e.lower() for e in extensions)
    skip = os.path.abspath(exclude) if exclude else None
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and os.path.abspath(os.path.join(dirpath, d)) != skip)
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(suffixes))
    return found


def load_image_folder(
    root: str, usage: Optional[str] = None, size: int = 48, skip_unreadable: bool = False
) -> FaceDataset:
    """`root/<label>/*` or `root/{train,test}/<label>/*` (FER2013's Usage_ file-name prefixes honoured)."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: no such folder")
    subdirs = dict(_iter_label_dirs(root))
    split_names = [d for d in subdirs if d.lower() in _SPLIT_DIRS]
    if split_names and all(_is_label(d) is None for d in split_names):
        splits = [(d, subdirs[d]) for d in split_names]
    else:
        splits = [("", root)]
    images, labels, sources, usages, skipped = [], [], [], [], []
    for split_name, split_root in splits:
        for label_name, label_dir in _iter_label_dirs(split_root):
            try:
                label = EMOTION_INDEX[normalise_label(label_name, where=label_dir)]
            except UnknownLabelError as exc:
                raise DatasetError(str(exc)) from None
            for path in walk_files(label_dir):
                row_usage = _usage_from_name(os.path.basename(path), split_name)
                if usage and row_usage != usage:
                    continue
                try:
                    grey = to_grey(read_image(path))
                except (DatasetError, ValueError) as exc:
                    if not skip_unreadable:
                        raise DatasetError(str(exc)) from None
                    skipped.append(path)
                    continue
                images.append(square_resize(grey, size))
                labels.append(label)
                sources.append(path)
                usages.append(row_usage)
    return _make(images, labels, sources, usages, size, skipped, root)


def _is_label(name: str) -> Optional[str]:
    try:
        return normalise_label(name)
    except UnknownLabelError:
        return None


def _make(images, labels, sources, usages, size, skipped, origin) -> FaceDataset:
    if not images:
        raise DatasetError(f"{origin}: no images found (for the requested usage)")
    return FaceDataset(
        np.stack(images).astype(np.uint8).reshape(-1, size, size),
        np.asarray(labels, dtype=np.int64), sources, usages, skipped,
    )


def load_dataset(path: str, usage: Optional[str] = None, size: int = 48, skip_unreadable: bool = False) -> FaceDataset:
    """Pick the reader from the path: *.csv / *.csv.gz, or a folder."""
    if usage is not None and usage not in USAGES:
        raise DatasetError(f"usage must be one of {', '.join(USAGES)}, got {usage!r}")
    if os.path.isdir(path):
        return load_image_folder(path, usage=usage, size=size, skip_unreadable=skip_unreadable)
    if path.endswith((".csv", ".csv.gz")):
        return load_fer2013_csv(path, usage=usage, size=size)
    if not os.path.exists(path):
        raise DatasetError(f"{path}: no such file or folder")
    raise DatasetError(f"{path}: expected a fer2013.csv(.gz) file or an image folder")


def calibration_crops(dataset_path: str, count: int, seed: int) -> np.ndarray:
    """`count` crops of a dataset (its Training split where it has one), the second half masked.

    The sample an int8 copy of the classifier is calibrated on: faces as the node sees them, with and
    without masks.
    """
    from .masking import mask_images

    data = load_dataset(dataset_path)
    usages = np.asarray(data.usages)
    if (usages == "Training").any():
        data = data.subset(usages == "Training")
    if len(data) == 0:
        raise DatasetError(f"{dataset_path}: no images to calibrate on")
    rng = np.random.default_rng(seed)
    picked = data.images[np.sort(rng.permutation(len(data))[:count])]
    half = len(picked) // 2
    return np.concatenate([picked[:half], mask_images(picked[half:], seed)])
