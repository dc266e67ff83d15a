"""Labelled photo folders (`<root>/<label>/*`) run through the live graph's detector and aligned crop.

A second source next to FER2013: real, unaligned photos. `photo_crops` finds the face the way photo
mode does (perception.photo.detect_photo_faces: the best face, close-ups found on a padded canvas)
and cuts the live graph's aligned crop. Photos with no face are kept, flagged, so evaluation
can count them as wrong.

`holdout_split(path)` splits a source once, by a fixed hash of the person's name (the file stem
without a trailing `_0003` counter), so one person's photos never sit on both sides.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.labels import EMOTION_INDEX, normalise_label

HOLDOUT_FRACTION = 0.3
_COUNTER = re.compile(r"[_-]\d+$")


def identity_key(path: str) -> str:
    """The person part of a file name: `George_W_Bush_0012.jpg` -> `George_W_Bush`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return _COUNTER.sub("", stem) or stem


def is_holdout(path: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    """True for the evaluation part of a photo source (stable across runs and machines)."""
    digest = hashlib.sha1(identity_key(path).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "big") < int(fraction * 2 ** 32)


def labelled_photos(root: str) -> Tuple[List[str], np.ndarray]:
    """Paths and label indices of `<root>/<label>/*` image files, sorted; unknown label folders are an error."""
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.imaging import walk_files

    if not os.path.isdir(root):
        raise DatasetError(f"{root}: not a folder")
    paths, labels = [], []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder) or name.startswith("."):
            continue
        label = EMOTION_INDEX[normalise_label(name, where=folder)]
        for path in walk_files(folder):
            paths.append(path)
            labels.append(label)
    if not paths:
        raise DatasetError(f"{root}: no images under <label>/ folders")
    return paths, np.asarray(labels, dtype=np.int64)


@dataclass
class PhotoCrops:
    crops: np.ndarray  # (N, size, size) uint8; mid-grey where no face was found
    found: np.ndarray  # (N,) bool
    landmarks: List[Optional[np.ndarray]]
    whole: np.ndarray  # (N, size, size) uint8: each whole photo squeezed to a crop (what `classify --crops` sees)


def photo_crops(paths: Sequence[str], detector, size: int = 48, progress: bool = False) -> PhotoCrops:
    """The live graph's aligned crop of each photo's best face (and the whole photo as a crop)."""
    from fer_mask_ros.imaging import read_image, square_resize, to_bgr, to_grey
    from fer_mask_ros.perception.alignment import aligned_crop
    from fer_mask_ros.perception.photo import detect_photo_faces

    crops = np.full((len(paths), size, size), 128, dtype=np.uint8)
    whole = np.empty_like(crops)
    found = np.zeros(len(paths), dtype=bool)
    landmarks: List[Optional[np.ndarray]] = [None] * len(paths)
    iterator = range(len(paths))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="faces", unit="photo", leave=False, dynamic_ncols=True)
    for i in iterator:
        bgr = to_bgr(read_image(paths[i]))
        whole[i] = square_resize(to_grey(bgr), size)
        faces = detect_photo_faces(detector, bgr)
        if not faces:
            continue
        det = faces[0]
        crops[i] = aligned_crop(bgr, det, size=size)
        found[i] = True
        landmarks[i] = det.landmarks
    return PhotoCrops(crops, found, landmarks, whole)
