"""NAO's camera over qi: ALVideoDevice subscription, and decoding of its image containers (YUV422, YUV, RGB, BGR).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np

from fer_mask_ros.errors import ImageContainerError, NaoError, NaoTimeout, NaoUnavailable
from fer_mask_ros.robot.connection import NaoConnection

LOG = logging.getLogger(__name__)

CAMERA_TOP, CAMERA_BOTTOM = 0, 1
RESOLUTIONS: Dict[int, Tuple[int, int]] = {
    8: (40, 30),  # kQQQQVGA
    7: (80, 60),  # kQQQVGA
    0: (160, 120),  # kQQVGA
    1: (320, 240),  # kQVGA
    2: (640, 480),  # kVGA
    3: (1280, 960),  # k4VGA
}
RESOLUTION_NAMES = {
    "qqqqvga": 8, "qqqvga": 7, "qqvga": 0, "qvga": 1, "vga": 2, "4vga": 3,
    "40x30": 8, "80x60": 7, "160x120": 0, "320x240": 1, "640x480": 2, "1280x960": 3,
}
K_YUV = 0  # kYuvColorSpace: luma only, 1 layer


K_YUV422 = 9  # kYUV422ColorSpace: Y0 U Y1 V, 2 layers
K_YUV_FULL = 10  # kYUVColorSpace: Y U V per pixel, 3 layers
K_RGB = 11  # kRGBColorSpace
K_BGR = 13  # kBGRColorSpace
COLORSPACE_LAYERS = {K_YUV: 1, K_YUV422: 2, K_YUV_FULL: 3, K_RGB: 3, K_BGR: 3}
COLORSPACE_NAMES = {"yuv": K_YUV, "gray": K_YUV, "y": K_YUV, "yuv422": K_YUV422, "yuyv": K_YUV422,
                    "yuv444": K_YUV_FULL, "rgb": K_RGB, "bgr": K_BGR}


def parse_resolution(value: Union[int, str]) -> int:
    """NAOqi resolution id from an int (0-3, 7, 8) or a name ("QVGA", "kVGA", "320x240")."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key.startswith("k") and key[1:] in RESOLUTION_NAMES:
            key = key[1:]
        if key in RESOLUTION_NAMES:
            return RESOLUTION_NAMES[key]
        if key.lstrip("-").isdigit():
            value = int(key)
        else:
            raise ValueError(f"unknown camera resolution {value!r}; use one of {', '.join(RESOLUTION_NAMES)} "
                             f"or an id {sorted(RESOLUTIONS)}")
    if int(value) not in RESOLUTIONS:
        raise ValueError(f"unsupported camera resolution id {value!r}; supported: "
                         + ", ".join(f"{k}={w}x{h}" for k, (w, h) in sorted(RESOLUTIONS.items())))
    return int(value)


def resolution_size(resolution: Union[int, str]) -> Tuple[int, int]:
    """(width, height) of a NAOqi resolution."""
    return RESOLUTIONS[parse_resolution(resolution)]


def parse_colorspace(value: Union[int, str]) -> int:
    """NAOqi colour space id from an int (0, 9, 10, 11, 13) or a name ("RGB", "BGR", "YUV422", "gray")."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key.startswith("k") and key.endswith("colorspace"):
            key = key[1:-len("colorspace")]
        if key in COLORSPACE_NAMES:
            return COLORSPACE_NAMES[key]
        if not key.isdigit():
            raise ValueError(f"unknown colour space {value!r}; use one of {', '.join(COLORSPACE_NAMES)}")
        value = int(key)
    if int(value) not in COLORSPACE_LAYERS:
        raise ValueError(f"unsupported colour space id {value!r}; supported: "
                         "0=Y (gray), 9=YUV422, 10=YUV, 11=RGB, 13=BGR")
    return int(value)


class ImageContainer(NamedTuple):
    """The ALVideoDevice.getImageRemote result, as documented by NAOqi."""

    width: int
    height: int
    layers: int
    colorspace: int
    ts_sec: int
    ts_usec: int
    data: bytes
    camera_id: int = 0
    left_angle: float = 0.0
    top_angle: float = 0.0
    right_angle: float = 0.0
    bottom_angle: float = 0.0

    @property
    def stamp(self) -> float:
        return float(self.ts_sec) + float(self.ts_usec) * 1e-6


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8, copy=False).tobytes()
    if isinstance(data, str):
        # Python 2 era proxies returned binary as str; latin-1 maps code points 0-255 to bytes
        try:
            return data.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ImageContainerError("image data is a text string, not binary") from exc
    if isinstance(data, (list, tuple)) and all(isinstance(v, int) for v in data[:16]):
        return bytes(bytearray(data))
    raise ImageContainerError(f"image data has type {type(data).__name__}, expected bytes")


def parse_image_container(container: Any) -> ImageContainer:
    """Validate an ALVideoDevice image container (list/tuple of >= 7 fields) and return it typed."""
    if container is None:
        raise ImageContainerError("no image (ALVideoDevice returned None: unknown handle or camera not ready)")
    if not isinstance(container, (list, tuple)):
        raise ImageContainerError(f"image container must be a list, got {type(container).__name__}")
    if len(container) < 7:
        raise ImageContainerError(f"image container has {len(container)} fields, expected 12 "
                                  "[width, height, layers, colorspace, sec, usec, data, camera, 4 angles]")
    try:
        width, height, layers, colorspace, ts_sec, ts_usec = (int(v) for v in container[:6])
    except (TypeError, ValueError) as exc:
        raise ImageContainerError(f"image container header is not numeric: {list(container[:6])!r}") from exc
    data = _as_bytes(container[6])
    extra = list(container[7:12])
    camera_id = int(extra[0]) if extra else 0
    angles = [float(v) for v in extra[1:5]] + [0.0] * (4 - len(extra[1:5]))
    if width <= 0 or height <= 0:
        raise ImageContainerError(f"bad image size {width}x{height}")
    if layers <= 0:
        raise ImageContainerError(f"bad number of layers {layers}")
    expected = width * height * layers
    if len(data) != expected:
        raise ImageContainerError(f"image data has {len(data)} bytes, expected {width}x{height}x{layers}={expected}")
    if colorspace in COLORSPACE_LAYERS and COLORSPACE_LAYERS[colorspace] != layers:
        raise ImageContainerError(f"colour space {colorspace} has {COLORSPACE_LAYERS[colorspace]} layers, "
                                  f"container says {layers}")
    return ImageContainer(width, height, layers, colorspace, ts_sec, ts_usec, data, camera_id, *angles)


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Full-range (JPEG) BT.601 YUV to RGB uint8, as NAO's camera produces."""
    y = y.astype(np.float32)
    u = u.astype(np.float32) - 128.0
    v = v.astype(np.float32) - 128.0
    r = y + 1.402 * v
    g = y - 0.344136 * u - 0.714136 * v
    b = y + 1.772 * u
    return np.clip(np.stack([r, g, b], axis=-1) + 0.5, 0, 255).astype(np.uint8)


def _rgb_to_yuv(rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    return y, u, v


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def container_to_rgb(container: Any) -> Tuple[np.ndarray, float]:
    """(HxWx3 uint8 RGB image, stamp seconds) from an image container in Y, YUV422, YUV, RGB or BGR."""
    c = container if isinstance(container, ImageContainer) else parse_image_container(container)
    buf = np.frombuffer(c.data, dtype=np.uint8)
    if c.colorspace == K_RGB:
        img = buf.reshape(c.height, c.width, 3).copy()
    elif c.colorspace == K_BGR:
        img = buf.reshape(c.height, c.width, 3)[:, :, ::-1].copy()
    elif c.colorspace == K_YUV:
        img = np.repeat(buf.reshape(c.height, c.width, 1), 3, axis=2)
    elif c.colorspace == K_YUV_FULL:
        yuv = buf.reshape(c.height, c.width, 3)
        img = _yuv_to_rgb(yuv[..., 0], yuv[..., 1], yuv[..., 2])
    elif c.colorspace == K_YUV422:
        if c.width % 2:
            raise ImageContainerError(f"YUV422 image width must be even, got {c.width}")
        q = buf.reshape(c.height, c.width // 2, 4)  # Y0 U Y1 V
        y = np.empty((c.height, c.width), dtype=np.uint8)
        y[:, 0::2], y[:, 1::2] = q[..., 0], q[..., 2]
        u = np.repeat(q[..., 1], 2, axis=1)
        v = np.repeat(q[..., 3], 2, axis=1)
        img = _yuv_to_rgb(y, u, v)
    else:
        raise ImageContainerError(f"colour space {c.colorspace} is not supported; subscribe with "
                                  "11 (RGB), 13 (BGR), 9 (YUV422), 10 (YUV) or 0 (gray)")
    return img, c.stamp


def rgb_to_image_bytes(rgb: np.ndarray, colorspace: int) -> Tuple[int, bytes]:
    """(layers, raw bytes) of an RGB image in a NAOqi colour space; the inverse of container_to_rgb."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    colorspace = parse_colorspace(colorspace)
    if colorspace == K_RGB:
        return 3, rgb.tobytes()
    if colorspace == K_BGR:
        return 3, np.ascontiguousarray(rgb[:, :, ::-1]).tobytes()
    y, u, v = _rgb_to_yuv(rgb)
    if colorspace == K_YUV:
        return 1, _u8(y).tobytes()
    if colorspace == K_YUV_FULL:
        return 3, np.stack([_u8(y), _u8(u), _u8(v)], axis=-1).tobytes()
    h, w = y.shape
    if w % 2:
        raise ImageContainerError(f"YUV422 needs an even width, got {w}")
    q = np.empty((h, w // 2, 4), dtype=np.uint8)
    q[..., 0], q[..., 2] = _u8(y[:, 0::2]), _u8(y[:, 1::2])
    q[..., 1] = _u8((u[:, 0::2] + u[:, 1::2]) / 2.0)
    q[..., 3] = _u8((v[:, 0::2] + v[:, 1::2]) / 2.0)
    return 2, q.tobytes()


class NaoCamera:
    """ALVideoDevice subscriber that survives reconnects.

    `grab()` returns `(rgb, stamp)` (HxWx3 uint8 RGB; stamp = the container's timestamp in
    seconds, robot clock) or None when the robot is unavailable or the frame is bad. Every call to
    the robot waits at most `call_timeout` s (a hung robot is reported, not waited for).
    """

    def __init__(
        self,
        connection: NaoConnection,
        camera: int = CAMERA_TOP,
        resolution: Union[int, str] = 1,
        colorspace: Union[int, str] = K_RGB,
        fps: int = 10,
        name: str = "fer_mask_ros",
        logger: Optional[logging.Logger] = None,
        call_timeout: float = 2.0,
    ):
        self.connection = connection
        self.call_timeout = float(call_timeout)
        self.camera = int(camera)
        self.resolution = parse_resolution(resolution)
        self.colorspace = parse_colorspace(colorspace)
        self.fps = int(fps)
        self.name = name
        self.log = logger or LOG
        self.handle: Optional[str] = None
        self._generation = -1
        self._lock = threading.Lock()
        self.grabs = 0
        self.failures = 0
        self.subscriptions = 0
        self.last_error: Optional[str] = None

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) requested."""
        return RESOLUTIONS[self.resolution]

    def _note_error(self, msg: str) -> None:
        self.failures += 1
        if msg != self.last_error:
            self.log.warning("NAO camera: %s", msg)
        self.last_error = msg

    def _subscribe(self) -> None:
        video = self.connection.service("ALVideoDevice")
        handle = self.connection.call(video.subscribeCamera, self.name, self.camera, self.resolution,
                                      self.colorspace, self.fps, timeout=self.call_timeout, what="subscribeCamera")
        if not handle:
            raise NaoError(f"ALVideoDevice.subscribeCamera({self.name!r}) returned no handle")
        self.handle = str(handle)
        self._generation = self.connection.generation
        self.subscriptions += 1
        self.log.info("NAO camera %d subscribed as %s (%dx%d, colour space %d, %d fps)",
                      self.camera, self.handle, *self.size, self.colorspace, self.fps)

    def grab(self) -> Optional[Tuple[np.ndarray, float]]:
        with self._lock:
            if not self.connection.connected:
                return None
            try:
                if self.handle is None or self._generation != self.connection.generation:
                    self._subscribe()
                video = self.connection.service("ALVideoDevice")
                container = self.connection.call(video.getImageRemote, self.handle, timeout=self.call_timeout,
                                                 what="getImageRemote")
            except NaoUnavailable:
                return None
            except NaoTimeout as exc:
                self.handle = None
                self._note_error(str(exc))
                return None
            except Exception as exc:
                # unknown handle after a robot restart, or the link just dropped: resubscribe next time
                self.handle = None
                self.connection.mark_broken()
                self._note_error(f"getImageRemote failed: {exc}")
                return None
            try:
                img, stamp = container_to_rgb(container)
            except ImageContainerError as exc:
                self._note_error(str(exc))
                return None
            self.grabs += 1
            self.last_error = None
            return img, stamp

    def close(self) -> None:
        with self._lock:
            handle, self.handle = self.handle, None
            if handle is None or not self.connection.connected or self._generation != self.connection.generation:
                return
            try:
                self.connection.service("ALVideoDevice").unsubscribe(handle)
            except Exception as exc:
                self.log.debug("NAO camera unsubscribe failed: %s", exc)

    def __enter__(self) -> NaoCamera:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
