"""qi client for a NAO robot (real or fake): connection with reconnects, camera, speech, LEDs.

No rospy here: the ROS nodes wrap these classes. The same code talks to a real robot
(NAOqi 2.x on tcp://IP:9559, NAOqi >= 2.9 on tcps://IP:9503 with a user and password)
and to fer_mask_ros.fake_nao.FakeNao.

* `NaoConnection` owns a qi.Session and a background thread that reconnects with
  exponential backoff (0.5 s doubling to 5 s). State changes are logged once each and
  reported to callbacks; `generation` increases on every successful (re)connection so that
  users know when to resubscribe.
* `NaoCamera` subscribes to ALVideoDevice and returns `(rgb HxWx3 uint8, stamp_s)`.
* `NaoSpeech` calls ALTextToSpeech / ALAnimatedSpeech asynchronously; it never queues.
* `NaoLeds` fades LED groups to an RGB colour.

The pure helpers (`parse_image_container`, `container_to_rgb`, `rgb_to_image_bytes`,
`make_url`, ...) need neither qi nor a robot.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 9559  # NAOqi, plain tcp
DEFAULT_SECURE_PORT = 9503  # NAOqi >= 2.9, tcps with login
PASSWORD_ENV = "NAO_PASSWORD"
USER_ENV = "NAO_USER"

# --- ALVideoDevice constants (NAOqi vision definitions) ---------------------------------

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
CAMERA_TOP, CAMERA_BOTTOM = 0, 1

STATE_DISCONNECTED = "disconnected"
STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"


class NaoError(RuntimeError):
    """A NAO/qi failure (never contains a password)."""


class NaoUnavailable(NaoError):
    """The robot is not connected right now."""


class ImageContainerError(ValueError):
    """The ALVideoDevice image container is malformed or in an unsupported colour space."""


# --- pure helpers -------------------------------------------------------------------------

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


def make_url(host: Optional[str] = None, port: Optional[int] = None, secure: Optional[bool] = None) -> str:
    """A qi URL from a host (and port): "tcp://host:9559"; "tcps://host:9503" when `secure`.

    `secure=None` (auto) means tcps exactly when the port is 9503, NAOqi 2.9's secure port.
    "host:port" is accepted as host, and full URLs ("tcp://...", "tcps://...") pass through.
    """
    host = (host or "127.0.0.1").strip()
    if "://" in host:
        return host
    if ":" in host and not host.startswith("["):
        h, _, p = host.rpartition(":")
        if p.isdigit():
            host, port = h, int(p)
    if port is None:
        port = DEFAULT_SECURE_PORT if secure else DEFAULT_PORT
    if secure is None:
        secure = int(port) == DEFAULT_SECURE_PORT
    scheme = "tcps" if secure else "tcp"
    return f"{scheme}://{host}:{int(port)}"


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


# --- connection -----------------------------------------------------------------------------

def _import_qi():
    try:
        import qi  # noqa: PLC0415 - qi is only needed when talking to a robot
    except ImportError as exc:
        raise NaoError("the qi module is missing: pip install qi (libqi-python) to talk to a NAO") from exc
    return qi


class _Authenticator:
    """qi client authenticator (NAOqi >= 2.9): qi calls initialAuthData() once per connection."""

    def __init__(self, user: str, password: str):
        self._user = user
        self._password = password

    def initialAuthData(self) -> Dict[str, str]:  # noqa: N802 - name fixed by libqi
        return {"user": self._user, "token": self._password}

    def __repr__(self) -> str:
        return f"_Authenticator(user={self._user!r}, password=***)"


class _AuthenticatorFactory:
    def __init__(self, user: str, password: str):
        self._user = user
        self._password = password

    def newAuthenticator(self) -> _Authenticator:  # noqa: N802 - name fixed by libqi
        return _Authenticator(self._user, self._password)

    def __repr__(self) -> str:
        return f"_AuthenticatorFactory(user={self._user!r}, password=***)"


def _scrub(message: str, secret: Optional[str]) -> str:
    if secret:
        message = message.replace(secret, "***")
    return message


StateCallback = Callable[[str], None]


class NaoConnection:
    """A qi session to a NAO that reconnects by itself.

    ``NaoConnection("tcp://192.168.1.10:9559")``, ``NaoConnection(ip="192.168.1.10")`` or, for
    NAOqi >= 2.9, ``NaoConnection(ip="192.168.1.10", user="nao")`` (tcps://ip:9503, password
    from the `password` argument or the NAO_PASSWORD environment variable).

    `start()` launches the background thread (and by default waits up to `wait` seconds for the
    first connection); `close()` stops it. Retries back off from `min_backoff` doubling to
    `max_backoff`. Each state change (connecting/connected/disconnected) is logged once and
    passed to the callbacks added with `add_state_callback`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        ip: Optional[str] = None,
        port: Optional[int] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        password_env: str = PASSWORD_ENV,
        min_backoff: float = 0.5,
        max_backoff: float = 5.0,
        connect_timeout: float = 5.0,
        poll_interval: float = 0.2,
        logger: Optional[logging.Logger] = None,
    ):
        if user is None:
            user = os.environ.get(USER_ENV) or None
        if user is not None and password is None:
            password = os.environ.get(password_env)
            if password is None:
                raise NaoError(f"NAO user {user!r} given but no password: pass it or set ${password_env}")
        if url is None:
            url = make_url(ip, port, secure=(user is not None) if port is None else None)
        elif ip is not None:
            raise ValueError("give either url or ip/port, not both")
        self.url = url
        self.user = user
        self._password = password
        self.min_backoff = float(min_backoff)
        self.max_backoff = float(max_backoff)
        self.connect_timeout = float(connect_timeout)
        self.poll_interval = float(poll_interval)
        self.log = logger or LOG
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected_event = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._session: Any = None
        self._services: Dict[str, Any] = {}
        self._callbacks: List[StateCallback] = []
        self._state = STATE_DISCONNECTED
        self.generation = 0  # +1 on each successful connection
        self.attempts = 0
        self.failures = 0
        self.last_error: Optional[str] = None

    def __repr__(self) -> str:
        user = f", user={self.user!r}" if self.user else ""
        return f"NaoConnection({self.url!r}{user}, state={self._state!r})"

    # -- state
    @property
    def state(self) -> str:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == STATE_CONNECTED

    def add_state_callback(self, callback: StateCallback) -> None:
        self._callbacks.append(callback)

    def _set_state(self, state: str, detail: str = "") -> None:
        with self._lock:
            if state == self._state:
                return
            self._state = state
        if state == STATE_CONNECTED:
            self._connected_event.set()
            self.log.info("NAO %s: connected", self.url)
        else:
            self._connected_event.clear()
            if state == STATE_DISCONNECTED:
                self.log.warning("NAO %s: disconnected%s", self.url, f" ({detail})" if detail else "")
            else:
                self.log.info("NAO %s: connecting", self.url)
        for cb in list(self._callbacks):
            try:
                cb(state)
            except Exception:  # a callback must not kill the reconnect thread
                self.log.exception("NAO state callback failed")

    # -- lifecycle
    def start(self, wait: Optional[float] = 0.0) -> bool:
        """Start the reconnect thread; wait up to `wait` s (None: forever) for a connection. Returns connected."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="nao-connection", daemon=True)
            self._thread.start()
        if wait is None or wait > 0:
            return self.wait_connected(wait)
        return self.connected

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._connected_event.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.connect_timeout + 2.0)
        self._thread = None
        self._drop_session()
        self._set_state(STATE_DISCONNECTED, "closed")

    def __enter__(self) -> NaoConnection:
        self.start(wait=self.connect_timeout)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def mark_broken(self, reason: str = "") -> None:
        """Tell the connection that a call failed in a way that suggests the link is gone."""
        self._wake.set()

    # -- session and services
    def service(self, name: str) -> Any:
        """The qi proxy of service `name` on the current session (cached per connection)."""
        with self._lock:
            session = self._session
            if session is None or self._state != STATE_CONNECTED:
                raise NaoUnavailable(f"NAO {self.url} is not connected ({self._state})")
            proxy = self._services.get(name)
            if proxy is not None:
                return proxy
        try:
            proxy = session.service(name)
        except Exception as exc:
            raise NaoError(f"NAO service {name} unavailable: {_scrub(str(exc), self._password)}") from None
        with self._lock:
            if session is self._session:
                self._services[name] = proxy
        return proxy

    def _drop_session(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._services = {}
        if session is not None:
            try:
                session.close()
            except Exception:  # already broken
                pass

    def _connect_once(self) -> None:
        qi = _import_qi()
        session = qi.Session()
        if self.user is not None:
            session.setClientAuthenticatorFactory(_AuthenticatorFactory(self.user, self._password or ""))
        self.attempts += 1
        fut = None
        try:
            fut = session.connect(self.url, _async=True)
            fut.value(int(self.connect_timeout * 1000))
        except Exception as exc:
            if fut is not None:
                try:
                    fut.cancel()
                except Exception:
                    pass
            try:
                session.close()
            except Exception:
                pass
            # never chain the qi exception: its text could, in theory, echo credentials
            raise NaoError(_scrub(str(exc), self._password) or type(exc).__name__) from None
        if not session.isConnected():
            raise NaoError("session not connected after connect()")
        try:
            session.disconnected.connect(lambda *_a: self._wake.set())
        except Exception:  # signal API differences: polling still works
            pass
        with self._lock:
            self._session = session
            self._services = {}
            self.generation += 1

    def _session_alive(self) -> bool:
        with self._lock:
            session = self._session
        if session is None:
            return False
        try:
            return bool(session.isConnected())
        except Exception:
            return False

    def _run(self) -> None:
        backoff = self.min_backoff
        while not self._stop.is_set():
            if self._session_alive():
                backoff = self.min_backoff
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            if self._state == STATE_CONNECTED:
                self._drop_session()
                self._set_state(STATE_DISCONNECTED, "connection lost")
            self._set_state(STATE_CONNECTING)
            try:
                self._connect_once()
            except Exception as exc:
                self.failures += 1
                msg = str(exc)
                if msg != self.last_error:
                    self.log.debug("NAO %s: connect failed: %s", self.url, msg)
                self.last_error = msg
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2.0, self.max_backoff)
                continue
            self.last_error = None
            backoff = self.min_backoff
            self._set_state(STATE_CONNECTED)
        self._drop_session()

    def diagnostics(self) -> Dict[str, Any]:
        """Key/values for diagnostic_msgs (no secrets)."""
        return {"url": self.url, "state": self._state, "user": self.user or "", "generation": self.generation,
                "attempts": self.attempts, "failures": self.failures, "last_error": self.last_error or ""}


# --- camera ---------------------------------------------------------------------------------

class NaoCamera:
    """ALVideoDevice subscriber that survives reconnects.

    `grab()` returns `(rgb, stamp)` (HxWx3 uint8 RGB; stamp = the container's timestamp in
    seconds, robot clock) or None when the robot is unavailable or the frame is bad.
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
    ):
        self.connection = connection
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
        handle = video.subscribeCamera(self.name, self.camera, self.resolution, self.colorspace, self.fps)
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
                container = self.connection.service("ALVideoDevice").getImageRemote(self.handle)
            except NaoUnavailable:
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


# --- speech and LEDs ------------------------------------------------------------------------

SPEECH_SERVICES = ("ALTextToSpeech", "ALAnimatedSpeech")


class NaoSpeech:
    """Say text on the robot without blocking the caller.

    `say()` starts an asynchronous qi call and returns at once. It never queues: when the robot
    is disconnected, or still speaking the previous sentence, the text is dropped, counted in
    `dropped` and warned about (once per cause in a row).
    """

    def __init__(
        self,
        connection: NaoConnection,
        service: str = "ALTextToSpeech",
        language: Optional[str] = "English",
        volume: Optional[float] = None,
        logger: Optional[logging.Logger] = None,
    ):
        if service not in SPEECH_SERVICES:
            raise ValueError(f"unknown speech service {service!r}; use one of {', '.join(SPEECH_SERVICES)}")
        self.connection = connection
        self.service = service
        self.language = language
        self.volume = volume
        self.log = logger or LOG
        self._generation = -1
        self._future: Any = None
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._last_drop: Optional[str] = None

    def _drop(self, why: str, text: str) -> bool:
        self.dropped += 1
        if why != self._last_drop:
            self.log.warning("NAO speech: dropped %r (%s; %d dropped so far)", text, why, self.dropped)
        self._last_drop = why
        return False

    def _configure(self) -> None:
        tts = self.connection.service("ALTextToSpeech")
        if self.language:
            try:
                tts.setLanguage(self.language)
            except Exception as exc:
                self.log.warning("NAO speech: setLanguage(%r) failed: %s", self.language, exc)
        if self.volume is not None:
            try:
                tts.setVolume(float(self.volume))
            except Exception as exc:
                self.log.warning("NAO speech: setVolume failed: %s", exc)
        self._generation = self.connection.generation

    @property
    def busy(self) -> bool:
        fut = self._future
        return fut is not None and not fut.isFinished()

    def say(self, text: str) -> bool:
        """Start saying `text`; True if it was sent, False if dropped."""
        text = str(text).strip()
        if not text:
            return False
        with self._lock:
            if not self.connection.connected:
                return self._drop("robot disconnected", text)
            if self.busy:
                return self._drop("still speaking", text)
            try:
                if self._generation != self.connection.generation:
                    self._configure()
                proxy = self.connection.service(self.service)
                self._future = proxy.say(text, _async=True)
            except NaoUnavailable:
                return self._drop("robot disconnected", text)
            except Exception as exc:
                self.failed += 1
                self.connection.mark_broken()
                return self._drop(f"say failed: {exc}", text)
            self.sent += 1
            self._last_drop = None
            return True

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for the current sentence to finish; True if finished without error."""
        fut = self._future
        if fut is None:
            return True
        try:
            fut.value(int(timeout * 1000))
            return True
        except Exception:
            return False


class NaoLeds:
    """ALLeds.fadeRGB on a group (default "FaceLeds", the eyes)."""

    def __init__(self, connection: NaoConnection, group: str = "FaceLeds", duration: float = 0.3,
                 logger: Optional[logging.Logger] = None):
        self.connection = connection
        self.group = group
        self.duration = float(duration)
        self.log = logger or LOG
        self.failed = 0

    def fade(self, rgb: Union[int, Sequence[float]], duration: Optional[float] = None) -> bool:
        """Fade to 0xRRGGBB (int) or (r, g, b) floats in 0..1; non-blocking. False if not sent."""
        if not isinstance(rgb, int):
            r, g, b = (min(max(float(v), 0.0), 1.0) for v in rgb)
            rgb = (int(r * 255 + 0.5) << 16) | (int(g * 255 + 0.5) << 8) | int(b * 255 + 0.5)
        try:
            leds = self.connection.service("ALLeds")
            leds.fadeRGB(self.group, int(rgb), float(self.duration if duration is None else duration), _async=True)
        except NaoUnavailable:
            return False
        except Exception as exc:
            self.failed += 1
            self.log.warning("NAO LEDs: fadeRGB failed: %s", exc)
            return False
        return True

    def show_emotion(self, emotion: str) -> bool:
        from .speech import led_colour  # noqa: PLC0415 - speech imports nao lazily too

        return self.fade(led_colour(emotion))
