"""Images in one place: THE image file reader, THE encoding converter, crop resizing, file listing.

* `read_image(path, mode)`: an image file -> uint8 array (as stored, BGR colour, or grey); ImageReadError
  naming the file when it is missing, not an image, or too large. Every reader of image files uses it.
* `decode_image(data, mode)`: the same for encoded bytes (the nodes' CompressedImage); ValueError.
  Both read the declared size from the file header first (`header_size`: PNG, JPEG, BMP, GIF, WebP,
  TIFF, PNM/PAM/PFM, JPEG 2000, Sun raster, Radiance HDR) and refuse more than MAX_IMAGE_PIXELS, or a
  format whose header they cannot read, before anything is decoded: an image bomb (a few bytes that
  declare 60000 x 60000) never allocates its pixels.
* `to_bgr(image)`: any grey/BGR/BGRA uint8 array -> BGR (H, W, 3), what the detector and pipeline take.
* `encoding_to_bgr(image, encoding)`: a decoded camera image in a sensor_msgs encoding name (rgb8, mono16,
  yuv422, bayer_*...) -> BGR; used by the ROS side and by anything else that gets such frames.
* `to_grey`, `square_resize`: the classifier's crop preparation (training and inference share it).
* `walk_files`, `list_image_files`: folder walks for the commands and datasets.
* `iter_video`, `read_video`: the frames of a video file, BGR.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

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


#: Largest image decoded (pixels, from the header): 8192 x 8192, at most ~0.5 GB decoded (16-bit BGRA).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Largest image file read into memory.
MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024


def _u16(b: bytes, at: int, order: str) -> int:
    return int.from_bytes(b[at:at + 2], order)


def _u32(b: bytes, at: int, order: str) -> int:
    return int.from_bytes(b[at:at + 4], order)


def _jpeg_size(b: bytes) -> Optional[Tuple[int, int]]:
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = _u16(b, i + 2, "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > len(b):
                return None
            return _u16(b, i + 7, "big"), _u16(b, i + 5, "big")
        i += 2 + length
    return None


def _tiff_size(b: bytes) -> Optional[Tuple[int, int]]:
    order = "little" if b[:2] == b"II" else "big"
    ifd = _u32(b, 4, order)
    if ifd + 2 > len(b):
        return None
    found = {}
    for k in range(min(_u16(b, ifd, order), 4096)):
        e = ifd + 2 + 12 * k
        if e + 12 > len(b):
            break
        tag, kind = _u16(b, e, order), _u16(b, e + 2, order)
        if tag in (256, 257):
            found[tag] = _u16(b, e + 8, order) if kind == 3 else _u32(b, e + 8, order)
    return (found[256], found[257]) if len(found) == 2 else None


def _text_header_numbers(b: bytes, count: int) -> Optional[List[int]]:
    """The first `count` integers of a PNM-style text header (after the magic, '#' comments skipped)."""
    text = b[2:4096].decode("latin-1")
    numbers: List[int] = []
    for line in text.splitlines():
        for token in line.split("#", 1)[0].split():
            if not token.lstrip("-").isdigit():
                return numbers if len(numbers) >= count else None
            numbers.append(int(token))
            if len(numbers) == count:
                return numbers
    return None


def _pam_size(b: bytes) -> Optional[Tuple[int, int]]:
    fields = {}
    for line in b[:4096].decode("latin-1").splitlines()[1:]:
        parts = line.split()
        if parts and parts[0] == "ENDHDR":
            break
        if len(parts) == 2 and parts[0] in ("WIDTH", "HEIGHT") and parts[1].isdigit():
            fields[parts[0]] = int(parts[1])
    return (fields["WIDTH"], fields["HEIGHT"]) if len(fields) == 2 else None


def _radiance_size(b: bytes) -> Optional[Tuple[int, int]]:
    for line in b[:8192].decode("latin-1").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in ("-Y", "+Y") and parts[2] in ("+X", "-X"):
            if parts[1].isdigit() and parts[3].isdigit():
                return int(parts[3]), int(parts[1])
    return None


def header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) that an encoded image's header declares, without decoding; None when the format
    is not one of those listed in the module docstring or its header is cut short."""
    b = bytes(data[:8192])
    if b.startswith(b"\x89PNG\r\n\x1a\n") and len(b) >= 24 and b[12:16] == b"IHDR":
        return _u32(b, 16, "big"), _u32(b, 20, "big")
    if b.startswith(b"\xff\xd8"):  # the frame header follows any APP segments (EXIF, ICC: often > 8 kB)
        return _jpeg_size(memoryview(data).cast("B"))
    if b.startswith(b"BM") and len(b) >= 26:
        if _u32(b, 14, "little") == 12:
            return _u16(b, 18, "little"), _u16(b, 20, "little")
        w, h = (int.from_bytes(b[at:at + 4], "little", signed=True) for at in (18, 22))
        return abs(w), abs(h)
    if b[:6] in (b"GIF87a", b"GIF89a") and len(b) >= 10:
        return _u16(b, 6, "little"), _u16(b, 8, "little")
    if b.startswith(b"RIFF") and b[8:12] == b"WEBP" and len(b) >= 30:
        chunk = b[12:16]
        if chunk == b"VP8 ":
            return _u16(b, 26, "little") & 0x3FFF, _u16(b, 28, "little") & 0x3FFF
        if chunk == b"VP8L":
            bits = _u32(b, 21, "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8X":
            return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
        return None
    if b[:4] in (b"II*\0", b"MM\0*") and len(b) >= 8:
        return _tiff_size(b)
    if len(b) >= 3 and b[0:1] == b"P" and b[1:2] in b"123456" and b[2:3].isspace():
        wh = _text_header_numbers(b, 2)
        return (wh[0], wh[1]) if wh else None
    if b.startswith(b"P7\n"):
        return _pam_size(b)
    if b[:2] in (b"PF", b"Pf") and b[2:3].isspace():
        wh = _text_header_numbers(b, 2)
        return (wh[0], wh[1]) if wh else None
    if b.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        at = b.find(b"ihdr")
        return (_u32(b, at + 8, "big"), _u32(b, at + 4, "big")) if 0 <= at and at + 12 <= len(b) else None
    if b.startswith(b"\xff\x4f\xff\x51") and len(b) >= 24:  # JPEG 2000 codestream, SIZ
        return _u32(b, 8, "big") - _u32(b, 16, "big"), _u32(b, 12, "big") - _u32(b, 20, "big")
    if b.startswith(b"\x59\xa6\x6a\x95") and len(b) >= 12:  # Sun raster
        return _u32(b, 4, "big"), _u32(b, 8, "big")
    if b.startswith(b"#?RADIANCE") or b.startswith(b"#?RGBE"):
        return _radiance_size(b)
    return None


def check_header_size(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Tuple[int, int]:
    """(width, height) from the header when it is readable and at most `max_pixels`; else ValueError."""
    size = header_size(data)
    if size is None:
        raise ValueError("not a readable image (unknown format or no size in its header)")
    w, h = size
    if w <= 0 or h <= 0:
        raise ValueError(f"not a readable image (its header says {w}x{h})")
    if w * h > max_pixels:
        raise ValueError(f"image too large: its header says {w}x{h} = {w * h / 1e6:.0f} Mpx "
                         f"(limit {max_pixels / 1e6:.0f} Mpx); not decoded")
    return w, h


def decode_image(data: Union[bytes, np.ndarray], mode: str = "unchanged",
                 max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Encoded image bytes -> uint8 array (modes as read_image); ValueError for bad, unknown or too large
    images, decided from the header before anything is decoded."""
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buf.size == 0:
        raise ValueError("empty image data")
    check_header_size(buf, max_pixels)
    flags = READ_MODES[mode]
    if mode == "unchanged" and bytes(buf[:2]) == b"\xff\xd8":  # JPEG (no alpha): turned by its EXIF
        flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH    # orientation, as "color" and "grey" are
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as exc:  # e.g. a header OpenCV itself refuses
        raise ValueError(f"not a readable image ({str(exc).strip().splitlines()[-1][:120]})") from None
    if image is None or image.size == 0:
        raise ValueError("not a readable image")
    return image


def _not_a_file(path: str) -> str:
    """Why `path` (not a regular file) cannot be read, in a few words."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            return "symlink loop" if exc.errno == 40 else "dangling symlink"
        return exc.strerror or "no such file"
    if stat.S_ISDIR(mode):
        return "a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return "a FIFO, not an image file; not read"
    return "not a regular file (a device or socket); not read"


def read_image(path: str, mode: str = "unchanged") -> np.ndarray:
    """Read an image file as uint8: mode "unchanged" (grey, BGR or BGRA as stored; 16-bit scaled to 8),
    "color" (always BGR) or "grey". ImageReadError naming the file when it is missing, not an image, or
    declares more than MAX_IMAGE_PIXELS (checked in the header, before decoding)."""
    path = os.fspath(path)
    try:
        if not os.path.isfile(path):
            raise ImageReadError(f"{path}: {_not_a_file(path)}")
        if os.path.getsize(path) > MAX_IMAGE_FILE_BYTES:
            raise ImageReadError(f"{path}: file too large ({os.path.getsize(path)} bytes; "
                                 f"limit {MAX_IMAGE_FILE_BYTES} bytes)")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageReadError(f"{path}: not a readable image (empty file)")
    try:
        image = decode_image(data, mode)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
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


#: sensor_msgs/Image encodings: element type and channels (both ROS 1 and ROS 2 front ends unpack with this)
IMAGE_LAYOUT = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "8UC1": (np.uint8, 1), "8UC3": (np.uint8, 3), "8UC4": (np.uint8, 4),
    "mono16": (np.uint16, 1), "16UC1": (np.uint16, 1), "rgb16": (np.uint16, 3), "bgr16": (np.uint16, 3),
    "32FC1": (np.float32, 1), "64FC1": (np.float64, 1),
    "yuv422": (np.uint8, 2), "uyvy": (np.uint8, 2), "yuyv": (np.uint8, 2), "yuv422_yuy2": (np.uint8, 2),
}
for _pattern in ("rggb", "bggr", "gbrg", "grbg"):
    IMAGE_LAYOUT["bayer_" + _pattern + "8"] = (np.uint8, 1)
    IMAGE_LAYOUT["bayer_" + _pattern + "16"] = (np.uint16, 1)


def raw_image_array(data: Any, encoding: str, height: int, width: int, step: int, bigendian: bool) -> np.ndarray:
    """A sensor_msgs/Image's fields -> numpy array (H, W) or (H, W, C) in its own encoding (a view when it can be);
    ValueError for an unknown encoding or a buffer that does not hold the image."""
    if encoding not in IMAGE_LAYOUT:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(sorted(IMAGE_LAYOUT))}")
    dtype, channels = IMAGE_LAYOUT[encoding]
    dt = np.dtype(dtype).newbyteorder(">" if bigendian else "<")
    h, w, step = int(height), int(width), int(step)
    row = w * channels * dt.itemsize
    if step < row or len(data) < step * h:
        raise ValueError(f"malformed {encoding} image: {w}x{h}, step {step}, {len(data)} bytes")
    buf = np.frombuffer(data, dtype=np.uint8, count=step * h).reshape(h, step)[:, :row]
    arr = buf.copy().view(dt) if step != row or not dt.isnative else buf.view(dt)
    arr = arr.astype(dt.newbyteorder("="), copy=False)
    return arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)


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
        # cvtColor: 0.01 ms for QVGA, where numpy's reversed-channel copy took 0.6 ms
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if enc == "rgb8" else np.ascontiguousarray(arr)
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


def open_video_capture(source: Union[str, int]) -> cv2.VideoCapture:
    """cv2.VideoCapture(source) with OpenCV's own log silenced while it probes its backends: a file that is not
    a video must give our one-line error, not GStreamer's ERROR lines first. Check `isOpened()` as usual."""
    level = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
    if level is not None:
        cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        if isinstance(source, int):
            return cv2.VideoCapture(source)
        from fer_mask_ros.safe_write import opencv_path

        with opencv_path(source) as name:  # OpenCV segfaults on a name that is not UTF-8
            return cv2.VideoCapture(name)
    finally:
        if level is not None:
            cv2.setLogLevel(level)


def iter_video(path: Union[str, os.PathLike], start: int = 0) -> Iterator[np.ndarray]:
    """The BGR frames of a video file from frame `start` on; ImageReadError when it cannot be opened."""
    cap = open_video_capture(str(path))
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
