"""A simulated NAO that speaks the real qi protocol.

`FakeNao` hosts a standalone qi service directory (``qi.Session().listenStandalone(url)``,
loopback by default) and registers:

* ``ALVideoDevice`` - subscribeCamera / subscribe / getImageRemote / unsubscribe / ...; frames
  come from a FrameSource (video file, image folder, in-memory frames) played at `fps`
  against wall time, looping, resized to the subscribed resolution and converted to the
  subscribed colour space. getImageRemote returns the NAOqi container
  ``[width, height, layers, colorspace, ts_sec, ts_usec, data, camera_id, left, top, right, bottom]``
  (sent as a qi tuple ``(iiiiiiriffff)`` so that the image arrives as binary).
* ``ALTextToSpeech`` - say, setLanguage, getLanguage, getAvailableLanguages, setVolume,
  getVolume, setParameter, getParameter, stopAll, plus ``getSpoken()`` (not in NAOqi).
* ``ALAnimatedSpeech`` - say(text[, configuration]).
* ``ALLeds`` - fadeRGB(name, 0xRRGGBB|colour name, duration), fadeRGB(name, r, g, b, duration),
  on, off, reset, listGroups.
* ``FakeNaoRecorder`` - getSpoken(), getLedEvents(), getStats(), clear(): what happened, for
  tests and rostests in another process.

Every utterance is recorded with a wall-clock timestamp and printed as ``NAO says: <text>``.
Login: libqi-python has no server-side authentication API, so FakeNao cannot require a
user/password; clients that send credentials (NAOqi 2.9 style) are accepted anyway.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, TextIO, Union

import numpy as np

from fer_mask_ros.robot.camera import RESOLUTIONS, parse_colorspace, parse_resolution, rgb_to_image_bytes
from fer_mask_ros.robot.qi_exit import close_at_exit
from fer_mask_ros.simulation.frame_source import FrameSource, open_frame_source

LOG = logging.getLogger(__name__)

DEFAULT_URL = "tcp://127.0.0.1:0"
LANGUAGES = ("English", "Italian", "French", "German", "Spanish", "Japanese")
# NAO V6 top camera field of view: 56.3 x 43.7 degrees, in radians, as the container's 4 angles
_HALF_HFOV = 0.4913
_HALF_VFOV = 0.3814
NAMED_LED_COLOURS = {
    "white": 0xFFFFFF, "red": 0xFF0000, "green": 0x00FF00, "blue": 0x0000FF,
    "yellow": 0xFFFF00, "magenta": 0xFF00FF, "cyan": 0x00FFFF,
}
LED_GROUPS = ("FaceLeds", "ChestLeds", "EarLeds", "FeetLeds", "AllLeds", "LeftFaceLeds", "RightFaceLeds")


class Utterance(NamedTuple):
    stamp: float  # time.time() when said
    service: str  # ALTextToSpeech or ALAnimatedSpeech
    text: str
    language: str


class LedEvent(NamedTuple):
    stamp: float
    group: str
    rgb: int  # 0xRRGGBB
    duration: float


def _qi():
    try:
        import qi  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - qi is a project dependency
        raise RuntimeError("the fake NAO needs the qi module (pip install qi)") from exc
    return qi


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    try:
        import cv2  # noqa: PLC0415

        interp = cv2.INTER_AREA if rgb.shape[1] > width else cv2.INTER_LINEAR
        return cv2.resize(rgb, (width, height), interpolation=interp)
    except ImportError:  # pragma: no cover - nearest neighbour fallback
        ys = (np.arange(height) * rgb.shape[0] / height).astype(int)
        xs = (np.arange(width) * rgb.shape[1] / width).astype(int)
        return rgb[ys][:, xs]


def _binder(ret: str, params: str):
    """qi.bind with raw signatures, resolved lazily so that importing this module needs no qi."""

    def deco(f):
        f.__qi_name__ = None
        f.__qi_signature__ = params
        f.__qi_return_signature__ = ret
        return f

    return deco


ANY_ARGS = "m"  # qi.AnyArguments: the method receives *args


class _Recorder:
    """Shared, thread-safe record of what the fake robot did."""

    def __init__(self, echo: bool, stream: Optional[TextIO]):
        self.lock = threading.Lock()
        self.spoken: List[Utterance] = []
        self.leds: List[LedEvent] = []
        self.images_served = 0
        self.echo = echo
        self.stream = stream
        self.language = "English"
        self.volume = 1.0
        self.stopping = threading.Event()  # set by FakeNao.stop(): handlers still speaking end early
        self._speaking = 0
        self._idle = threading.Condition(self.lock)

    def speak_for(self, seconds: float) -> None:
        """Block like a robot that speaks for `seconds`, ending at once when the fake robot stops."""
        if seconds <= 0:
            return
        with self.lock:
            self._speaking += 1
        try:
            self.stopping.wait(seconds)
        finally:
            with self.lock:
                self._speaking -= 1
                self._idle.notify_all()

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no handler is speaking any more; False after `timeout` s."""
        with self.lock:
            return self._idle.wait_for(lambda: self._speaking == 0, timeout)

    def say(self, service: str, text: str) -> None:
        utt = Utterance(time.time(), service, str(text), self.language)
        with self.lock:
            self.spoken.append(utt)
        if self.echo:
            out = self.stream or sys.stdout
            try:
                print(f"NAO says: {text}", file=out, flush=True)
            except (OSError, ValueError):  # closed stdout (e.g. a piped demo that ended)
                pass
        LOG.debug("%s.say(%r)", service, text)


class _VideoDevice:
    """ALVideoDevice: public methods become qi methods; helpers start with '_'."""

    def __init__(self, nao: FakeNao):
        self._nao = nao
        self._lock = threading.Lock()
        self._subs: Dict[str, Dict[str, int]] = {}
        self._params: Dict[int, int] = {}
        self._active_camera = 0

    def _new_handle(self, name: str) -> str:
        i = 0
        while f"{name}_{i}" in self._subs:
            i += 1
        return f"{name}_{i}"

    def _add(self, name: str, camera: int, resolution: int, colorspace: int, fps: int) -> str:
        resolution = parse_resolution(int(resolution))
        colorspace = parse_colorspace(int(colorspace))
        with self._lock:
            handle = self._new_handle(str(name))
            self._subs[handle] = {"camera": int(camera), "resolution": resolution,
                                  "colorspace": colorspace, "fps": int(fps)}
        LOG.info("ALVideoDevice: %s subscribed (camera %d, resolution %d, colour space %d, %d fps)",
                 handle, camera, resolution, colorspace, fps)
        return handle

    @_binder("s", "(siiii)")
    def subscribeCamera(self, name, cameraIndex, resolution, colorSpace, fps):  # noqa: N802,N803
        return self._add(name, cameraIndex, resolution, colorSpace, fps)

    @_binder("s", "(siii)")
    def subscribe(self, name, resolution, colorSpace, fps):  # noqa: N802,N803
        return self._add(name, self._active_camera, resolution, colorSpace, fps)

    @_binder("b", "(s)")
    def unsubscribe(self, handle):
        with self._lock:
            found = self._subs.pop(str(handle), None) is not None
        if found:
            LOG.info("ALVideoDevice: %s unsubscribed", handle)
        return found

    @_binder("[s]", "()")
    def getSubscribers(self):  # noqa: N802
        with self._lock:
            return sorted(self._subs)

    def _sub(self, handle: str) -> Dict[str, int]:
        with self._lock:
            sub = self._subs.get(str(handle))
        if sub is None:
            raise RuntimeError(f"ALVideoDevice: unknown subscriber handle {handle!r}")
        return sub

    @_binder("(iiiiiiriffff)", "(s)")
    def getImageRemote(self, handle):  # noqa: N802
        sub = self._sub(handle)
        width, height = RESOLUTIONS[sub["resolution"]]
        rgb = _resize(self._nao._current_frame(), width, height)
        layers, data = rgb_to_image_bytes(rgb, sub["colorspace"])
        now = time.time()
        sec = int(now)
        usec = int((now - sec) * 1e6)
        with self._nao._recorder.lock:
            self._nao._recorder.images_served += 1
        return (width, height, layers, sub["colorspace"], sec, usec, bytes(data), sub["camera"],
                _HALF_HFOV, _HALF_VFOV, -_HALF_HFOV, -_HALF_VFOV)

    @_binder("(iiiiiiriffff)", "(s)")
    def getImageLocal(self, handle):  # noqa: N802 - remote-only fake: same as getImageRemote
        return self.getImageRemote(handle)

    @_binder("b", "(s)")
    def releaseImage(self, handle):  # noqa: N802
        self._sub(handle)
        return True

    @_binder("b", "(si)")
    def setResolution(self, handle, resolution):  # noqa: N802
        res = parse_resolution(int(resolution))
        self._sub(handle)["resolution"] = res
        return True

    @_binder("b", "(si)")
    def setColorSpace(self, handle, colorSpace):  # noqa: N802,N803
        cs = parse_colorspace(int(colorSpace))
        self._sub(handle)["colorspace"] = cs
        return True

    @_binder("b", "(si)")
    def setFrameRate(self, handle, fps):  # noqa: N802
        self._sub(handle)["fps"] = int(fps)
        return True

    @_binder("b", "(i)")
    def setActiveCamera(self, cameraIndex):  # noqa: N802,N803
        self._active_camera = int(cameraIndex)
        return True

    @_binder("i", "()")
    def getActiveCamera(self):  # noqa: N802
        return self._active_camera

    @_binder("v", "(ii)")
    def setParam(self, param, value):  # noqa: N802
        self._params[int(param)] = int(value)

    @_binder("i", "(i)")
    def getParam(self, param):  # noqa: N802
        return int(self._params.get(int(param), 0))


class _TextToSpeech:
    """ALTextToSpeech, plus getSpoken() to read back what was said."""

    def __init__(self, recorder: _Recorder, say_seconds: float = 0.0):
        self._rec = recorder
        self._say_seconds = float(say_seconds)
        self._params: Dict[str, float] = {"speed": 100.0, "pitchShift": 1.0, "volume": 100.0}

    @_binder("v", ANY_ARGS)
    def say(self, *args):
        # say(text) or say(text, language)
        if not args:
            raise RuntimeError("ALTextToSpeech.say needs a text")
        self._rec.say("ALTextToSpeech", str(args[0]))
        self._rec.speak_for(self._say_seconds)

    @_binder("v", "(s)")
    def setLanguage(self, language):  # noqa: N802
        if str(language) not in LANGUAGES:
            raise RuntimeError(f"ALTextToSpeech: language {language!r} is not installed; "
                               f"available: {', '.join(LANGUAGES)}")
        self._rec.language = str(language)

    @_binder("s", "()")
    def getLanguage(self):  # noqa: N802
        return self._rec.language

    @_binder("[s]", "()")
    def getAvailableLanguages(self):  # noqa: N802
        return list(LANGUAGES)

    @_binder("[s]", "()")
    def getSupportedLanguages(self):  # noqa: N802
        return list(LANGUAGES)

    @_binder("v", "(f)")
    def setVolume(self, volume):  # noqa: N802
        self._rec.volume = min(max(float(volume), 0.0), 1.0)

    @_binder("f", "()")
    def getVolume(self):  # noqa: N802
        return float(self._rec.volume)

    @_binder("v", "(sf)")
    def setParameter(self, name, value):  # noqa: N802
        self._params[str(name)] = float(value)

    @_binder("f", "(s)")
    def getParameter(self, name):  # noqa: N802
        return float(self._params.get(str(name), 0.0))

    @_binder("v", "()")
    def stopAll(self):  # noqa: N802
        pass

    @_binder("m", "()")
    def getSpoken(self):  # noqa: N802
        return _spoken_rows(self._rec)


class _AnimatedSpeech:
    def __init__(self, recorder: _Recorder, say_seconds: float = 0.0):
        self._rec = recorder
        self._say_seconds = float(say_seconds)

    @_binder("v", ANY_ARGS)
    def say(self, *args):
        # say(text) or say(text, configuration)
        if not args:
            raise RuntimeError("ALAnimatedSpeech.say needs a text")
        self._rec.say("ALAnimatedSpeech", str(args[0]))
        self._rec.speak_for(self._say_seconds)


def _colour_to_int(value: Any) -> int:
    if isinstance(value, str):
        key = value.strip().lower()
        if key in NAMED_LED_COLOURS:
            return NAMED_LED_COLOURS[key]
        if key.startswith("#"):
            return int(key[1:], 16)
        raise RuntimeError(f"ALLeds: unknown colour {value!r}; use one of {', '.join(NAMED_LED_COLOURS)}")
    return int(value) & 0xFFFFFF


class _Leds:
    def __init__(self, recorder: _Recorder):
        self._rec = recorder

    def _record(self, group: str, rgb: int, duration: float) -> None:
        with self._rec.lock:
            self._rec.leds.append(LedEvent(time.time(), str(group), int(rgb), float(duration)))

    @_binder("v", ANY_ARGS)
    def fadeRGB(self, *args):  # noqa: N802
        # fadeRGB(name, rgb_int | colour_name, duration) or fadeRGB(name, r, g, b, duration)
        if len(args) == 3:
            name, colour, duration = args
            rgb = _colour_to_int(colour)
        elif len(args) == 5:
            name, r, g, b, duration = args
            r, g, b = (min(max(float(v), 0.0), 1.0) for v in (r, g, b))
            rgb = (int(r * 255 + 0.5) << 16) | (int(g * 255 + 0.5) << 8) | int(b * 255 + 0.5)
        else:
            raise RuntimeError("ALLeds.fadeRGB takes (name, rgb, duration) or (name, r, g, b, duration)")
        self._record(name, rgb, float(duration))

    @_binder("v", "(s)")
    def on(self, name):
        self._record(name, 0xFFFFFF, 0.0)

    @_binder("v", "(s)")
    def off(self, name):
        self._record(name, 0x000000, 0.0)

    @_binder("v", "(s)")
    def reset(self, name):
        self._record(name, 0xFFFFFF, 0.0)

    @_binder("[s]", "()")
    def listGroups(self):  # noqa: N802
        return list(LED_GROUPS)


def _spoken_rows(rec: _Recorder) -> List[List[Any]]:
    with rec.lock:
        return [[u.stamp, u.service, u.text, u.language] for u in rec.spoken]


class _RecorderService:
    """FakeNaoRecorder: read back what the fake robot did (not a NAOqi service)."""

    def __init__(self, nao: FakeNao):
        self._nao = nao

    @_binder("m", "()")
    def getSpoken(self):  # noqa: N802
        """[[stamp, service, text, language], ...]"""
        return _spoken_rows(self._nao._recorder)

    @_binder("m", "()")
    def getLedEvents(self):  # noqa: N802
        """[[stamp, group, 0xRRGGBB, duration], ...]"""
        rec = self._nao._recorder
        with rec.lock:
            return [[e.stamp, e.group, e.rgb, e.duration] for e in rec.leds]

    @_binder("m", "()")
    def getStats(self):  # noqa: N802
        return self._nao.stats()

    @_binder("v", "()")
    def clear(self):
        rec = self._nao._recorder
        with rec.lock:
            rec.spoken.clear()
            rec.leds.clear()


SourceLike = Union[str, "FrameSource", Sequence[np.ndarray], np.ndarray]


class FakeNao:
    """A fake NAO on a qi standalone server.

    >>> with FakeNao([frame1, frame2], fps=10) as nao:      # url tcp://127.0.0.1:<auto>
    ...     client = NaoConnection(nao.url)

    `source`: a FrameSource, a path (video, image, image folder), "clip" (the bundled demo
    clip) or a list of HxWx3 RGB frames. `fps`: playback rate of the source. `url`: where to
    listen (port 0 picks a free port; `url` then holds the real one after start()).
    `say_seconds`: how long say() blocks, like a real robot speaking (default 0).
    """

    SERVICES = ("ALVideoDevice", "ALTextToSpeech", "ALAnimatedSpeech", "ALLeds", "FakeNaoRecorder")

    def __init__(
        self,
        source: SourceLike = "clip",
        fps: float = 10.0,
        url: str = DEFAULT_URL,
        echo: bool = True,
        stream: Optional[TextIO] = None,
        say_seconds: float = 0.0,
        user: Optional[str] = None,
        password: Optional[str] = None,
        clock: Any = time.monotonic,
    ):
        self.source: FrameSource = open_frame_source(source, fps=fps)
        self.fps = float(fps)
        self.listen_url = url
        self._url: Optional[str] = None
        self._clock = clock
        self._t0 = clock()
        self._recorder = _Recorder(echo=echo, stream=stream)
        self._say_seconds = say_seconds
        self._session: Any = None
        self._service_ids: Dict[str, int] = {}
        self._lock = threading.Lock()
        if user is not None or password is not None:
            LOG.warning("FakeNao cannot require a login: libqi-python has no server-side authentication; "
                        "any credentials are accepted")

    # -- what happened
    @property
    def spoken(self) -> List[Utterance]:
        with self._recorder.lock:
            return list(self._recorder.spoken)

    @property
    def spoken_texts(self) -> List[str]:
        return [u.text for u in self.spoken]

    @property
    def leds(self) -> List[LedEvent]:
        with self._recorder.lock:
            return list(self._recorder.leds)

    @property
    def language(self) -> str:
        return self._recorder.language

    def stats(self) -> Dict[str, Any]:
        with self._recorder.lock:
            return {"url": self._url or "", "frames": len(self.source), "fps": self.fps,
                    "images_served": self._recorder.images_served, "spoken": len(self._recorder.spoken),
                    "led_events": len(self._recorder.leds), "language": self._recorder.language}

    def wait_for_speech(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least `count` utterances were recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.spoken) >= count:
                return True
            time.sleep(0.01)
        return len(self.spoken) >= count

    # -- frames
    @property
    def start_time(self) -> float:
        """Wall-clock time (time.time()) at which frame 0 was shown: maps image stamps to clip time."""
        return time.time() - (self._clock() - self._t0)

    def frame_index(self) -> int:
        return self.source.index_at(self._clock() - self._t0)

    def _current_frame(self) -> np.ndarray:
        return self.source.frame_at(self._clock() - self._t0)

    # -- lifecycle
    @property
    def url(self) -> str:
        """The URL clients connect to (the real port once started)."""
        return self._url or self.listen_url

    @property
    def running(self) -> bool:
        return self._session is not None

    def start(self) -> FakeNao:
        with self._lock:
            if self._session is not None:
                return self
            qi = _qi()
            session = qi.Session()
            try:
                session.listenStandalone(self.listen_url)
            except Exception as exc:
                try:
                    session.close()
                except Exception:
                    pass
                raise RuntimeError(f"fake NAO cannot listen on {self.listen_url}: {exc}") from None
            services = {
                "ALVideoDevice": _VideoDevice(self),
                "ALTextToSpeech": _TextToSpeech(self._recorder, self._say_seconds),
                "ALAnimatedSpeech": _AnimatedSpeech(self._recorder, self._say_seconds),
                "ALLeds": _Leds(self._recorder),
                "FakeNaoRecorder": _RecorderService(self),
            }
            self._services = services
            for name, obj in services.items():
                self._service_ids[name] = session.registerService(name, obj)
            endpoints = list(session.endpoints())
            self._url = _pick_endpoint(endpoints, self.listen_url)
            self._session = session
            self._t0 = self._clock()
            self._recorder.stopping.clear()
        close_at_exit(self.stop)
        LOG.info("fake NAO listening on %s (%s)", self._url, self.source)
        return self

    def stop(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._service_ids = {}
        if session is not None:
            self._recorder.stopping.set()
            try:
                session.close()
            except Exception as exc:  # pragma: no cover
                LOG.debug("fake NAO close: %s", exc)
            if not self._recorder.wait_quiet(5.0):  # a handler in a qi thread must not outlive the server
                LOG.warning("fake NAO on %s: a say() handler still runs 5 s after stop", self._url)
            LOG.info("fake NAO on %s stopped", self._url)

    def __enter__(self) -> FakeNao:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"FakeNao({self.url!r}, {self.source!r}, {state})"


def _pick_endpoint(endpoints: Sequence[str], wanted: str) -> str:
    """The endpoint matching the requested scheme and host (listenStandalone may report several)."""
    if not endpoints:
        return wanted
    scheme = wanted.split("://", 1)[0]
    host = wanted.split("://", 1)[-1].rsplit(":", 1)[0]
    for ep in endpoints:
        if ep.startswith(scheme + "://") and ep.split("://", 1)[1].rsplit(":", 1)[0] == host:
            return ep
    for ep in endpoints:
        if ep.startswith(scheme + "://") and "127.0.0.1" in ep:
            return ep
    return endpoints[0]


def fetch_spoken(url: str, timeout: float = 5.0) -> List[Utterance]:
    """What a (possibly remote-process) FakeNao said, over qi (FakeNaoRecorder.getSpoken)."""
    qi = _qi()
    session = qi.Session()
    session.connect(url, _async=True).value(int(timeout * 1000))
    try:
        rows = session.service("FakeNaoRecorder").getSpoken()
        return [Utterance(float(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]
    finally:
        session.close()
