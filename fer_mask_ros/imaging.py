"""Images in one place: THE image file reader, THE encoding converter, crop resizing, file listing.

* `read_image(path, mode)`: an image file -> uint8 array (as stored, BGR colour, or grey); ImageReadError
  naming the file when it is missing or not an image. Every reader of image files uses it.
* `to_bgr(image)`: any grey/BGR/BGRA uint8 array -> BGR (H, W, 3), what the detector and pipeline take.
* `encoding_to_bgr(image, encoding)`: a decoded camera image in a sensor_msgs encoding name (rgb8, mono16,
  yuv422, bayer_*...) -> BGR; used by the ROS side and by anything else that gets such frames.
* `to_grey`, `square_resize`: the classifier's crop preparation (training and inference share it).
* `walk_files`, `list_image_files`: folder walks for the commands and datasets.
* `iter_video`, `read_video`: the frames of a video file, BGR.
"""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np

from fer_mask_ros.errors import ImageReadError

READ_MODES = {"unchanged": cv2.IMREAD_UNCHANGED, "color": cv2.IMREAD_COLOR, "grey": cv2.IMREAD_GRAYSCALE}


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


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


def read_image(path: str, mode: str = "unchanged") -> np.ndarray:
    """Read an image file as uint8: mode "unchanged" (grey, BGR or BGRA as stored; 16-bit scaled to 8),
    "color" (always BGR) or "grey". ImageReadError naming the file when it is missing or not an image."""
    path = str(path)
    try:
        data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
    except OSError as exc:
        raise ImageReadError(f"{path}: {exc.strerror or exc}") from None
    if data is None:
        raise ImageReadError(f"{path}: no such file")
    image = cv2.imdecode(data, READ_MODES[mode]) if data.size else None
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


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


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Validate an image array and return it as contiguous BGR uint8 (H, W, 3).

    Accepts grey (H, W) or (H, W, 1), BGR (H, W, 3) and BGRA (H, W, 4) uint8 arrays.
    Raises ValueError with a clear message for anything else.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        channels = 1
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4):
        channels = image.shape[2]
    else:
        raise ValueError(f"expected an image of shape HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        return np.zeros((image.shape[0], image.shape[1], 3), np.uint8)
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[0], image.shape[1]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2BGR,  # OpenCV names Bayer patterns from the second row
    "bayer_bggr8": cv2.COLOR_BayerRG2BGR,
    "bayer_gbrg8": cv2.COLOR_BayerGR2BGR,
    "bayer_grbg8": cv2.COLOR_BayerGB2BGR,
}


ENCODINGS = ("rgb8", "bgr8", "mono8", "8UC1", "8UC3", "bgra8", "rgba8", "8UC4", "mono16", "16UC1", "32FC1",
             "yuv422", "uyvy", "yuyv", "yuv422_yuy2") + tuple(_BAYER)


def encoding_to_bgr(image: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded ROS image array in `encoding` -> BGR uint8 (H, W, 3); ValueError if unsupported.

    `image` is shaped as cv_bridge/numpy gives it: (H, W) for one channel, (H, W, C) otherwise;
    yuv422 (UYVY) and yuyv are (H, W, 2) or (H, W*2) uint8.
    """
    enc = encoding.lower() if encoding else ""
    arr = np.asarray(image)
    if arr.size == 0:
        raise ValueError(f"empty {encoding or 'unknown'} image")
    if enc in ("rgb8", "8uc3") and arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr[:, :, ::-1]) if enc == "rgb8" else np.ascontiguousarray(arr)
    if enc == "bgr8" and arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    if enc in ("mono8", "8uc1"):
        return cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if enc in ("bgra8", "rgba8", "8uc4") and arr.ndim == 3 and arr.shape[2] == 4:
        code = cv2.COLOR_RGBA2BGR if enc == "rgba8" else cv2.COLOR_BGRA2BGR
        return cv2.cvtColor(np.ascontiguousarray(arr), code)
    if enc in ("mono16", "16uc1"):
        grey = (arr.reshape(arr.shape[0], arr.shape[1]).astype(np.uint16) >> 8).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if enc == "32fc1":
        values = arr.reshape(arr.shape[0], arr.shape[1]).astype(np.float32)
        finite = np.isfinite(values)
        grey = np.zeros(values.shape, np.uint8)
        if finite.any():
            lo, hi = float(values[finite].min()), float(values[finite].max())
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            grey[finite] = np.clip((values[finite] - lo) * scale, 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if enc in ("yuv422", "uyvy", "yuyv", "yuv422_yuy2"):
        packed = arr.astype(np.uint8).reshape(arr.shape[0], -1)
        if packed.shape[1] % 4:
            raise ValueError(f"{encoding} row of {packed.shape[1]} bytes is not a whole number of pixel pairs")
        packed = packed.reshape(arr.shape[0], packed.shape[1] // 2, 2)
        code = cv2.COLOR_YUV2BGR_UYVY if enc in ("yuv422", "uyvy") else cv2.COLOR_YUV2BGR_YUY2
        return cv2.cvtColor(packed, code)
    if enc in _BAYER:
        return cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]).astype(np.uint8), _BAYER[enc])
    if enc in (e.lower() for e in ENCODINGS):
        raise ValueError(f"{encoding} image has an unexpected shape {arr.shape}")
    raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")


def list_image_files(paths: Sequence[str]) -> List[str]:
    """Expand files/folders into image files: folders recursively and sorted, arguments in order,
    duplicates dropped. A file named explicitly is kept whatever its extension. Missing -> ImageReadError."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImageReadError(f"no such file or folder: {missing[0]}{more}")
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


def iter_video(path: Union[str, os.PathLike], start: int = 0) -> Iterator[np.ndarray]:
    """The BGR frames of a video file from frame `start` on; ImageReadError when it cannot be opened."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageReadError(f"cannot open video {path} (unsupported codec or not a video)")
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(start))
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield frame
    finally:
        cap.release()


def read_video(path: Union[str, os.PathLike], max_frames: Optional[int] = None, start: int = 0) -> List[np.ndarray]:
    """The BGR frames of a video file (at most `max_frames`, from frame `start`) as a list."""
    frames: List[np.ndarray] = []
    for frame in iter_video(path, start):
        if max_frames is not None and len(frames) >= max_frames:
            break
        frames.append(frame)
    return frames
