"""Readers for FER2013 in the forms people have it, and for generic `<root>/<label>/*` folders.

Every reader returns a FaceDataset of grey uint8 crops resized to `size`. A bad CSV raises DatasetError
naming the file and line. Image folders take what they can and say what they left out, one counted warning
per kind (logged, and kept in `FaceDataset.warnings`): unreadable images (`FaceDataset.skipped`; with
`skip_unreadable=False` the first one is a DatasetError instead), folders that are not emotion labels, label
folders without images, files that are not images, byte-identical copies (kept; named when their labels
differ). 16-bit, CMYK, EXIF-rotated, grey and RGBA images are read as they look (imaging.read_image).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

import numpy as np

from fer_mask_ros.errors import DatasetError, UnknownLabelError
from fer_mask_ros.imaging import read_image, square_resize, to_grey, walk_files
from fer_mask_ros.labels import EMOTION_INDEX, EMOTIONS, FER2013_CSV_ORDER, normalise_label

LOG = logging.getLogger(__name__)
USAGES = ("Training", "PublicTest", "PrivateTest")
_SPLIT_DIRS = {"train": "Training", "training": "Training", "test": "", "val": "PublicTest", "valid": "PublicTest"}


@dataclass
class FaceDataset:
    images: np.ndarray  # (N, size, size) uint8 grey
    labels: np.ndarray  # (N,) int64 indices into EMOTIONS
    sources: List[str]  # file path, or "file.csv:LINE"
    usages: List[str]  # "Training" / "PublicTest" / "PrivateTest" / "" when unknown
    skipped: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)  # one line per kind of file left out, with its count

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, keep: np.ndarray) -> FaceDataset:
        idx = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep)
        return FaceDataset(
            self.images[idx], self.labels[idx], [self.sources[i] for i in idx],
            [self.usages[i] for i in idx], list(self.skipped), list(self.warnings),
        )

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts)}


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


class _Tally:
    """Files of one kind left out (or flagged): a count and the first few, reported as one line."""

    def __init__(self, what: str) -> None:
        self.what, self.count, self.examples = what, 0, []

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(example)

    def line(self) -> Optional[str]:
        if not self.count:
            return None
        more = ", ..." if self.count > len(self.examples) else ""
        return f"{self.what}: {self.count} ({'; '.join(self.examples)}{more})"


def _other_files(folder: str) -> List[str]:
    """Files under `folder` that walk_files leaves out as not images (hidden ones aside)."""
    images = set(walk_files(folder))
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                   if not f.startswith(".") and os.path.join(dirpath, f) not in images)
    return out


def load_image_folder(
    root: str, usage: Optional[str] = None, size: int = 48, skip_unreadable: bool = True
) -> FaceDataset:
    """`root/<label>/*` or `root/{train,test}/<label>/*` (FER2013's Usage_ file-name prefixes honoured).
    What is left out is counted in `FaceDataset.warnings` (see the module docstring)."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: no such folder")
    subdirs = dict(_iter_label_dirs(root))
    split_names = [d for d in subdirs if d.lower() in _SPLIT_DIRS]
    if split_names and all(_is_label(d) is None for d in split_names):
        splits = [(d, subdirs[d]) for d in split_names]
    else:
        splits = [("", root)]
    images, labels, sources, usages, skipped = [], [], [], [], []
    unreadable = _Tally("unreadable images skipped")
    not_labels = _Tally(f"folders that are not emotion labels ({', '.join(EMOTIONS)} or an alias) skipped")
    empty = _Tally("label folders without images")
    others = _Tally("files that are not images (by their extension) ignored")
    copies = _Tally("byte-identical copies of another image (kept)")
    conflicts = _Tally("byte-identical images under different labels (kept; check them)")
    seen: dict = {}  # content hash -> (path, label)
    outside = _Tally("files outside a label folder ignored")
    label_dirs = 0
    for split_name, split_root in splits:
        for name in sorted(os.listdir(split_root)):
            if not name.startswith(".") and not os.path.isdir(os.path.join(split_root, name)):
                outside.add(os.path.join(split_root, name))
        for label_name, label_dir in _iter_label_dirs(split_root):
            try:
                label = EMOTION_INDEX[normalise_label(label_name, where=label_dir)]
            except UnknownLabelError:
                not_labels.add(label_dir)
                continue
            label_dirs += 1
            for path in _other_files(label_dir):
                others.add(path)
            files = walk_files(label_dir)
            if not files:
                empty.add(label_dir)
            for path in files:
                row_usage = _usage_from_name(os.path.basename(path), split_name)
                if usage and row_usage != usage:
                    continue
                try:
                    grey = to_grey(read_image(path))
                    with open(path, "rb") as handle:
                        digest = hashlib.sha1(handle.read()).hexdigest()
                except (DatasetError, ValueError, OSError) as exc:
                    if not skip_unreadable:
                        raise DatasetError(str(exc)) from None
                    skipped.append(path)
                    unreadable.add(str(exc))
                    continue
                if digest in seen:
                    first, first_label = seen[digest]
                    (copies if first_label == label else conflicts).add(
                        f"{path} = {first}" + ("" if first_label == label else
                                               f" ({EMOTIONS[label]} / {EMOTIONS[first_label]})"))
                else:
                    seen[digest] = (path, label)
                images.append(square_resize(grey, size))
                labels.append(label)
                sources.append(path)
                usages.append(row_usage)
    if not label_dirs:
        raise DatasetError(f"{root}: no emotion label folders ({', '.join(EMOTIONS)} or an alias); found: "
                           + (", ".join(sorted(subdirs)) or "no folders"))
    warnings = [t.line() for t in (unreadable, not_labels, empty, others, outside, copies, conflicts) if t.line()]
    for line in warnings:
        LOG.warning("warning: %s: %s", root, line)
    data = _make(images, labels, sources, usages, size, skipped, root)
    data.warnings = warnings
    return data


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


def load_dataset(path: str, usage: Optional[str] = None, size: int = 48, skip_unreadable: bool = True) -> FaceDataset:
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
    from fer_mask_ros.learning.masking import mask_images

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
