"""THE writer of derived files: annotated images, rendered videos, CSVs, JSON summaries, reports.

* Atomic: the bytes go to a temporary file in the target's folder, then `os.replace` puts it in place.
  A process killed mid-write (SIGKILL, a full disk) leaves the old file or none, never a half-written one
  under the final name; the temporary file (".partial-*") is removed on any error.
* File names as the OS has them: a name that is not UTF-8 (surrogate escapes in Python) or that holds a
  newline is handled by Python's own file calls. OpenCV is never given such a name: its Python binding
  (4.6) dereferences NULL on a str that does not encode as UTF-8 (imwrite, imread, VideoCapture,
  VideoWriter: "Segmentation fault"). Images are encoded with cv2.imencode and written here as bytes;
  `opencv_path` gives OpenCV a name it can take for reading or for a video writer.
* Refuses to write over what is not a regular file (a FIFO would block, a device would take the bytes).
* Every failure is a `WriteError` naming the file; `WriteFailures` turns them into one counted warning
  each (throttled) so that a batch goes on.
"""
from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from typing import IO, Callable, Iterator, Optional

import numpy as np

from fer_mask_ros.errors import WriteError

TEMP_PREFIX = ".partial-"
#: Extensions cv2.imencode writes; anything else is written as PNG.
IMAGE_WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".jp2")


def shown(path: str) -> str:
    """A path for one log line: newlines, control characters and undecodable bytes escaped."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text.isprintable():
        return text
    return repr(text)[1:-1]


def opencv_can_take(path: str) -> bool:
    """Whether OpenCV's Python binding can be given this name (valid UTF-8, no NUL, no control characters)."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    try:
        text.encode("utf-8", "strict")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


@contextlib.contextmanager
def opencv_path(path: str) -> Iterator[str]:
    """A name for OpenCV to open `path` with (to read it, or to create it: cv2.VideoWriter): the path itself,
    or (odd names) one through a symlink with a plain name in a private temporary folder, removed when the
    block ends (a file OpenCV opened stays open). A plain file name in an odd folder: the folder is linked."""
    if opencv_can_take(path):
        yield str(path)
        return
    base = os.path.basename(os.fsdecode(path))
    with tempfile.TemporaryDirectory(prefix="fer_mask_ros-") as tmp:
        if opencv_can_take(base):
            os.symlink(os.path.dirname(os.path.abspath(path)), os.path.join(tmp, "dir"))
            yield os.path.join(tmp, "dir", base)
        else:
            ext = os.path.splitext(base)[1]
            link = os.path.join(tmp, "input" + (ext if opencv_can_take(ext) else ""))
            os.symlink(os.path.abspath(path), link)
            yield link


def check_target(path: str) -> None:
    """WriteError unless `path` is absent or a regular file (a symlink counts as what it points to), and its
    folder exists."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a symlink loop, a name too long, no permission
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise WriteError(f"cannot write {shown(path)}: it is {kind}, not a regular file; not overwritten")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise WriteError(f"cannot write {shown(path)}: folder {shown(parent)} does not exist")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path: str, suffix: Optional[str] = None) -> str:
    """A new empty temporary file (plain ASCII name, OpenCV can take it) in `path`'s folder, for a writer
    that wants a file name (cv2.VideoWriter); then `commit(tmp, path)` or `discard(tmp)`. `suffix`: its
    extension (default: `path`'s, when plain). WriteError when `path` cannot be written."""
    check_target(path)
    if suffix is None:
        ext = os.path.splitext(os.fsdecode(path))[1]
        suffix = ext if ext and opencv_can_take(ext) and ext.isascii() else ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
    except OSError as exc:
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    return tmp


def commit(tmp: str, path: str) -> None:
    """Move a finished temporary file to its name (WriteError if it is empty or cannot be moved)."""
    try:
        if os.path.getsize(tmp) == 0:
            raise WriteError(f"cannot write {shown(path)}: nothing was written")
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    except WriteError:
        discard(tmp)
        raise


def discard(tmp: str) -> None:
    _remove(tmp)


@contextlib.contextmanager
def atomic_path(path: str, suffix: Optional[str] = None) -> Iterator[str]:
    """A temporary name (plain ASCII, OpenCV can take it) in `path`'s folder, moved to `path` when the block
    ends without an error and the file exists; removed on an error. For writers that want a file name
    (cv2.VideoWriter). `suffix`: the temporary name's extension (default: `path`'s, when plain)."""
    tmp = temp_path(path, suffix)
    try:
        yield tmp
    except BaseException:
        discard(tmp)
        raise
    commit(tmp, path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = False, encoding: str = "utf-8") -> Iterator[IO]:
    """A handle to write `path` through: text (UTF-8, undecodable name bytes kept by surrogate escapes,
    newline='') or binary. The file appears under its name only when the block ends without an error;
    an error while writing (a full disk) is a WriteError and leaves no file under that name."""
    check_target(path)
    parent = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
    except OSError as exc:
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    try:
        if binary:
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding, errors="surrogateescape", newline="")
        with handle:
            yield handle
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise


def write_bytes(path: str, data: bytes) -> None:
    with atomic_output(path, binary=True) as handle:
        handle.write(data)


def write_text(path: str, text: str) -> None:
    with atomic_output(path) as handle:
        handle.write(text)


def encode_image(image: np.ndarray, ext: str = ".png") -> bytes:
    """An image array -> encoded bytes; ValueError for an array OpenCV cannot encode (wrong dtype, shape,
    empty, too large for the format) instead of letting OpenCV fail."""
    import cv2

    if not isinstance(image, np.ndarray):
        raise ValueError(f"not an image array ({type(image).__name__})")
    if image.dtype != np.uint8 and not (image.dtype == np.uint16 and ext in (".png", ".tif", ".tiff", ".pgm", ".ppm")):
        raise ValueError(f"cannot encode a {image.dtype} image as {ext}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"cannot encode an image of shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"cannot encode an empty image ({image.shape[1]}x{image.shape[0]})")
    if ext in (".jpg", ".jpeg") and max(image.shape[:2]) > 65500:
        raise ValueError(f"too large for JPEG ({image.shape[1]}x{image.shape[0]})")
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(image))
    except cv2.error as exc:
        raise ValueError(f"cannot encode as {ext}: {str(exc).strip().splitlines()[-1][:120]}") from None
    if not ok:
        raise ValueError(f"cannot encode as {ext}")
    return buf.tobytes()


def write_image(path: str, image: np.ndarray) -> str:
    """Encode `image` in the format its extension names and write it atomically; returns the path written.
    A name without an image extension gets PNG bytes under that very name; a format this OpenCV cannot
    encode (e.g. .jp2 without OpenJPEG) is written as PNG beside it (name.png). WriteError on any failure."""
    stem, ext = os.path.splitext(path)
    ext_l = ext.lower() if ext.lower() in IMAGE_WRITE_EXTENSIONS else ".png"
    check_target(path)
    try:
        data = encode_image(image, ext_l)
    except ValueError as exc:
        try:  # the format, not the image: PNG beside
            data, path = encode_image(image, ".png"), stem + ".png"
        except ValueError:
            raise WriteError(f"cannot write {shown(path)}: {exc}") from None
    write_bytes(path, data)
    return path


class TextOutput:
    """A text file a command streams rows into (its CSV): a regular file is written to a temporary file and
    moved into place by close() (if close() runs while an exception propagates, e.g. from a `finally`, the
    temporary file is dropped and an older file stays); a FIFO or device the user named (/dev/stdout) is
    written directly. Any OSError (a full disk) is a WriteError naming the file. UTF-8, undecodable name
    bytes kept (surrogate escapes), newline=''."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise WriteError(f"cannot write {shown(path)}: it is a folder")
        self._tmp = None if st is not None and not stat.S_ISREG(st.st_mode) else temp_path(path, suffix="")
        try:
            self._handle = open(self._tmp or path, "w", encoding="utf-8", errors="surrogateescape", newline="")
        except OSError as exc:
            if self._tmp:
                discard(self._tmp)
            raise WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None

    def _error(self, exc: OSError) -> WriteError:
        return WriteError(f"cannot write {shown(self.path)}: {exc.strerror or exc}")

    def write(self, text: str) -> int:
        try:
            return self._handle.write(text)
        except OSError as exc:
            raise self._error(exc) from None

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            raise self._error(exc) from None

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        if self._handle.closed:
            return
        failing = sys.exc_info()[0] is not None
        try:
            self._handle.close()
        except OSError as exc:
            if self._tmp:
                discard(self._tmp)
            if not failing:
                raise self._error(exc) from None
            return
        if self._tmp:
            if failing:
                discard(self._tmp)
            else:
                commit(self._tmp, self.path)


class WriteFailures:
    """Counted, throttled warnings for the files a batch could not write: the first `shown_max` are printed
    (one line each), then one line saying the rest are only counted. `count` goes in the final summary."""

    def __init__(self, emit: Optional[Callable[[str], None]] = None, shown_max: int = 10) -> None:
        self.emit = emit or (lambda line: print(line, file=sys.stderr))
        self.shown_max = shown_max
        self.count = 0

    def record(self, error: Exception) -> None:
        self.count += 1
        if self.count <= self.shown_max:
            self.emit(f"warning: {error}")
        elif self.count == self.shown_max + 1:
            self.emit("warning: more files could not be written; they are counted, not shown")
